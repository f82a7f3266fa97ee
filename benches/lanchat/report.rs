//! Formatting figures (latency summaries, rates, ratios to the floor,
//! tables) and the [`Report`]: the printed text, the JSON document, the
//! targets.

use super::*;

/// Latency summary, in microseconds.
#[derive(Clone, Copy, Default, Debug)]
pub struct Lat {
    pub n: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Summary of latencies given in nanoseconds.
pub fn lat_ns(mut v: Vec<u64>) -> Lat {
    v.sort_unstable();
    Lat {
        n: v.len(),
        p50: percentile(&v, 50.0) as f64 / 1000.0,
        p99: percentile(&v, 99.0) as f64 / 1000.0,
        max: v.last().copied().unwrap_or(0) as f64 / 1000.0,
    }
}

pub fn lat_json(l: &Lat) -> Value {
    json!({"n": l.n, "p50_us": round2(l.p50), "p99_us": round2(l.p99), "max_us": round2(l.max)})
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A duration in microseconds, for people.
pub fn fmt_us(us: f64) -> String {
    if us < 100.0 {
        format!("{us:.1} µs")
    } else if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 100_000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else if us < 10_000_000.0 {
        format!("{:.0} ms", us / 1000.0)
    } else {
        format!("{:.1} s", us / 1e6)
    }
}

pub fn fmt_rate(r: f64) -> String {
    if r >= 100.0 {
        group(r.round() as u64)
    } else {
        format!("{r:.1}")
    }
}

/// 12345 → "12,345".
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn ratio(x: f64, floor: Option<f64>) -> String {
    match floor {
        Some(f) if f > 0.0 => format!("{:.1}x", x / f),
        _ => "n/a".into(),
    }
}

pub fn ratio_json(x: f64, floor: Option<f64>) -> Value {
    match floor {
        Some(f) if f > 0.0 => json!(round2(x / f)),
        _ => Value::Null,
    }
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// A left-aligned text table.
pub fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < w.len() {
                w[i] = w[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::from("  ");
        for (i, c) in cells.iter().enumerate() {
            s.push_str(c);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(w[i] - c.chars().count() + 2));
            }
        }
        s.trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(header.to_vec()));
    for r in rows {
        let _ = writeln!(out, "{}", line(r.iter().map(String::as_str).collect()));
    }
}

pub fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".into()
    }
}

/// Runs a section; a panic in it becomes an error message, not the end of
/// the whole benchmark.
pub fn guarded<T>(name: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    progress!("== {name}");
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => Err(format!("panicked: {}", panic_text(&*p))),
    }
}

pub struct Report {
    pub text: String,
    pub json: serde_json::Map<String, Value>,
    pub targets: Vec<Value>,
    pub target_rows: Vec<Vec<String>>,
}

impl Report {
    pub fn line(&mut self, s: impl AsRef<str>) {
        self.text.push_str(s.as_ref());
        self.text.push('\n');
    }

    pub fn heading(&mut self, s: &str) {
        self.line("");
        self.line(format!("== {s}"));
    }

    /// A target and whether it was met: `Some(true)`, `Some(false)`, or
    /// `None` when it was not measured (with the reason as the figure).
    pub fn target(&mut self, what: &str, figure: String, met: Option<bool>) {
        let status = match met {
            Some(true) => "MET",
            Some(false) => "NOT MET",
            None => "NOT MEASURED",
        };
        self.targets
            .push(json!({"target": what, "figure": figure, "status": status}));
        self.target_rows
            .push(vec![what.to_string(), figure, status.to_string()]);
    }
}
