//! The floor: loopback TCP and UDP round trips with no lanchat code, which
//! the registry and room latencies are shown as ratios to.

use super::*;

pub struct Floor {
    pub trips: usize,
    pub tcp: Lat,
    pub udp: Lat,
}

pub fn floor_tcp(trips: usize) -> io::Result<Lat> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    let echo = thread::spawn(move || -> io::Result<()> {
        let (mut s, _) = l.accept()?;
        s.set_nodelay(true)?;
        let mut b = [0u8; 1];
        loop {
            match s.read(&mut b) {
                Ok(0) | Err(_) => return Ok(()),
                Ok(_) => s.write_all(&b)?,
            }
        }
    });
    let mut c = TcpStream::connect(addr)?;
    c.set_nodelay(true)?;
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut b = [7u8; 1];
    let mut v = Vec::with_capacity(trips);
    for i in 0..trips + 1000 {
        let t = Instant::now();
        c.write_all(&b)?;
        c.read_exact(&mut b)?;
        if i >= 1000 {
            v.push(t.elapsed().as_nanos() as u64);
        }
    }
    drop(c);
    let _ = echo.join();
    Ok(lat_ns(v))
}

pub fn floor_udp(trips: usize) -> io::Result<Lat> {
    let a = UdpSocket::bind("127.0.0.1:0")?;
    let b = UdpSocket::bind("127.0.0.1:0")?;
    a.connect(b.local_addr()?)?;
    b.connect(a.local_addr()?)?;
    a.set_read_timeout(Some(Duration::from_secs(1)))?;
    b.set_read_timeout(Some(Duration::from_secs(5)))?;
    let echo = thread::spawn(move || {
        let mut buf = [0u8; 8];
        while let Ok(n) = b.recv(&mut buf) {
            if n != 1 || b.send(&buf[..1]).is_err() {
                return;
            }
        }
    });
    let mut buf = [0u8; 8];
    let mut v = Vec::with_capacity(trips);
    for i in 0..trips + 1000 {
        let t = Instant::now();
        a.send(&[7])?;
        if a.recv(&mut buf).is_ok() && i >= 1000 {
            v.push(t.elapsed().as_nanos() as u64);
        }
    }
    let _ = a.send(b"stop");
    let _ = echo.join();
    Ok(lat_ns(v))
}

pub fn floor_section(p: &Params) -> Result<Floor, String> {
    let tcp = floor_tcp(p.floor_trips).map_err(|e| format!("TCP floor: {e}"))?;
    let udp = floor_udp(p.floor_trips).map_err(|e| format!("UDP floor: {e}"))?;
    Ok(Floor {
        trips: p.floor_trips,
        tcp,
        udp,
    })
}

pub fn report_floor(r: &mut Report, f: &Result<Floor, String>) {
    r.heading("Floor: loopback round trips, 1-byte ping-pong between two threads of the bench");
    match f {
        Ok(f) => {
            let rows = vec![
                vec![
                    "TCP round trip".into(),
                    group(f.trips as u64),
                    fmt_us(f.tcp.p50),
                    fmt_us(f.tcp.p99),
                    fmt_us(f.tcp.max),
                ],
                vec![
                    "UDP round trip".into(),
                    group(f.udp.n as u64),
                    fmt_us(f.udp.p50),
                    fmt_us(f.udp.p99),
                    fmt_us(f.udp.max),
                ],
            ];
            table(&mut r.text, &["", "trips", "p50", "p99", "max"], &rows);
            r.json.insert(
                "floor".into(),
                json!({"round_trips": f.trips, "tcp": lat_json(&f.tcp), "udp": lat_json(&f.udp)}),
            );
        }
        Err(e) => {
            r.line(format!("  error: {e}"));
            r.json.insert("floor".into(), json!({"error": e}));
        }
    }
}
