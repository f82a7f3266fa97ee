//! Issue 12's one-to-one chat handshake cost: the Noise XX handshake of
//! `lanchat::protocol::secure`, timed in memory (the crypto alone) and
//! over a loopback TCP connection (what a chat adds before its hello),
//! each the median of [`HANDSHAKES`] runs.

use super::*;
use lanchat::identity::Identity;
use lanchat::protocol::secure::{Deframer, Handshake, Next};

/// Handshakes per figure.
pub const HANDSHAKES: usize = 50;

pub struct NoiseBench {
    pub memory: Lat,
    pub tcp: Lat,
}

fn next_msg(s: &mut TcpStream, d: &mut Deframer) -> io::Result<Vec<u8>> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(m) = d.next_msg() {
            return Ok(m);
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        d.push(&buf[..n]);
    }
}

fn bad<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// One handshake in memory: both sides in this thread.
fn in_memory(a: &Identity, b: &Identity) -> Result<(), String> {
    let (ia, m1) =
        Handshake::initiator(&a.kx_secret(), "alice", "bob", b.public().kx, None).map_err(bad)?;
    let rb = Handshake::responder(&b.kx_secret(), "bob", None).map_err(bad)?;
    let Next::Continue(rb, m2) = rb.read(&m1[2..]).map_err(bad)? else {
        return Err("responder done early".into());
    };
    let Next::Done(_, Some(m3)) = ia.read(&m2[2..]).map_err(bad)? else {
        return Err("initiator not done".into());
    };
    match rb.read(&m3[2..]).map_err(bad)? {
        Next::Done(..) => Ok(()),
        Next::Continue(..) => Err("responder not done".into()),
    }
}

/// One handshake over loopback TCP, the responder in another thread.
fn over_tcp(a: &Identity, b_secret: [u8; 32], b_key: [u8; 32]) -> Result<(), String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(bad)?;
    let addr = l.local_addr().map_err(bad)?;
    let responder = thread::spawn(move || -> Result<(), String> {
        let (mut s, _) = l.accept().map_err(bad)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(bad)?;
        let mut d = Deframer::default();
        let rb = Handshake::responder(&b_secret, "bob", None).map_err(bad)?;
        let m1 = next_msg(&mut s, &mut d).map_err(bad)?;
        let Next::Continue(rb, m2) = rb.read(&m1).map_err(bad)? else {
            return Err("responder done early".into());
        };
        s.write_all(&m2).map_err(bad)?;
        let m3 = next_msg(&mut s, &mut d).map_err(bad)?;
        rb.read(&m3).map_err(bad).map(|_| ())
    });
    let mut s = TcpStream::connect(addr).map_err(bad)?;
    s.set_nodelay(true).map_err(bad)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(bad)?;
    let (ia, m1) =
        Handshake::initiator(&a.kx_secret(), "alice", "bob", b_key, None).map_err(bad)?;
    s.write_all(&m1).map_err(bad)?;
    let mut d = Deframer::default();
    let m2 = next_msg(&mut s, &mut d).map_err(bad)?;
    let Next::Done(_, Some(m3)) = ia.read(&m2).map_err(bad)? else {
        return Err("initiator not done".into());
    };
    s.write_all(&m3).map_err(bad)?;
    responder
        .join()
        .map_err(|_| "responder panicked".to_string())?
}

pub fn noise_section() -> Result<NoiseBench, String> {
    let (a, b) = (Identity::generate(), Identity::generate());
    let mut mem = Vec::with_capacity(HANDSHAKES);
    let mut tcp = Vec::with_capacity(HANDSHAKES);
    for _ in 0..HANDSHAKES {
        let t = Instant::now();
        in_memory(&a, &b)?;
        mem.push(t.elapsed().as_nanos() as u64);
        let t = Instant::now();
        over_tcp(&a, b.kx_secret(), b.public().kx)?;
        tcp.push(t.elapsed().as_nanos() as u64);
    }
    progress!("noise: {HANDSHAKES} handshakes each way");
    Ok(NoiseBench {
        memory: lat_ns(mem),
        tcp: lat_ns(tcp),
    })
}

pub fn report_noise(r: &mut Report, x: &Result<NoiseBench, String>) {
    r.heading("One-to-one chat handshake (Noise_XX_25519_ChaChaPoly_BLAKE2s)");
    match x {
        Ok(x) => {
            let row = |what: &str, l: &Lat| {
                vec![
                    what.to_string(),
                    group(l.n as u64),
                    fmt_us(l.p50),
                    fmt_us(l.p99),
                    fmt_us(l.max),
                ]
            };
            let rows = vec![
                row("in memory (crypto only)", &x.memory),
                row("loopback TCP, connect included", &x.tcp),
            ];
            table(
                &mut r.text,
                &["handshake", "runs", "p50", "p99", "max"],
                &rows,
            );
            r.json.insert(
                "chat_handshake".into(),
                json!({"memory": lat_json(&x.memory), "tcp": lat_json(&x.tcp)}),
            );
        }
        Err(e) => r.line(format!("  failed: {e}")),
    }
}
