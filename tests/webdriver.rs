//! A small W3C WebDriver client (the few endpoints the desktop test needs) over `reqwest`, and
//! the real parts it drives: Xvfb and `tauri-driver` (which starts Debian's WebKitWebDriver).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A virtual X display, killed on drop.
pub(crate) struct Xvfb {
    child: Child,
    pub(crate) display: String,
}

impl Xvfb {
    /// Starts Xvfb on a free display; `-displayfd` reports the number once it accepts clients.
    pub(crate) fn start() -> Self {
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x800x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "Xvfb is needed for the desktop test (apt package xvfb; `make test` installs it)",
            );
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let number = line.trim();
        assert!(!number.is_empty(), "Xvfb did not report a display");
        Self {
            child,
            display: format!(":{number}"),
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tauri-driver` on a free port, killed on drop (it kills WebKitWebDriver and the app).
pub(crate) struct TauriDriver {
    child: Child,
    pub(crate) url: String,
}

impl TauriDriver {
    pub(crate) fn start(mut cmd: Command) -> Self {
        let port = crate::support::free_port();
        let native = crate::support::free_port();
        // Its own process group, so that drop also ends the WebKitWebDriver it starts.
        let child = cmd
            .args(["--port", &port.to_string(), "--native-port", &native.to_string()])
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("tauri-driver is needed (`cargo install tauri-driver --locked --version '^2'`; `make test` installs it)");
        // tauri-driver listens before WebKitWebDriver does, and a session request it forwards
        // too early is dropped: wait for both.
        let deadline = Instant::now() + Duration::from_secs(30);
        for listener in [port, native] {
            while std::net::TcpStream::connect(("127.0.0.1", listener)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "tauri-driver or WebKitWebDriver did not listen on {listener}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for TauriDriver {
    fn drop(&mut self) {
        // The whole group: tauri-driver, WebKitWebDriver and the app.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver session.
pub(crate) struct Session {
    http: reqwest::Client,
    base: String,
}

impl Session {
    /// Opens the application through tauri-driver.
    pub(crate) async fn open(driver: &TauriDriver, application: &Path) -> Self {
        // Bounded, so a WebDriver call that never answers fails the test instead of hanging it.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "wry",
            "tauri:options": {"application": application.display().to_string()}
        }}});
        let answer: Value = http
            .post(format!("{}/session", driver.url))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {answer}"))
            .to_owned();
        Self {
            http,
            base: format!("{}/session/{id}", driver.url),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = match request.send().await {
            Ok(response) => response.json().await.unwrap(),
            Err(err) => panic!("WebDriver {method} {path} failed: {err}"),
        };
        answer["value"].clone()
    }

    /// Runs a script in the page and returns its value.
    pub(crate) async fn script(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// The first element matching `css`, if any.
    pub(crate) async fn find(&self, css: &str) -> Option<String> {
        let value = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        value[ELEMENT].as_str().map(str::to_owned)
    }

    /// Fails the test with what the window shows, so a timeout says what the person would see.
    async fn gave_up(&self, what: String) -> ! {
        let text = self
            .script("return document.body.innerText", json!([]))
            .await;
        panic!("{what}; the window shows:\n{text}");
    }

    /// Waits (bounded) until an element matches `css`: the UI reacts to the app's events.
    pub(crate) async fn wait_for(&self, css: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(id) = self.find(css).await {
                return id;
            }
            if Instant::now() > deadline {
                self.gave_up(format!("nothing matched {css} within {within:?}"))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (bounded) until an element matching `css` shows `needle` in its text.
    pub(crate) async fn wait_for_text(&self, css: &str, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        let probe = "return Array.from(document.querySelectorAll(arguments[0])).some((e) => e.textContent.includes(arguments[1]))";
        while self.script(probe, json!([css, needle])).await != json!(true) {
            if Instant::now() > deadline {
                self.gave_up(format!("no {css} showed {needle:?} within {within:?}"))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn click(&self, css: &str) {
        let id = self.wait_for(css, Duration::from_secs(10)).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    pub(crate) async fn type_into(&self, css: &str, text: &str) {
        let id = self.wait_for(css, Duration::from_secs(10)).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    pub(crate) async fn text(&self, css: &str) -> String {
        let id = self.wait_for(css, Duration::from_secs(10)).await;
        self.call(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Saves a PNG of the window.
    pub(crate) async fn screenshot(&self, path: &Path) {
        use base64::Engine as _;
        let value = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().unwrap_or_default())
            .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// Presses Ctrl and `key` together, as a person does (what follows may end the session:
    /// its answer is not awaited as a result).
    pub(crate) async fn press_ctrl(&self, key: char) {
        let keys = json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
            {"type": "keyDown", "value": "\u{E009}"},
            {"type": "keyDown", "value": key.to_string()},
            {"type": "keyUp", "value": key.to_string()},
            {"type": "keyUp", "value": "\u{E009}"},
        ]}]});
        let _ = self
            .http
            .post(format!("{}/actions", self.base))
            .json(&keys)
            .send()
            .await;
    }

    pub(crate) async fn close(self) {
        let _ = self.http.delete(&self.base).send().await;
    }
}
