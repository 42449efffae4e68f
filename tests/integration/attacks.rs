//! Resource attacks against a real `tamga serve`, bounded in time (each well under 60 s) and
//! on loopback only: a flood of invented HTTP methods (metrics series and memory stay
//! bounded), slow request bodies (a whole-body deadline, a cap on connections per address,
//! open descriptors bounded, another client served meanwhile; trusted proxies and the
//! portal's verified connections not counted), and `Expect: 100-continue` or a chunked body
//! a route will not take.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::Server;

/// The server's address.
fn addr(server: &Server) -> SocketAddr {
    server
        .base
        .strip_prefix("http://")
        .unwrap()
        .parse()
        .unwrap()
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Open file descriptors of a process.
/// The sockets the process holds open (its connections and listeners). Files are left out:
/// the database pool opens its connections (and their journal files) lazily, whenever a
/// background loop first needs one, which says nothing about what an attack left behind.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

/// A raw TCP connection (from 127.0.0.1) with a read timeout.
fn connect(to: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(to).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

/// One HTTP/1.1 response off a stream: status, header block (lower-cased), body.
fn read_response(stream: &mut impl Read, buf: &mut Vec<u8>) -> Option<(u16, String, Vec<u8>)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status: u16 = head.get(9..12)?.parse().ok()?;
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            let total = end + 4 + length;
            while buf.len() < total {
                if !fill(stream, buf) {
                    return None;
                }
            }
            let body = buf[end + 4..total].to_vec();
            buf.drain(..total);
            return Some((status, head, body));
        }
        if !fill(stream, buf) {
            return None;
        }
    }
}

/// Read more into `buf`; false at end of stream or on an error.
fn fill(stream: &mut impl Read, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    match stream.read(&mut chunk) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

/// Whether the server closed the connection (end of stream within `wait`).
fn closed(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut byte = [0u8; 1];
    matches!(stream.read(&mut byte), Ok(0))
        || matches!(stream.read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
}

fn problem_code(body: &[u8]) -> String {
    let problem: Value = serde_json::from_slice(body).unwrap();
    problem["code"].as_str().unwrap_or_default().to_owned()
}

fn series(metrics: &str, family: &str) -> usize {
    let prefix = format!("{family}{{");
    metrics.lines().filter(|l| l.starts_with(&prefix)).count()
}

#[test]
fn a_flood_of_invented_methods_adds_no_metric_series_and_no_memory() {
    let dir = tempfile::tempdir().unwrap();
    // The flood guard off, so that every request reaches the router and is refused there.
    let server = Server::start(
        dir.path(),
        &[("TAMGA_LIMITS__CLIENT_REQUESTS_PER_SECOND", "0")],
    );
    let to = addr(&server);
    let pid = server.pid();
    let flood = |round: usize, per_connection: usize| {
        std::thread::scope(|scope| {
            for c in 0..8 {
                scope.spawn(move || {
                    let mut stream = connect(to);
                    let mut buf = Vec::new();
                    let mut sent = 0;
                    // Pipelined in batches of 100 over one keep-alive connection.
                    while sent < per_connection {
                        let batch = (per_connection - sent).min(100);
                        let mut out = Vec::new();
                        for i in sent..sent + batch {
                            let n = (round * 8 + c) * per_connection + i;
                            let path = if i % 2 == 0 {
                                "/healthz".to_owned()
                            } else {
                                format!("/nowhere/{n}")
                            };
                            out.extend_from_slice(
                                format!("Q{n:07} {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
                            );
                        }
                        stream.write_all(&out).unwrap();
                        for i in sent..sent + batch {
                            let (status, _, body) =
                                read_response(&mut stream, &mut buf).expect("a response");
                            let expected = if i % 2 == 0 { 405 } else { 404 };
                            assert_eq!(status, expected);
                            let code = problem_code(&body);
                            assert!(
                                code == "method_not_allowed" || code == "not_found",
                                "{code}"
                            );
                        }
                        sent += batch;
                    }
                });
            }
        });
    };
    // A first round warms the allocator and the worker pools up.
    flood(0, 500);
    let rss_before = rss_kib(pid);
    let started = Instant::now();
    flood(1, 5_000);
    let elapsed = started.elapsed();
    let rss_after = rss_kib(pid);
    let metrics = server.get("/metrics").text().unwrap();
    // 44,000 requests with as many methods and 22,000 paths: the series are those of the
    // closed label sets only.
    assert!(
        series(&metrics, "tamga_http_requests_total") <= 16,
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"tamga_http_requests_total{method="other",route="/healthz",status="405"} 22000"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"tamga_http_requests_total{method="other",route="unmatched",status="404"} 22000"#
        ),
        "{metrics}"
    );
    assert!(
        !metrics.contains("Q00"),
        "an invented method became a label"
    );
    assert!(!metrics.contains("nowhere"), "a raw path became a label");
    assert!(
        metrics.len() < 64 * 1024,
        "{} bytes of metrics",
        metrics.len()
    );
    // 40,000 requests grow the process by a few MiB at most (the old labels: 135 MB).
    let growth = rss_after.saturating_sub(rss_before);
    assert!(
        growth < 16 * 1024,
        "RSS grew by {growth} KiB ({rss_before} -> {rss_after} KiB) in {elapsed:?}"
    );
    assert_eq!(server.get("/healthz").status(), 200);
    eprintln!(
        "method flood: 40,000 requests in {elapsed:?}; RSS {rss_before} -> {rss_after} KiB; \
         /metrics {} bytes",
        metrics.len()
    );
}

/// A client whose connections come from `local` (127.0.0.2 is loopback too).
fn client_from(local: Ipv4Addr) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .local_address(IpAddr::V4(local))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// The start of a portal request whose 60,000-byte body never comes: one byte of it.
const SLOW_APPLICATION: &[u8] = b"POST /api/v1/applications HTTP/1.1\r\nHost: x\r\n\
Authorization: Bearer x\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{";

#[test]
fn slow_bodies_time_out_and_connections_per_address_are_capped() {
    const CAP: usize = 40;
    const ATTACK: usize = 400;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            ("TAMGA_LIMITS__CLIENT_REQUESTS_PER_SECOND", "0"),
            ("TAMGA_LIMITS__CONNECTIONS_PER_ADDRESS", "40"),
            ("TAMGA_SERVER__BODY_TIMEOUT_MS", "5000"),
        ],
    );
    let to = addr(&server);
    let pid = server.pid();
    let fds_before = open_fds(pid);
    // ATTACK connections from 127.0.0.1, each starting a body it never finishes.
    let started = Instant::now();
    let mut attack: Vec<TcpStream> = (0..ATTACK)
        .map(|_| {
            let mut stream = connect(to);
            stream.write_all(SLOW_APPLICATION).unwrap();
            stream
        })
        .collect();
    // Those over the cap are refused at once (429 rate_limited_connections) and closed; the
    // first CAP are held, waiting for their bodies. Which ones got the places depends on the
    // order the workers accepted them, so sort them by their answer.
    std::thread::sleep(Duration::from_millis(700));
    let mut held = Vec::new();
    let mut refused = 0;
    for mut stream in attack.drain(..) {
        stream
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let mut buf = Vec::new();
        match read_response(&mut stream, &mut buf) {
            Some((status, head, body)) => {
                assert_eq!(status, 429, "{head}");
                assert_eq!(problem_code(&body), "rate_limited_connections");
                assert!(head.contains("retry-after: 1"), "{head}");
                assert!(closed(&mut stream, Duration::from_secs(2)), "{head}");
                refused += 1;
            }
            None => held.push(stream),
        }
    }
    assert!(
        started.elapsed() < Duration::from_millis(4_500),
        "sorting took {:?}",
        started.elapsed()
    );
    assert_eq!(held.len(), CAP, "{refused} refused");
    assert_eq!(refused, ATTACK - CAP);
    // During the attack: the server holds about CAP connections more than before, and a
    // client from another address is served at once.
    let fds_during = open_fds(pid);
    assert!(
        // The held connections show in the count (give or take a few sockets the server
        // opens and closes on its own, such as a readiness probe's).
        (fds_before + CAP - 4..=fds_before + CAP + 8).contains(&fds_during),
        "{fds_before} descriptors before, {fds_during} during the attack"
    );
    let other = client_from(Ipv4Addr::new(127, 0, 0, 2));
    let t = Instant::now();
    assert_eq!(
        other
            .get(format!("{}/healthz", server.base))
            .send()
            .unwrap()
            .status(),
        200
    );
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    // The same address is at its cap: a new connection of its own is refused.
    let same = client_from(Ipv4Addr::LOCALHOST)
        .get(format!("{}/healthz", server.base))
        .send()
        .unwrap();
    assert_eq!(same.status(), 429);
    // The held bodies end at their deadline: 408 body_timeout, connection closed.
    for mut stream in held {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = Vec::new();
        let (status, head, body) = read_response(&mut stream, &mut buf).expect("408");
        assert_eq!(status, 408, "{head}");
        assert_eq!(problem_code(&body), "body_timeout");
        assert!(closed(&mut stream, Duration::from_secs(2)), "{head}");
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(4_900) && waited < Duration::from_secs(15),
        "{waited:?}"
    );
    // Afterwards the descriptors are back and the address is served again.
    std::thread::sleep(Duration::from_millis(300));
    let fds_after = open_fds(pid);
    eprintln!(
        "slow bodies: {fds_before} descriptors before, {fds_during} during, {fds_after} after; \
         held connections answered after {waited:?}"
    );
    assert!(fds_after <= fds_before + 4, "{fds_before} -> {fds_after}");
    let again = client_from(Ipv4Addr::LOCALHOST)
        .get(format!("{}/healthz", server.base))
        .send()
        .unwrap();
    assert_eq!(again.status(), 200);
    let metrics = server.get("/metrics").text().unwrap();
    assert!(
        metrics.contains(&format!(
            r#"tamga_api_rejections_total{{code="rate_limited_connections"}} {}"#,
            ATTACK - CAP + 1
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            r#"tamga_api_rejections_total{{code="body_timeout"}} {CAP}"#
        )),
        "{metrics}"
    );
}

#[test]
fn a_slow_ocsp_body_gets_408() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("TAMGA_SERVER__BODY_TIMEOUT_MS", "500")]);
    let mut stream = connect(addr(&server));
    stream
        .write_all(
            b"POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\n\
Content-Length: 100\r\n\r\n\x30",
        )
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let (status, head, body) = read_response(&mut stream, &mut buf).expect("a response");
    assert_eq!(status, 408, "{head}");
    assert_eq!(problem_code(&body), "body_timeout");
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert!(closed(&mut stream, Duration::from_secs(2)));
}

#[test]
fn expect_continue_only_for_a_body_the_route_takes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let to = addr(&server);
    // The first answer to each of these is the refusal: no `100 Continue` before it.
    for request in [
        // 1 GB declared to the portal (limit 64 KiB).
        &b"POST /api/v1/applications HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\n\
Content-Type: application/json\r\nContent-Length: 1000000000\r\nExpect: 100-continue\r\n\r\n"[..],
        // Just over the OCSP limit (4 KiB).
        b"POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\n\
Content-Length: 4097\r\nExpect: 100-continue\r\n\r\n",
        // Any body on a route that takes none, declared or chunked.
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n",
        b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
Expect: 100-continue\r\n\r\n",
    ] {
        let shown = String::from_utf8_lossy(request).into_owned();
        let mut stream = connect(to);
        stream.write_all(request).unwrap();
        let mut buf = Vec::new();
        let (status, head, body) = read_response(&mut stream, &mut buf).expect(&shown);
        assert_eq!(status, 413, "{shown}\n{head}");
        assert_eq!(problem_code(&body), "body_too_large", "{shown}");
        assert!(closed(&mut stream, Duration::from_secs(3)), "{shown}");
    }
    // A method a POST route does not take, with a body (and without waiting for `100
    // Continue`): 405 with `Allow`, as the router answers it, not 413.
    for request in [
        &b"TRACE /api/v1/applications HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\
Expect: 100-continue\r\n\r\n"[..],
        b"PUT /ocsp HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    ] {
        let shown = String::from_utf8_lossy(request).into_owned();
        let mut stream = connect(to);
        stream.write_all(request).unwrap();
        let mut buf = Vec::new();
        let (status, head, body) = read_response(&mut stream, &mut buf).expect(&shown);
        assert_eq!(status, 405, "{shown}\n{head}");
        assert!(head.to_ascii_lowercase().contains("allow: post"), "{head}");
        assert_eq!(problem_code(&body), "method_not_allowed", "{shown}");
    }
    // Without `Expect`, the same: a body the route does not take is refused before any
    // handler runs, and a chunked body a handler did not read does not keep its connection
    // (here the portal refuses the missing token without reading the body).
    for (request, status) in [
        (
            &b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"[..],
            413,
        ),
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            413,
        ),
        (
            b"POST /api/v1/applications HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            401,
        ),
    ] {
        let shown = String::from_utf8_lossy(request).into_owned();
        let mut stream = connect(to);
        stream.write_all(request).unwrap();
        let mut buf = Vec::new();
        let (got, head, _) = read_response(&mut stream, &mut buf).expect(&shown);
        assert_eq!(got, status, "{shown}\n{head}");
        assert!(closed(&mut stream, Duration::from_secs(3)), "{shown}");
    }
    // A body the route takes is invited, then answered.
    let mut stream = connect(to);
    stream
        .write_all(
            b"POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\n\
Content-Length: 2\r\nExpect: 100-continue\r\n\r\n",
        )
        .unwrap();
    let mut buf = Vec::new();
    let (status, head, _) = read_response(&mut stream, &mut buf).expect("100 Continue");
    assert_eq!(status, 100, "{head}");
    stream.write_all(&[0x30, 0x00]).unwrap();
    let (status, head, body) = read_response(&mut stream, &mut buf).expect("the OCSP answer");
    assert_eq!(status, 200, "{head}");
    // malformedRequest (1): junk still gets its OCSP answer.
    assert_eq!(body, vec![0x30, 0x03, 0x0A, 0x01, 0x01]);
    let metrics = server.get("/metrics").text().unwrap();
    assert!(
        metrics.contains(r#"tamga_api_rejections_total{code="body_too_large"} 6"#),
        "{metrics}"
    );
}

/// The start of an OCSP request whose 100-byte body never comes.
const SLOW_OCSP: &[u8] = b"POST /ocsp HTTP/1.1\r\nHost: x\r\n\
Content-Type: application/ocsp-request\r\nContent-Length: 100\r\n\r\n\x30";

/// Open `n` connections with `open`, each starting `slow` request; how many were refused at
/// once with 429 `rate_limited_connections`, and the others (held, waiting for their bodies).
fn refused_of<S: Read + Write>(n: usize, slow: &[u8], open: impl Fn() -> S) -> (usize, Vec<S>) {
    let mut streams: Vec<S> = (0..n)
        .map(|_| {
            let mut stream = open();
            stream.write_all(slow).unwrap();
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    let mut refused = 0;
    let mut held = Vec::new();
    for mut stream in streams.drain(..) {
        let mut buf = Vec::new();
        match read_response(&mut stream, &mut buf) {
            Some((status, head, body)) => {
                assert_eq!(status, 429, "{head}");
                assert_eq!(problem_code(&body), "rate_limited_connections");
                refused += 1;
            }
            None => held.push(stream),
        }
    }
    (refused, held)
}

#[test]
fn the_connection_cap_spares_trusted_proxies_and_the_verified_portal() {
    use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode};
    let (_tmp, pki, work) = crate::tls::pki_and_workdir();
    let server = pki.server(
        &work,
        true,
        &[
            ("TAMGA_LIMITS__CLIENT_REQUESTS_PER_SECOND", "0"),
            ("TAMGA_LIMITS__CONNECTIONS_PER_ADDRESS", "2"),
            ("TAMGA_SERVER__BODY_TIMEOUT_MS", "3000"),
        ],
    );
    let to: SocketAddr = server
        .base
        .strip_prefix("https://")
        .unwrap()
        .parse()
        .unwrap();
    let tls = |cert: &str| {
        let mut builder = SslConnector::builder(SslMethod::tls_client()).unwrap();
        builder.set_verify(SslVerifyMode::NONE);
        builder
            .set_certificate_file(pki.path(&format!("{cert}.pem")), SslFiletype::PEM)
            .unwrap();
        builder
            .set_private_key_file(pki.path(&format!("{cert}.key")), SslFiletype::PEM)
            .unwrap();
        let connector = builder.build();
        move || {
            let tcp = TcpStream::connect(to).unwrap();
            tcp.set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            connector
                .configure()
                .unwrap()
                .verify_hostname(false)
                .connect("localhost", tcp)
                .unwrap()
        }
    };
    // A client certificate from a foreign CA counts like any client: two held, three refused.
    let (refused, stranger) = refused_of(5, SLOW_OCSP, tls("stranger"));
    assert_eq!((refused, stranger.len()), (3, 2));
    drop(stranger);
    std::thread::sleep(Duration::from_millis(300));
    // The portal's verified connections are not counted: all six held.
    let (refused, portal) = refused_of(6, SLOW_APPLICATION, tls("portal"));
    assert_eq!((refused, portal.len()), (0, 6));
    drop(portal);
    drop(server);

    // A trusted proxy speaks for many clients: its connections are not counted either.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            ("TAMGA_LIMITS__CLIENT_REQUESTS_PER_SECOND", "0"),
            ("TAMGA_LIMITS__CONNECTIONS_PER_ADDRESS", "2"),
            ("TAMGA_LIMITS__TRUSTED_PROXIES", "127.0.0.1"),
        ],
    );
    let to = addr(&server);
    let (refused, held) = refused_of(6, SLOW_APPLICATION, || {
        let stream = connect(to);
        stream
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        stream
    });
    assert_eq!((refused, held.len()), (0, 6));
}
