//! A small W3C WebDriver client over blocking HTTP: `chromedriver` started as a child process
//! on a free port (killed when dropped), one headless Chromium session, and the few commands
//! the journey tests need. Every step can leave a screenshot under
//! `target/browser-screenshots/<test>/`; a wait that times out panics with the page's
//! `message` text, the URL, a screenshot and the browser's console log.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use crate::support::{free_port, tamga_bin};

/// The Chromium Debian installs.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The WebDriver server Debian's `chromium-driver` installs.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The key of an element reference in W3C WebDriver answers.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long a wait lasts unless the test says otherwise.
pub const WAIT: Duration = Duration::from_secs(30);

/// Whether Chromium and chromedriver are installed; otherwise `test` reports itself skipped
/// (or fails where `TAMGA_TEST_REQUIRE_BROWSER` is set, as in CI).
pub fn browser_available(test: &str) -> bool {
    crate::support::tool_present(
        Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists(),
        "TAMGA_TEST_REQUIRE_BROWSER",
        test,
        "chromium or chromedriver is not installed (apt-get install chromium chromium-driver)",
    )
}

/// Where the screenshots of `test` go: `<target>/browser-screenshots/<test>`, `<target>` being
/// the directory this test run's binaries were built into.
pub fn screenshot_dir(test: &str) -> PathBuf {
    let bin = tamga_bin();
    let target = bin
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("browser-screenshots").join(test)
}

/// Options of a browser session.
#[derive(Default, Clone, Copy)]
pub struct Options {
    /// Accept the test server's self-made TLS certificate.
    pub ignore_certificate_errors: bool,
}

/// One headless Chromium driven through its own `chromedriver`.
pub struct Browser {
    driver: Option<Child>,
    base: String,
    session: String,
    http: reqwest::blocking::Client,
    shots: PathBuf,
    shot_no: u32,
    test: String,
}

/// An element of the current page.
#[derive(Clone, Debug)]
pub struct Element {
    id: String,
}

impl Browser {
    /// Start chromedriver and open a session for `test` (its screenshots directory is emptied).
    pub fn start(test: &str, options: Options) -> Browser {
        let shots = screenshot_dir(test);
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).unwrap();
        let port = free_port();
        let log = std::fs::File::create(shots.join("chromedriver.log")).unwrap();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Browser {
            driver: Some(driver),
            base,
            session: String::new(),
            http,
            shots,
            shot_no: 0,
            test: test.to_owned(),
        };
        browser.wait_for_driver();
        let mut args = vec![
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1280,1000",
            "--disable-dev-shm-usage",
        ];
        if options.ignore_certificate_errors {
            args.push("--ignore-certificate-errors");
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": options.ignore_certificate_errors,
            "goog:loggingPrefs": {"browser": "ALL", "performance": "ALL"},
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": args,
                "perfLoggingPrefs": {"enableNetwork": true, "enablePage": false},
            },
        }}});
        let answer = browser.call("POST", "/session", Some(caps));
        browser.session = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_owned();
        browser
    }

    fn wait_for_driver(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = self
                .http
                .get(format!("{}/status", self.base))
                .send()
                .ok()
                .and_then(|r| r.json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                return;
            }
            if let Some(Ok(Some(status))) = self.driver.as_mut().map(Child::try_wait) {
                panic!("chromedriver exited at once ({status})");
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A WebDriver command; returns its `value`, panicking on an error answer.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
    }

    /// A WebDriver command; `Err` with the error's name and message on an error answer.
    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let response = request.send().map_err(|e| e.to_string())?;
        let ok = response.status().is_success();
        let answer: Value = response.json().map_err(|e| e.to_string())?;
        let value = answer.get("value").cloned().unwrap_or(Value::Null);
        if ok {
            Ok(value)
        } else {
            Err(format!("{}: {}", value["error"], value["message"]))
        }
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Open `url` (waits for the page's load event).
    pub fn goto(&self, url: &str) {
        self.call(
            "POST",
            &self.session_path("/url"),
            Some(json!({"url": url})),
        );
    }

    /// The current page's URL.
    pub fn url(&self) -> String {
        self.call("GET", &self.session_path("/url"), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The first element matching the CSS `selector`, if any.
    pub fn try_css(&self, selector: &str) -> Option<Element> {
        let found = self
            .try_call(
                "POST",
                &self.session_path("/element"),
                Some(json!({"using": "css selector", "value": selector})),
            )
            .ok()?;
        Some(Element {
            id: found[ELEMENT_KEY].as_str()?.to_owned(),
        })
    }

    /// Every element matching the CSS `selector`.
    pub fn all_css(&self, selector: &str) -> Vec<Element> {
        let found = self.call(
            "POST",
            &self.session_path("/elements"),
            Some(json!({"using": "css selector", "value": selector})),
        );
        found
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e[ELEMENT_KEY].as_str())
            .map(|id| Element { id: id.to_owned() })
            .collect()
    }

    /// The element matching `selector`, waiting for it to exist.
    pub fn css(&mut self, selector: &str) -> Element {
        let what = format!("an element {selector}");
        self.wait_for(&what, WAIT, |b| b.try_css(selector))
    }

    /// The element with the id `id`, waiting for it to exist.
    pub fn id(&mut self, id: &str) -> Element {
        self.css(&format!("[id=\"{id}\"]"))
    }

    /// The element with the id `id`, waiting until it is displayed.
    pub fn visible(&mut self, id: &str) -> Element {
        let selector = format!("[id=\"{id}\"]");
        let what = format!("#{id} displayed");
        self.wait_for(&what, WAIT, |b| {
            b.try_css(&selector).filter(|e| b.displayed(e))
        })
    }

    /// Whether `element` is displayed.
    pub fn displayed(&self, element: &Element) -> bool {
        self.try_call(
            "GET",
            &self.session_path(&format!("/element/{}/displayed", element.id)),
            None,
        )
        .is_ok_and(|v| v == true)
    }

    /// Whether an element with id `id` exists and is displayed.
    pub fn is_visible(&self, id: &str) -> bool {
        self.try_css(&format!("[id=\"{id}\"]"))
            .is_some_and(|e| self.displayed(&e))
    }

    /// Click `element`.
    pub fn click(&self, element: &Element) {
        self.call(
            "POST",
            &self.session_path(&format!("/element/{}/click", element.id)),
            None,
        );
    }

    /// Click the element with id `id` once it is displayed.
    pub fn click_id(&mut self, id: &str) {
        let element = self.visible(id);
        self.click(&element);
    }

    /// Clear the input with id `id` and type `text` into it.
    pub fn fill(&mut self, id: &str, text: &str) {
        let element = self.visible(id);
        self.call(
            "POST",
            &self.session_path(&format!("/element/{}/clear", element.id)),
            None,
        );
        if !text.is_empty() {
            self.call(
                "POST",
                &self.session_path(&format!("/element/{}/value", element.id)),
                Some(json!({"text": text})),
            );
        }
    }

    /// Choose the option whose value is `value` in the `<select>` with id `id`.
    pub fn select(&mut self, id: &str, value: &str) {
        self.visible(id);
        let option = self.css(&format!("[id=\"{id}\"] option[value=\"{value}\"]"));
        self.click(&option);
        let select = self.css(&format!("[id=\"{id}\"]"));
        let chosen = self.property(&select, "value");
        assert_eq!(chosen, value, "#{id} did not take the option {value}");
    }

    /// The rendered text of `element`.
    pub fn text(&self, element: &Element) -> String {
        self.try_call(
            "GET",
            &self.session_path(&format!("/element/{}/text", element.id)),
            None,
        )
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
    }

    /// The text of the element with id `id` (empty when there is none).
    pub fn text_of(&self, id: &str) -> String {
        self.try_css(&format!("[id=\"{id}\"]"))
            .map(|e| self.text(&e))
            .unwrap_or_default()
    }

    /// The attribute `name` of `element`, if it has one.
    pub fn attribute(&self, element: &Element, name: &str) -> Option<String> {
        self.try_call(
            "GET",
            &self.session_path(&format!("/element/{}/attribute/{name}", element.id)),
            None,
        )
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
    }

    /// The attribute `name` of the element with id `id`, if both exist.
    pub fn attribute_of(&self, id: &str, name: &str) -> Option<String> {
        let element = self.try_css(&format!("[id=\"{id}\"]"))?;
        self.attribute(&element, name)
    }

    /// The DOM property `name` of `element`, as text (`true`/`false` for booleans).
    pub fn property(&self, element: &Element, name: &str) -> String {
        let value = self
            .try_call(
                "GET",
                &self.session_path(&format!("/element/{}/property/{name}", element.id)),
                None,
            )
            .unwrap_or(Value::Null);
        match value {
            Value::String(s) => s,
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }

    /// Run `script` (a function body; `arguments` holds `args`) in the page; its return value.
    pub fn execute(&self, script: &str, args: &[Value]) -> Value {
        self.call(
            "POST",
            &self.session_path("/execute/sync"),
            Some(json!({"script": script, "args": args})),
        )
    }

    /// The browser's cookies visible to the current page (name, value, secure, httpOnly,
    /// sameSite, path, domain, expiry).
    pub fn cookies(&self) -> Vec<Value> {
        self.call("GET", &self.session_path("/cookie"), None)
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The cookie `name` of the current page, if the browser holds it.
    pub fn cookie(&self, name: &str) -> Option<Value> {
        self.cookies().into_iter().find(|c| c["name"] == name)
    }

    /// Delete every cookie of the current page's site.
    pub fn delete_cookies(&self) {
        self.call("DELETE", &self.session_path("/cookie"), None);
    }

    /// Open a new tab and switch to it: a fresh page in the same browser (same cookies).
    pub fn new_tab(&self) {
        let handle = self.call(
            "POST",
            &self.session_path("/window/new"),
            Some(json!({"type": "tab"})),
        );
        let handle = handle["handle"].as_str().unwrap_or_default().to_owned();
        self.call(
            "POST",
            &self.session_path("/window"),
            Some(json!({"handle": handle})),
        );
    }

    /// A PNG of the page, written to `<NN>-<step>.png` in this test's directory; its path.
    pub fn screenshot(&mut self, step: &str) -> PathBuf {
        self.shot_no += 1;
        let path = self.shots.join(format!("{:02}-{step}.png", self.shot_no));
        if let Ok(Value::String(png)) =
            self.try_call("GET", &self.session_path("/screenshot"), None)
        {
            if let Ok(bytes) = STANDARD.decode(png) {
                let _ = std::fs::write(&path, bytes);
            }
        }
        path
    }

    /// The browser's console messages since the last call (Chromium's `browser` log).
    pub fn console(&self) -> Vec<String> {
        self.log("browser")
            .iter()
            .map(|e| format!("{} {}", e["level"], e["message"]))
            .collect()
    }

    /// The entries of Chromium's log `kind` (`browser`, `performance`) since the last call.
    pub fn log(&self, kind: &str) -> Vec<Value> {
        self.try_call(
            "POST",
            &self.session_path("/se/log"),
            Some(json!({"type": kind})),
        )
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
    }

    /// What the page shows as the last problem: `#message`'s text and `data-code`.
    pub fn message(&self) -> (String, String) {
        (
            self.text_of("message"),
            self.attribute_of("message", "data-code")
                .unwrap_or_default(),
        )
    }

    /// Wait up to `limit` (polling every 100 ms) until `probe` gives something; panics with
    /// `what`, the page's URL and message, a screenshot and the console log otherwise.
    pub fn wait_for<T>(
        &mut self,
        what: &str,
        limit: Duration,
        mut probe: impl FnMut(&Browser) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(found) = probe(self) {
                return found;
            }
            if Instant::now() >= deadline {
                self.fail(&format!("waited {limit:?} for {what}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait until `condition` holds.
    pub fn wait_until(
        &mut self,
        what: &str,
        limit: Duration,
        mut condition: impl FnMut(&Browser) -> bool,
    ) {
        self.wait_for(what, limit, |b| condition(b).then_some(()));
    }

    /// Panic with `why`, the page's state, a screenshot and the console log.
    pub fn fail(&mut self, why: &str) -> ! {
        let shot = self.screenshot("failure");
        let (message, code) = self.message();
        let url = self.url();
        let visible: Vec<String> = self
            .all_css("section")
            .iter()
            .filter(|s| self.displayed(s))
            .filter_map(|s| self.attribute(s, "id"))
            .collect();
        let console = self.console().join("\n  ");
        panic!(
            "{}: {why}\n  page {url}\n  visible sections {visible:?}\n  message {message:?} \
             (data-code {code:?})\n  screenshot {}\n  console:\n  {console}",
            self.test,
            shot.display()
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self
                .http
                .delete(format!("{}/session/{}", self.base, self.session))
                .timeout(Duration::from_secs(10))
                .send();
        }
        if let Some(mut driver) = self.driver.take() {
            let _ = driver.kill();
            let _ = driver.wait();
        }
    }
}
