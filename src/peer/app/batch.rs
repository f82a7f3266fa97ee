//! Sending a batch of room datagrams: on Linux one `sendmmsg(2)` call for
//! the whole batch (a message to N members is one system call, not N),
//! elsewhere a loop of `send_to`. A failed send is a lost datagram: the
//! room engine's repair covers it.

use std::net::{SocketAddr, UdpSocket};

/// Sends every `(to, bytes)` of `batch` from `sock`.
pub fn send_all(sock: &UdpSocket, batch: &[(SocketAddr, Vec<u8>)]) {
    #[cfg(target_os = "linux")]
    {
        linux::send_all(sock, batch);
    }
    #[cfg(not(target_os = "linux"))]
    for (to, bytes) in batch {
        if let Err(e) = sock.send_to(bytes, to) {
            log::debug!("datagram to {to}: {e}");
        }
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::net::{SocketAddr, UdpSocket};
    use std::os::fd::AsRawFd;

    /// A socket address in the C layout `sendmmsg` reads.
    fn raw(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
        // SAFETY: sockaddr_storage is plain data; all zeroes is valid.
        let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let len = match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than sockaddr_in and
                // suitably aligned for it.
                unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in, sin) };
                std::mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: as above, for sockaddr_in6.
                unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in6, sin6) };
                std::mem::size_of::<libc::sockaddr_in6>()
            }
        };
        (ss, len as libc::socklen_t)
    }

    pub fn send_all(sock: &UdpSocket, batch: &[(SocketAddr, Vec<u8>)]) {
        // At most this many per call (the kernel's UIO_MAXIOV).
        for chunk in batch.chunks(1024) {
            let mut addrs: Vec<(libc::sockaddr_storage, libc::socklen_t)> =
                chunk.iter().map(|(to, _)| raw(to)).collect();
            let mut iovs: Vec<libc::iovec> = chunk
                .iter()
                .map(|(_, b)| libc::iovec {
                    iov_base: b.as_ptr() as *mut libc::c_void,
                    iov_len: b.len(),
                })
                .collect();
            let mut msgs: Vec<libc::mmsghdr> = addrs
                .iter_mut()
                .zip(iovs.iter_mut())
                .map(|((ss, len), iov)| {
                    // SAFETY: msghdr is plain data; all zeroes is valid.
                    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
                    hdr.msg_name = ss as *mut _ as *mut libc::c_void;
                    hdr.msg_namelen = *len;
                    hdr.msg_iov = iov;
                    hdr.msg_iovlen = 1;
                    libc::mmsghdr {
                        msg_hdr: hdr,
                        msg_len: 0,
                    }
                })
                .collect();
            let mut done = 0;
            while done < msgs.len() {
                // SAFETY: every mmsghdr points at an address and an iovec
                // that live until this call returns, and the iovecs at
                // buffers `batch` holds.
                let n = unsafe {
                    libc::sendmmsg(
                        sock.as_raw_fd(),
                        msgs[done..].as_mut_ptr(),
                        (msgs.len() - done) as libc::c_uint,
                        0,
                    )
                };
                if n <= 0 {
                    // The first of the rest failed (an ICMP error, a full
                    // buffer): it is lost; go on with the others.
                    log::debug!("sendmmsg: {}", std::io::Error::last_os_error());
                    done += 1;
                } else {
                    done += n as usize;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_reaches_every_address() {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rx: Vec<UdpSocket> = (0..3)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let batch: Vec<(SocketAddr, Vec<u8>)> = rx
            .iter()
            .enumerate()
            .flat_map(|(i, s)| {
                let to = s.local_addr().unwrap();
                [(to, vec![i as u8; 10]), (to, vec![i as u8 + 100; 20])]
            })
            .collect();
        send_all(&tx, &batch);
        for (i, s) in rx.iter().enumerate() {
            s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let mut buf = [0u8; 64];
            let (n, from) = s.recv_from(&mut buf).unwrap();
            assert_eq!(
                (&buf[..n], from),
                (&[i as u8; 10][..], tx.local_addr().unwrap())
            );
            let (n, _) = s.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[i as u8 + 100; 20][..]);
        }
    }
}
