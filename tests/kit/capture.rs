//! Every packet on the loopback interface, from a raw `AF_PACKET` socket
//! (root only): what an eavesdropper on the wire would see.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

/// A capture running on a thread until [`stop`](Capture::stop).
pub struct Capture {
    stop: Arc<AtomicBool>,
    packets: Arc<Mutex<Vec<Vec<u8>>>>,
    thread: Option<JoinHandle<()>>,
}

impl Capture {
    /// Starts capturing on `lo`; `None` without the right (not root).
    pub fn loopback() -> Option<Capture> {
        // SAFETY: plain socket calls on a descriptor this function owns.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW,
                (libc::ETH_P_ALL as u16).to_be() as libc::c_int,
            )
        };
        if fd < 0 {
            return None;
        }
        let name = std::ffi::CString::new("lo").unwrap();
        // SAFETY: as above; `sll` is a plain struct of integers.
        unsafe {
            let index = libc::if_nametoindex(name.as_ptr());
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
            sll.sll_ifindex = index as i32;
            let tv = libc::timeval {
                tv_sec: 0,
                tv_usec: 50_000,
            };
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as u32,
            );
            if libc::bind(
                fd,
                &sll as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            ) != 0
            {
                libc::close(fd);
                return None;
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let packets = Arc::new(Mutex::new(Vec::new()));
        let (st, keep) = (stop.clone(), packets.clone());
        let thread = thread::spawn(move || {
            let mut buf = vec![0u8; 70_000];
            while !st.load(Ordering::SeqCst) {
                // SAFETY: reads into a buffer of the length given.
                let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
                if n > 0 {
                    keep.lock().unwrap().push(buf[..n as usize].to_vec());
                }
            }
            // SAFETY: the descriptor is this thread's alone.
            unsafe { libc::close(fd) };
        });
        Some(Capture {
            stop,
            packets,
            thread: Some(thread),
        })
    }

    /// Waits until the frames captured so far satisfy `cond` (false if
    /// `timeout` passes first).
    pub fn wait_until(
        &self,
        timeout: std::time::Duration,
        cond: impl Fn(&[Vec<u8>]) -> bool,
    ) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if cond(&self.packets.lock().unwrap()) {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Stops and returns every packet captured (Ethernet frames).
    pub fn stop(mut self) -> Vec<Vec<u8>> {
        self.halt();
        std::mem::take(&mut *self.packets.lock().unwrap())
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The UDP payloads sent to `port` among Ethernet frames (IPv4 only).
pub fn udp_payloads_to(frames: &[Vec<u8>], port: u16) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for f in frames {
        // Ethernet header (14), IPv4 (ethertype 0x0800).
        if f.len() < 14 + 20 + 8 || f[12..14] != [0x08, 0x00] {
            continue;
        }
        let ip = &f[14..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        if ip[9] != 17 || ip.len() < ihl + 8 {
            continue;
        }
        let udp = &ip[ihl..];
        if u16::from_be_bytes([udp[2], udp[3]]) == port {
            out.push(udp[8..].to_vec());
        }
    }
    out
}

/// The TCP and UDP payloads from or to `port` among Ethernet frames (IPv4).
pub fn payloads_on_port(frames: &[Vec<u8>], port: u16) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for f in frames {
        if f.len() < 14 + 20 + 8 || f[12..14] != [0x08, 0x00] {
            continue;
        }
        let ip = &f[14..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
        if total < ihl + 8 {
            continue;
        }
        let l4 = &ip[ihl..total];
        let (src, dst) = (
            u16::from_be_bytes([l4[0], l4[1]]),
            u16::from_be_bytes([l4[2], l4[3]]),
        );
        if src != port && dst != port {
            continue;
        }
        let header = match ip[9] {
            17 => 8,
            6 if l4.len() >= 20 => usize::from(l4[12] >> 4) * 4,
            _ => continue,
        };
        if l4.len() > header {
            out.push(l4[header..].to_vec());
        }
    }
    out
}

/// Runs of at least `min` ASCII hex digits in `bytes`.
pub fn hex_runs(bytes: &[u8], min: usize) -> Vec<String> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, b) in bytes.iter().chain(std::iter::once(&b' ')).enumerate() {
        match (b.is_ascii_hexdigit(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if i - s >= min {
                    runs.push(String::from_utf8_lossy(&bytes[s..i]).into_owned());
                }
                start = None;
            }
            _ => {}
        }
    }
    runs
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}
