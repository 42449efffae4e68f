//! A tiny HTTP/1.1 server of fixed pages (std only, one thread, one request per connection),
//! standing for another site in the browser tests: the Digital ID page that hands the
//! consent token over by a form POST, and a foreign page whose script calls the agent. Bound
//! to 127.0.0.1 and addressed as `http://localhost:<port>`, a different site from
//! `http://127.0.0.1:<port>` for the browser.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the site received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
}

/// A page: status, content type and body.
#[derive(Clone)]
pub struct Page {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Page {
    pub fn html(body: impl Into<String>) -> Page {
        Page {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: body.into(),
        }
    }

    pub fn script(body: impl Into<String>) -> Page {
        Page {
            status: 200,
            content_type: "text/javascript; charset=utf-8",
            body: body.into(),
        }
    }
}

/// The running site; stops when dropped.
pub struct Site {
    pub port: u16,
    pages: Arc<Mutex<HashMap<String, Page>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl Site {
    pub fn start() -> Site {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let pages: Arc<Mutex<HashMap<String, Page>>> = Arc::default();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s, st) = (pages.clone(), seen.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    serve(stream, &p, &s);
                }
            }
        });
        Site {
            port,
            pages,
            seen,
            stop,
        }
    }

    /// `http://localhost:<port>`: the site's origin as the browser sees it.
    pub fn origin(&self) -> String {
        format!("http://localhost:{}", self.port)
    }

    /// Serve `page` at `path`.
    pub fn put(&self, path: &str, page: Page) {
        self.pages.lock().unwrap().insert(path.to_owned(), page);
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(stream: TcpStream, pages: &Mutex<HashMap<String, Page>>, seen: &Mutex<Vec<Seen>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length.min(1 << 20)];
    let _ = reader.read_exact(&mut body);
    seen.lock().unwrap().push(Seen {
        method,
        path: path.clone(),
    });
    let page = pages.lock().unwrap().get(&path).cloned().unwrap_or(Page {
        status: 404,
        content_type: "text/plain",
        body: "not found".to_owned(),
    });
    let head = format!(
        "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\
         Connection: close\r\n\r\n",
        page.status,
        page.content_type,
        page.body.len()
    );
    let mut stream = stream;
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(page.body.as_bytes());
    let _ = stream.flush();
}

/// Escape `text` for an HTML attribute value.
pub fn attr(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The stand-in Digital ID page: a form that POSTs `consent_token` (and `lang`) to
/// `action`, sent when the test clicks `#handover-go`.
pub fn handover_page(action: &str, token: &str, lang: &str) -> Page {
    Page::html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Digital ID</title></head>\
         <body><h1>Digital ID</h1><form id=\"handover\" method=\"post\" action=\"{}\">\
         <input type=\"hidden\" name=\"consent_token\" value=\"{}\">\
         <input type=\"hidden\" name=\"lang\" value=\"{}\">\
         <button id=\"handover-go\" type=\"submit\">Continue</button></form></body></html>",
        attr(action),
        attr(token),
        attr(lang)
    ))
}
