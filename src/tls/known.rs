//! Registries this user trusted on first use, like SSH's `known_hosts`:
//! one line per registry address, `ADDRESS SHA256:…`, in
//! `$XDG_CONFIG_HOME/lanchat/known_registries` (mode 0600) unless
//! `--known-registries` names another file.

use super::cert::{config_dir, write_private};
use super::Fingerprint;
use std::fs;
use std::path::{Path, PathBuf};

/// The file name in the configuration directory.
pub const FILE: &str = "known_registries";

/// The default file: `known_registries` in [`config_dir`].
pub fn default_path() -> PathBuf {
    config_dir().join(FILE)
}

/// The known-registries file.
#[derive(Debug, Clone)]
pub struct Known {
    pub path: PathBuf,
}

impl Known {
    pub fn new(path: &Path) -> Known {
        Known {
            path: path.to_path_buf(),
        }
    }

    fn entries(&self) -> Vec<(String, String)> {
        let text = fs::read_to_string(&self.path).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let l = l.trim();
                if l.is_empty() || l.starts_with('#') {
                    return None;
                }
                let (a, f) = l.split_once(char::is_whitespace)?;
                Some((a.to_string(), f.trim().to_string()))
            })
            .collect()
    }

    /// The fingerprint trusted for `addr`, if any.
    pub fn lookup(&self, addr: &str) -> Option<Fingerprint> {
        self.entries()
            .into_iter()
            .find(|(a, _)| a == addr)
            .and_then(|(_, f)| f.parse().ok())
    }

    /// Whether `fp` is trusted for some address.
    pub fn trusts(&self, fp: Fingerprint) -> bool {
        let fp = fp.to_string();
        self.entries().iter().any(|(_, f)| *f == fp)
    }

    /// Trusts `fp` for `addr` from now on (replacing what was there).
    pub fn remember(&self, addr: &str, fp: Fingerprint) -> Result<(), String> {
        let mut lines: Vec<String> = self
            .entries()
            .into_iter()
            .filter(|(a, _)| a != addr)
            .map(|(a, f)| format!("{a} {f}"))
            .collect();
        lines.push(format!("{addr} {fp}"));
        self.write(&lines)
    }

    /// Forgets `addr`; whether it was there.
    pub fn forget(&self, addr: &str) -> Result<bool, String> {
        let all = self.entries();
        let keep: Vec<String> = all
            .iter()
            .filter(|(a, _)| a != addr)
            .map(|(a, f)| format!("{a} {f}"))
            .collect();
        if keep.len() == all.len() {
            return Ok(false);
        }
        self.write(&keep).map(|_| true)
    }

    fn write(&self, lines: &[String]) -> Result<(), String> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let mut text = String::from("# lanchat: registry certificates trusted on first use\n");
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        write_private(&self.path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_replaces_and_forgets_per_address() {
        let dir = tempfile::tempdir().unwrap();
        let k = Known::new(&dir.path().join("sub").join(FILE));
        let (a, b) = (Fingerprint::of(b"a"), Fingerprint::of(b"b"));
        assert_eq!(k.lookup("127.0.0.1:1"), None);
        k.remember("127.0.0.1:1", a).unwrap();
        k.remember("127.0.0.1:2", b).unwrap();
        assert_eq!(k.lookup("127.0.0.1:1"), Some(a));
        k.remember("127.0.0.1:1", b).unwrap();
        assert_eq!(k.lookup("127.0.0.1:1"), Some(b));
        assert_eq!(k.forget("127.0.0.1:1"), Ok(true));
        assert_eq!(k.forget("127.0.0.1:1"), Ok(false));
        assert_eq!(k.lookup("127.0.0.1:2"), Some(b));
    }
}
