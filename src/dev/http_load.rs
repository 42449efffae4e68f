//! A lean HTTP/1.1 client for the load generators of the benchmarks: one keep-alive
//! connection per worker thread, each request written as bytes prepared before the clock
//! starts, each answer read by its `Content-Length` (or chunks). It shares the machine with
//! the server it measures, so it must cost little per request: no runtime, no header maps, no
//! copy of the request. Development and benchmarks only; must never: be used to talk to
//! anything but a server the benchmark started.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Where requests go: the address and the `Host` header of an `http://` URL.
#[derive(Debug, Clone)]
pub struct Target {
    addr: SocketAddr,
    host: String,
    /// The URL's path without its trailing `/` (the empty string for the root).
    base: String,
}

impl Target {
    /// The target of `url` (`http://host:port[/base]`).
    pub fn parse(url: &str) -> Result<Target, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
        if parsed.scheme() != "http" {
            return Err(format!("{url}: the load generator speaks plain http only"));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| format!("{url}: no host"))?
            .to_owned();
        let port = parsed.port_or_known_default().unwrap_or(80);
        let addr = parsed
            .socket_addrs(|| Some(80))
            .map_err(|e| format!("{url}: {e}"))?
            .into_iter()
            .next()
            .ok_or_else(|| format!("{url}: no address"))?;
        Ok(Target {
            addr,
            host: format!("{host}:{port}"),
            base: parsed.path().trim_end_matches('/').to_owned(),
        })
    }

    /// A complete POST request of `body` (JSON) to `path` under the URL, with a bearer token.
    pub fn post_json(&self, path: &str, bearer: &str, body: &[u8]) -> Vec<u8> {
        let mut request = format!(
            "POST {}{path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {bearer}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.base,
            self.host,
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        request
    }
}

/// One answer: its status and body.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

/// A keep-alive connection.
struct Connection {
    reader: BufReader<TcpStream>,
}

impl Connection {
    fn open(target: &Target) -> std::io::Result<Connection> {
        let stream = TcpStream::connect_timeout(&target.addr, Duration::from_secs(10))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        stream.set_write_timeout(Some(Duration::from_secs(60)))?;
        Ok(Connection {
            reader: BufReader::with_capacity(64 * 1024, stream),
        })
    }

    /// Send `request` and read its answer; `Ok((answer, keep))`, `keep` false when the server
    /// closes the connection after it.
    fn exchange(&mut self, request: &[u8]) -> std::io::Result<(Answer, bool)> {
        self.reader.get_mut().write_all(request)?;
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "the server closed the connection",
            ));
        }
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| invalid(format!("bad status line {line:?}")))?;
        let mut length = None;
        let mut chunked = false;
        let mut keep = true;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(invalid("the connection closed in the headers".to_owned()));
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| invalid(format!("bad content-length {value:?}")))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                keep = !value.eq_ignore_ascii_case("close");
            }
        }
        let mut body = Vec::new();
        if matches!(status, 100..=199 | 204 | 304) {
            // No body, whatever the headers say.
        } else if chunked {
            loop {
                line.clear();
                self.reader.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| invalid(format!("bad chunk size {line:?}")))?;
                if size == 0 {
                    line.clear();
                    self.reader.read_line(&mut line)?;
                    break;
                }
                let start = body.len();
                body.resize(start + size, 0);
                self.reader
                    .read_exact(body.get_mut(start..).unwrap_or_default())?;
                line.clear();
                self.reader.read_line(&mut line)?;
            }
        } else if let Some(length) = length {
            body.resize(length, 0);
            self.reader.read_exact(&mut body)?;
        } else {
            self.reader.read_to_end(&mut body)?;
            keep = false;
        }
        Ok((Answer { status, body }, keep))
    }
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

/// Send every request of `requests` over `concurrency` keep-alive connections, each worker
/// taking the next request not yet sent; `judge` tells whether an answer is a success (it
/// runs on the workers, so keep it cheap). Returns, in no particular order, whether each
/// request succeeded and its latency in milliseconds; a request that failed in transport is
/// a failure (reported on stderr, the first few only) and the worker reconnects.
pub fn run(
    target: &Target,
    requests: &[Vec<u8>],
    concurrency: u32,
    judge: &(dyn Fn(&Answer) -> bool + Sync),
) -> Result<Vec<(bool, f64)>, String> {
    let next = AtomicUsize::new(0);
    let reported = AtomicUsize::new(0);
    let report = |message: String| {
        if reported.fetch_add(1, Ordering::Relaxed) < 3 {
            eprintln!("{message}");
        }
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..concurrency.max(1))
            .map(|_| {
                let (next, report) = (&next, &report);
                scope.spawn(move || -> Result<Vec<(bool, f64)>, String> {
                    let mut out = Vec::new();
                    let mut conn: Option<Connection> = None;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(request) = requests.get(i) else {
                            break;
                        };
                        let started = Instant::now();
                        let answer = match conn.take() {
                            // A kept connection the server closed meanwhile: once more on a
                            // new one (the request was not read).
                            Some(mut c) => match c.exchange(request) {
                                Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => {
                                    Connection::open(target)
                                        .and_then(|mut c| c.exchange(request).map(|a| (a, c)))
                                }
                                other => other.map(|a| (a, c)),
                            },
                            None => Connection::open(target)
                                .and_then(|mut c| c.exchange(request).map(|a| (a, c))),
                        };
                        let ms = started.elapsed().as_secs_f64() * 1000.0;
                        match answer {
                            Ok(((answer, keep), c)) => {
                                let ok = judge(&answer);
                                if !ok {
                                    report(format!(
                                        "answer {}: {}",
                                        answer.status,
                                        String::from_utf8_lossy(&answer.body)
                                    ));
                                }
                                if keep {
                                    conn = Some(c);
                                }
                                out.push((ok, ms));
                            }
                            Err(e) => {
                                report(format!("request failed: {e}"));
                                out.push((false, ms));
                            }
                        }
                    }
                    Ok(out)
                })
            })
            .collect();
        let mut all = Vec::with_capacity(requests.len());
        for worker in workers {
            match worker.join() {
                Ok(Ok(v)) => all.extend(v),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err("a load worker panicked".to_owned()),
            }
        }
        Ok(all)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::net::TcpListener;

    /// A server that answers each request on one connection with a fixed answer.
    fn serve(answers: Vec<&'static str>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            for answer in answers {
                // Read one request: headers, then Content-Length bytes.
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                reader.get_mut().write_all(answer.as_bytes()).unwrap();
            }
        });
        format!("http://{addr}")
    }

    #[test]
    fn answers_are_read_by_length_and_by_chunks_on_one_connection() {
        let url = serve(vec![
            "HTTP/1.1 201 Created\r\ncontent-length: 5\r\n\r\nhello",
            "HTTP/1.1 409 Conflict\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
        ]);
        let target = Target::parse(&url).unwrap();
        let requests: Vec<Vec<u8>> = (0..3)
            .map(|i| {
                target.post_json(
                    "/api/v1/applications",
                    "t",
                    format!("{{\"n\":{i}}}").as_bytes(),
                )
            })
            .collect();
        let bodies = std::sync::Mutex::new(Vec::new());
        let judge = |a: &Answer| {
            bodies.lock().unwrap().push((a.status, a.body.clone()));
            a.status == 201
        };
        let results = run(&target, &requests, 1, &judge).unwrap();
        assert_eq!(results.iter().filter(|(ok, _)| *ok).count(), 2);
        assert_eq!(
            bodies.into_inner().unwrap(),
            vec![
                (201, b"hello".to_vec()),
                (409, b"abcde".to_vec()),
                (201, b"ok".to_vec())
            ]
        );
    }
}
