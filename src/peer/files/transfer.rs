//! The two ends of a transfer connection (`protocol.md` §3, "Files"), each on a
//! thread of its own, in constant memory: one chunk buffer per transfer.
//! [`serve`] answers one fetch on the sender (or a holder); [`download`]
//! fetches a whole file, resuming from its `.part` after a dropped
//! connection, then checks the SHA-256 and moves it into place.

use super::{Report, Served, Table};
use crate::peer::events::Event;
use crate::protocol::file::{self, Fetch, FetchReply, CHUNK, MAX_LINE, TAG};
use crossbeam_channel::Sender;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Progress is reported at most this often per transfer.
pub const REPORT_EVERY: Duration = Duration::from_millis(250);
/// Silence on a transfer connection for this long drops it.
pub const STALL: Duration = Duration::from_secs(4);
/// The minimum retransmission time-out asked for on transfer sockets.
pub const RTO_MIN_US: u32 = 10_000;
/// A download that makes no progress for this long gives up.
pub const GIVE_UP: Duration = Duration::from_secs(60);

fn send(events: &Sender<Event>, r: Report) {
    let _ = events.send(Event::File(r));
}

/// Reads one line of at most [`MAX_LINE`] bytes.
fn read_line(r: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = String::new();
    r.take(MAX_LINE as u64).read_line(&mut line)?;
    if !line.ends_with('\n') {
        return Err(std::io::Error::other("no complete line"));
    }
    Ok(line)
}

/// Answers one fetch on `stream` from the offers in `table`.
pub fn serve(stream: TcpStream, table: Table, events: Sender<Event>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_nodelay(true);
    short_rto(&stream);
    let Ok(reader) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(reader);
    let mut out = stream;
    let fetch = match read_line(&mut reader).map(|l| serde_json::from_str::<Fetch>(&l)) {
        Ok(Ok(f)) => f,
        _ => return no(&mut out, "bad request"),
    };
    let served = table.lock().ok().and_then(|t| t.get(&fetch.offer).cloned());
    let Some(s) = served else {
        return no(&mut out, "no such offer");
    };
    if !s.users.contains(&fetch.user) || !file::check_proof(&s.key, &fetch) {
        log::info!("refused a fetch of {} for {:?}", fetch.offer, fetch.user);
        return no(&mut out, "no such offer");
    }
    if fetch.offset % CHUNK != 0 || fetch.offset > s.size {
        return no(&mut out, "bad offset");
    }
    match stream_file(&mut out, &s, &fetch, &events) {
        Ok(()) => log::info!(
            "served {} to {} from {}",
            fetch.offer,
            fetch.user,
            fetch.offset
        ),
        Err(e) => log::info!("serving {} to {}: {e}", fetch.offer, fetch.user),
    }
}

/// Lowers the minimum retransmission time-out of a transfer socket where
/// the system allows it (Linux 6.15 on); elsewhere the default stays.
fn short_rto(stream: &TcpStream) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // On a LAN the round trip is well under a millisecond, yet a lost
        // retransmission waits out Linux's 200 ms minimum retransmission
        // time-out: at 10% loss that idles the connection most of the
        // time. TCP_RTO_MIN_US (Linux 6.15 on) lowers it for this socket
        // only; the time-out still follows the measured round trip.
        const TCP_RTO_MIN_US: libc::c_int = 45;
        let us: u32 = RTO_MIN_US;
        // SAFETY: a valid socket descriptor, a u32 of the length given.
        let r = unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::IPPROTO_TCP,
                TCP_RTO_MIN_US,
                (&us as *const u32).cast(),
                std::mem::size_of::<u32>() as libc::socklen_t,
            )
        };
        if r != 0 {
            log::debug!(
                "TCP_RTO_MIN_US refused: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = stream;
}

fn no(out: &mut TcpStream, reason: &str) {
    let reply = FetchReply::No {
        reason: reason.into(),
    };
    if let Ok(line) = serde_json::to_string(&reply) {
        let _ = out.write_all(format!("{line}\n").as_bytes());
    }
}

fn stream_file(
    out: &mut TcpStream,
    s: &Served,
    f: &Fetch,
    events: &Sender<Event>,
) -> std::io::Result<()> {
    let mut src = std::fs::File::open(&s.path)?;
    src.seek(SeekFrom::Start(f.offset))?;
    let reply = FetchReply::Ok {
        offset: f.offset,
        size: s.size,
    };
    out.write_all(format!("{}\n", serde_json::to_string(&reply)?).as_bytes())?;
    let mut buf = Vec::with_capacity(CHUNK as usize + TAG);
    let mut index = f.offset / CHUNK;
    let mut last = Instant::now();
    let (offer, user) = (f.offer.clone(), f.user.clone());
    send(
        events,
        Report::Sending {
            offer,
            user,
            done: f.offset,
        },
    );
    loop {
        let len = file::chunk_len(s.size, index);
        if len == 0 {
            break;
        }
        if s.cancel.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("cancelled"));
        }
        buf.resize(len, 0);
        src.read_exact(&mut buf)?;
        if !file::seal(&s.key, &f.offer, index, &mut buf) {
            return Err(std::io::Error::other("cannot seal"));
        }
        out.write_all(&(buf.len() as u32).to_be_bytes())?;
        out.write_all(&buf)?;
        index += 1;
        if last.elapsed() >= REPORT_EVERY {
            last = Instant::now();
            let done = (index * CHUNK).min(s.size);
            send(
                events,
                Report::Sending {
                    offer: f.offer.clone(),
                    user: f.user.clone(),
                    done,
                },
            );
        }
    }
    out.flush()?;
    send(
        events,
        Report::Sending {
            offer: f.offer.clone(),
            user: f.user.clone(),
            done: s.size,
        },
    );
    Ok(())
}

/// Everything a download thread needs.
pub struct Download {
    pub offer: file::Offer,
    pub me: String,
    pub source: SocketAddr,
    pub part: PathBuf,
    pub dir: PathBuf,
    pub name: String,
    pub cancel: Arc<AtomicBool>,
    pub events: Sender<Event>,
}

enum Fail {
    /// Worth another connection.
    Retry(String),
    /// Not: the sender said no, or the data is not genuine.
    Fatal(String),
}

impl From<std::io::Error> for Fail {
    fn from(e: std::io::Error) -> Fail {
        use std::io::ErrorKind::{TimedOut, WouldBlock};
        match e.kind() {
            WouldBlock | TimedOut => Fail::Retry(format!("nothing for {}s", STALL.as_secs())),
            _ => Fail::Retry(e.to_string()),
        }
    }
}

/// Fetches the whole file, then verifies and places it; reports the end.
pub fn download(d: Download) {
    let id = d.offer.offer.clone();
    let end = match fetch_all(&d) {
        Ok(path) => Report::Received { offer: id, path },
        Err(_) if d.cancel.load(Ordering::Relaxed) => {
            let _ = std::fs::remove_file(&d.part);
            Report::Stopped { offer: id }
        }
        Err(reason) => {
            let _ = std::fs::remove_file(&d.part);
            Report::Failed { offer: id, reason }
        }
    };
    send(&d.events, end);
}

fn fetch_all(d: &Download) -> Result<PathBuf, String> {
    let key = file::unhex::<32>(&d.offer.key).ok_or("bad key in the offer")?;
    let mut part = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&d.part)
        .map_err(|e| format!("cannot write {}: {e}", d.part.display()))?;
    let mut attempt = 0u32;
    let mut progress_at = Instant::now();
    loop {
        if d.cancel.load(Ordering::Relaxed) {
            return Err("cancelled".into());
        }
        let have = part.metadata().map_err(|e| e.to_string())?.len();
        let offset = (have.min(d.offer.size) / CHUNK) * CHUNK;
        if offset == d.offer.size && have == d.offer.size {
            break;
        }
        part.set_len(offset).map_err(|e| e.to_string())?;
        match fetch_once(d, &key, &mut part, offset) {
            Ok(()) => break,
            Err(Fail::Fatal(why)) => return Err(why),
            Err(Fail::Retry(why)) => {
                let now_have = part.metadata().map(|m| m.len()).unwrap_or(0);
                if now_have > have {
                    progress_at = Instant::now();
                    attempt = 0;
                }
                if progress_at.elapsed() >= GIVE_UP {
                    return Err(format!("no progress for {}s: {why}", GIVE_UP.as_secs()));
                }
                attempt += 1;
                let offer = d.offer.offer.clone();
                send(
                    &d.events,
                    Report::Retrying {
                        offer,
                        attempt,
                        reason: why,
                    },
                );
                let wait =
                    Duration::from_millis(200u64 << attempt.min(4)).min(Duration::from_secs(2));
                let until = Instant::now() + wait;
                while Instant::now() < until && !d.cancel.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
    verify(&mut part, &d.offer.sha256)?;
    drop(part);
    super::sanitize::place(&d.part, &d.dir, &d.name).map_err(|e| format!("cannot save: {e}"))
}

fn fetch_once(
    d: &Download,
    key: &[u8; 32],
    part: &mut std::fs::File,
    offset: u64,
) -> Result<(), Fail> {
    let stream = TcpStream::connect_timeout(&d.source, Duration::from_secs(3))?;
    stream.set_read_timeout(Some(STALL))?;
    stream.set_write_timeout(Some(STALL))?;
    let fetch = Fetch {
        offer: d.offer.offer.clone(),
        user: d.me.clone(),
        offset,
        proof: file::proof(key, &d.offer.offer, &d.me, offset),
    };
    let mut w = stream.try_clone()?;
    w.write_all(
        format!(
            "{}\n",
            serde_json::to_string(&fetch).map_err(std::io::Error::other)?
        )
        .as_bytes(),
    )?;
    let mut r = BufReader::with_capacity(CHUNK as usize + TAG + 4, stream);
    match serde_json::from_str::<FetchReply>(&read_line(&mut r)?) {
        Ok(FetchReply::Ok { offset: o, size }) if o == offset && size == d.offer.size => {}
        Ok(FetchReply::No { reason }) => {
            return Err(Fail::Fatal(format!("the sender said: {reason}")))
        }
        _ => return Err(Fail::Fatal("bad reply from the sender".into())),
    }
    part.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::with_capacity(CHUNK as usize + TAG);
    let mut index = offset / CHUNK;
    let mut last = Instant::now();
    loop {
        let len = file::chunk_len(d.offer.size, index);
        if len == 0 {
            return Ok(());
        }
        if d.cancel.load(Ordering::Relaxed) {
            return Err(Fail::Fatal("cancelled".into()));
        }
        let mut n = [0u8; 4];
        r.read_exact(&mut n)?;
        if u32::from_be_bytes(n) as usize != len + TAG {
            return Err(Fail::Fatal("bad chunk length".into()));
        }
        buf.resize(len + TAG, 0);
        r.read_exact(&mut buf)?;
        if !file::open(key, &d.offer.offer, index, &mut buf) {
            return Err(Fail::Fatal(format!("chunk {index} is not genuine")));
        }
        part.write_all(&buf)?;
        index += 1;
        if last.elapsed() >= REPORT_EVERY {
            last = Instant::now();
            let done = (index * CHUNK).min(d.offer.size);
            send(
                &d.events,
                Report::Receiving {
                    offer: d.offer.offer.clone(),
                    done,
                },
            );
        }
    }
}

/// Hashes the whole `.part` and compares with the offer's SHA-256.
fn verify(part: &mut std::fs::File, want: &str) -> Result<(), String> {
    part.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let got = sha256_of(part).map_err(|e| e.to_string())?;
    if got != want.to_ascii_lowercase() {
        return Err(format!(
            "SHA-256 mismatch: got {got}, offered {want}; not kept"
        ));
    }
    Ok(())
}

/// SHA-256 (hex) of everything `r` reads, in 64 KiB steps.
pub fn sha256_of(r: &mut impl Read) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK as usize];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(file::hex(&h.finalize()))
}
