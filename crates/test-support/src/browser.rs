//! Headless Chromium for end-to-end tests of the till screen: launches Debian's `chromium` (or
//! `KASSA_CHROMIUM`) over the DevTools protocol, types like a barcode scanner, reads the page by
//! `data-test` attributes and saves screenshots to `artifacts/`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
use chromiumoxide::cdp::browser_protocol::input::{DispatchKeyEventParams, DispatchKeyEventType};
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::{BrowserConfig, Page};
use futures_util::StreamExt;
use serde_json::Value;

/// Where Chromium is looked for, in order, after `KASSA_CHROMIUM`.
const CANDIDATES: [&str; 3] = [
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
];

/// The Chromium executable: `KASSA_CHROMIUM`, else the first of the usual paths that exists.
pub fn chromium_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("KASSA_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    CANDIDATES.iter().map(PathBuf::from).find(|p| p.exists())
}

/// The folder screenshots go to: `artifacts/` at the workspace root (ignored by git).
pub fn artifacts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../artifacts")
}

/// A headless Chromium with its own profile directory, killed when dropped.
#[derive(Debug)]
pub struct Browser {
    browser: chromiumoxide::Browser,
    handler: tokio::task::JoinHandle<()>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Launches Chromium. When it is not installed the test fails, or, when the run allows
    /// skipping (`KASSA_ALLOW_SKIP=1`, see [`crate::skip`]), this returns `None` with a notice.
    pub async fn launch_or_skip() -> Option<Browser> {
        let Some(path) = chromium_path().filter(|p| p.exists()) else {
            crate::skip::skip(
                "this browser test needs Chromium, which is not installed",
                "install Debian's `chromium` package (apt-get install -y chromium) or set KASSA_CHROMIUM to its path",
            );
            return None;
        };
        match Browser::launch(&path).await {
            Ok(browser) => Some(browser),
            Err(e) => panic!("cannot start Chromium at {}: {e:#}", path.display()),
        }
    }

    /// Launches the Chromium at `path`, headless, sandbox off (tests run as root), with a fresh
    /// profile and nothing that reaches the network on its own.
    pub async fn launch(path: &Path) -> anyhow::Result<Browser> {
        let profile = tempfile::Builder::new()
            .prefix("kassa-chromium-")
            .tempdir()?;
        let config = BrowserConfig::builder()
            .chrome_executable(path)
            .user_data_dir(profile.path())
            .no_sandbox()
            .new_headless_mode()
            .window_size(1280, 900)
            .viewport(Viewport {
                width: 1280,
                height: 900,
                device_scale_factor: Some(1.0),
                emulating_mobile: false,
                is_landscape: true,
                has_touch: true,
            })
            .launch_timeout(Duration::from_secs(60))
            .request_timeout(Duration::from_secs(30))
            .args([
                "disable-gpu",
                "disable-quic",
                "disable-component-update",
                "disable-background-networking",
                "disable-dev-shm-usage",
                "no-first-run",
                "no-default-browser-check",
            ])
            .build()
            .map_err(anyhow::Error::msg)?;
        let (browser, mut handler) = chromiumoxide::Browser::launch(config)
            .await
            .context("launching Chromium")?;
        let handler = tokio::spawn(async move {
            // Every protocol message goes through this loop; a message the crate does not know
            // is not a reason to stop.
            while let Some(event) = handler.next().await {
                let _ = event;
            }
        });
        Ok(Browser {
            browser,
            handler,
            _profile: profile,
        })
    }

    /// Opens `url` in a new tab and waits for it to load. Every request the page sends with
    /// `fetch` is recorded from the first one on (see [`TestPage::assert_requests_follow`]).
    pub async fn open(&self, url: &str) -> anyhow::Result<TestPage> {
        let page = self
            .browser
            .new_page("about:blank")
            .await
            .with_context(|| format!("opening {url}"))?;
        page.evaluate_on_new_document(RECORD_REQUESTS)
            .await
            .context("installing the request recorder")?;
        page.goto(url)
            .await
            .with_context(|| format!("opening {url}"))?;
        Ok(TestPage { page })
    }

    /// Closes Chromium and waits for it to exit.
    pub async fn close(mut self) {
        let _ = self.browser.close().await;
        let _ = self.browser.wait().await;
        self.handler.abort();
    }
}

/// Wraps `fetch` so that a test can read back what the page sent: method, path, content type
/// and body of every request.
const RECORD_REQUESTS: &str = r#"(() => {
  const sent = [];
  window.__kassaRequests = sent;
  const original = window.fetch.bind(window);
  window.fetch = (input, init) => {
    try {
      const url = new URL(typeof input === "string" ? input : input.url, location.href);
      const headers = new Headers((init && init.headers) || {});
      sent.push({
        method: ((init && init.method) || "GET").toUpperCase(),
        path: url.pathname,
        contentType: headers.get("Content-Type"),
        body: init && typeof init.body === "string" ? init.body : null,
      });
    } catch (e) {
      /* recording never stops the page */
    }
    return original(input, init);
  };
})();"#;

/// One tab, addressed by `data-test` attributes.
#[derive(Debug, Clone)]
pub struct TestPage {
    page: Page,
}

/// `[data-test="name"]`.
pub fn dt(name: &str) -> String {
    format!("[data-test=\"{name}\"]")
}

impl TestPage {
    /// The underlying page.
    pub fn page(&self) -> &Page {
        &self.page
    }

    /// Evaluates `expression` (awaiting it when it is a promise) and returns its JSON value.
    pub async fn eval(&self, expression: &str) -> anyhow::Result<Value> {
        let params = EvaluateParams::builder()
            .expression(expression)
            .await_promise(true)
            .return_by_value(true)
            .build()
            .map_err(anyhow::Error::msg)?;
        let result = self
            .page
            .evaluate_expression(params)
            .await
            .with_context(|| format!("evaluating {expression}"))?;
        Ok(result.value().cloned().unwrap_or(Value::Null))
    }

    /// Waits until `condition` (a JavaScript expression) is truthy, up to `timeout`. On timeout
    /// saves a screenshot named `failed-<what>` and fails with what the page showed.
    pub async fn wait_for(
        &self,
        what: &str,
        condition: &str,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let value = self
                .eval(&format!("Boolean({condition})"))
                .await
                .unwrap_or(Value::Bool(false));
            if value == Value::Bool(true) {
                return Ok(());
            }
            if started.elapsed() > timeout {
                let name = format!(
                    "failed-{}",
                    what.replace(|c: char| !c.is_alphanumeric(), "-")
                );
                let _ = self.screenshot(&name).await;
                let message = self
                    .eval("(document.querySelector('[data-test=message]')||{}).textContent")
                    .await
                    .unwrap_or(Value::Null);
                bail!(
                    "timed out after {timeout:?} waiting for {what} ({condition}); message on screen: {message}"
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for an element matching `selector` to be present and visible.
    pub async fn wait_visible(&self, selector: &str) -> anyhow::Result<()> {
        let s = serde_json::to_string(selector)?;
        self.wait_for(
            selector,
            &format!(
                "(() => {{ const e = document.querySelector({s}); return !!e && e.checkVisibility(); }})()"
            ),
            Duration::from_secs(15),
        )
        .await
    }

    /// Clicks the element matching `selector` with the mouse, as a cashier would.
    pub async fn click(&self, selector: &str) -> anyhow::Result<()> {
        self.wait_visible(selector).await?;
        let element = self
            .page
            .find_element(selector)
            .await
            .with_context(|| format!("finding {selector}"))?;
        element
            .click()
            .await
            .with_context(|| format!("clicking {selector}"))?;
        Ok(())
    }

    /// Focuses `selector` and replaces its value by `text`, typed key by key.
    pub async fn fill(&self, selector: &str, text: &str) -> anyhow::Result<()> {
        self.wait_visible(selector).await?;
        let s = serde_json::to_string(selector)?;
        // A zero-delay timer first: a dialog that has just opened moves the focus to its first
        // field on such a timer, and typing must not start before it has (the timers run in
        // order, so the page's runs before this one).
        self.eval(&format!(
            "(async () => {{ await new Promise(r => setTimeout(r, 0)); const e = document.querySelector({s}); e.focus(); e.value = ''; e.dispatchEvent(new Event('input')); }})()"
        ))
        .await?;
        self.type_keys(text).await
    }

    /// The text of the first element matching `selector`.
    pub async fn text(&self, selector: &str) -> anyhow::Result<String> {
        let s = serde_json::to_string(selector)?;
        let value = self
            .eval(&format!(
                "(document.querySelector({s}) || {{textContent: null}}).textContent"
            ))
            .await?;
        value
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no element {selector}"))
    }

    /// An attribute of the first element matching `selector`.
    pub async fn attr(&self, selector: &str, name: &str) -> anyhow::Result<Option<String>> {
        let s = serde_json::to_string(selector)?;
        let n = serde_json::to_string(name)?;
        let value = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({s}); return e ? e.getAttribute({n}) : null; }})()"
            ))
            .await?;
        Ok(value.as_str().map(str::to_owned))
    }

    /// How many elements match `selector`.
    pub async fn count(&self, selector: &str) -> anyhow::Result<usize> {
        let s = serde_json::to_string(selector)?;
        let value = self
            .eval(&format!("document.querySelectorAll({s}).length"))
            .await?;
        Ok(usize::try_from(value.as_u64().unwrap_or(0)).unwrap_or(0))
    }

    /// Types `text` as key events (key down with its character, key up) with no pause between
    /// keys: every event is sent before the first answer comes back, as fast as a scanner.
    pub async fn type_keys(&self, text: &str) -> anyhow::Result<()> {
        self.send_keys(char_events(text)?).await
    }

    /// Presses a named key such as `Enter`, `Escape` or `F4`.
    pub async fn press(&self, key: &str) -> anyhow::Result<()> {
        self.send_keys(key_events(key)?).await
    }

    /// Types `code` and Enter in one burst, as a keyboard-wedge barcode scanner does.
    pub async fn scan(&self, code: &str) -> anyhow::Result<()> {
        let mut commands = char_events(code)?;
        commands.extend(key_events("Enter")?);
        self.send_keys(commands).await
    }

    async fn send_keys(&self, commands: Vec<DispatchKeyEventParams>) -> anyhow::Result<()> {
        let futures: Vec<_> = commands
            .into_iter()
            .map(|cmd| self.page.execute(cmd))
            .collect();
        for result in futures_util::future::join_all(futures).await {
            result.context("dispatching a key event")?;
        }
        Ok(())
    }

    /// Resizes the page's window to `width`×`height` CSS pixels (a till's or a customer
    /// display's screen).
    pub async fn set_viewport(&self, width: i64, height: i64) -> anyhow::Result<()> {
        self.page
            .execute(SetDeviceMetricsOverrideParams::new(
                width, height, 1.0, false,
            ))
            .await
            .with_context(|| format!("resizing the window to {width}x{height}"))?;
        Ok(())
    }

    /// Saves a PNG screenshot of the page as `artifacts/<name>.png` and returns its path.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let dir = artifacts_dir();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        self.page
            .save_screenshot(
                ScreenshotParams::builder()
                    .format(CaptureScreenshotFormat::Png)
                    .build(),
                &path,
            )
            .await
            .with_context(|| format!("saving {}", path.display()))?;
        Ok(path)
    }
}

/// Key down (with the character) and key up for every character of `text`.
fn char_events(text: &str) -> anyhow::Result<Vec<DispatchKeyEventParams>> {
    let mut commands = Vec::with_capacity(text.len() * 2);
    for c in text.chars() {
        let key = c.to_string();
        let code = if c.is_ascii_digit() {
            format!("Digit{c}")
        } else if c.is_ascii_alphabetic() {
            format!("Key{}", c.to_ascii_uppercase())
        } else {
            String::new()
        };
        // Windows virtual key codes: letters and digits are their ASCII code; punctuation has
        // its own (46, the code of '.', would be Delete).
        let virtual_code = match c {
            '0'..='9' | 'a'..='z' | 'A'..='Z' => i64::from(u32::from(c.to_ascii_uppercase())),
            '.' => 190,
            ',' => 188,
            '-' => 189,
            '*' => 106,
            ' ' => 32,
            _ => 0,
        };
        commands.push(
            DispatchKeyEventParams::builder()
                .r#type(DispatchKeyEventType::KeyDown)
                .key(key.clone())
                .code(code.clone())
                .windows_virtual_key_code(virtual_code)
                .text(key.clone())
                .unmodified_text(key.clone())
                .build()
                .map_err(anyhow::Error::msg)?,
        );
        commands.push(
            DispatchKeyEventParams::builder()
                .r#type(DispatchKeyEventType::KeyUp)
                .key(key)
                .code(code)
                .windows_virtual_key_code(virtual_code)
                .build()
                .map_err(anyhow::Error::msg)?,
        );
    }
    Ok(commands)
}

/// Key down and key up for a named, non-printing key (Enter also types a carriage return, as
/// on a real keyboard).
fn key_events(key: &str) -> anyhow::Result<Vec<DispatchKeyEventParams>> {
    let (code, virtual_code, text) = match key {
        "Enter" => ("Enter", 13, Some("\r")),
        "Escape" => ("Escape", 27, None),
        "Backspace" => ("Backspace", 8, None),
        "Tab" => ("Tab", 9, None),
        "Delete" => ("Delete", 46, None),
        "ArrowUp" => ("ArrowUp", 38, None),
        "ArrowDown" => ("ArrowDown", 40, None),
        f if f.starts_with('F') && f[1..].parse::<i64>().is_ok() => {
            let n: i64 = f[1..].parse().unwrap_or(1);
            (f, 111 + n, None)
        }
        other => bail!("no key definition for {other}"),
    };
    let mut down = DispatchKeyEventParams::builder()
        .key(key)
        .code(code)
        .windows_virtual_key_code(virtual_code)
        .native_virtual_key_code(virtual_code);
    let down_kind = match text {
        Some(text) => {
            down = down.text(text).unmodified_text(text);
            DispatchKeyEventType::KeyDown
        }
        None => DispatchKeyEventType::RawKeyDown,
    };
    let up = DispatchKeyEventParams::builder()
        .r#type(DispatchKeyEventType::KeyUp)
        .key(key)
        .code(code)
        .windows_virtual_key_code(virtual_code)
        .native_virtual_key_code(virtual_code)
        .build()
        .map_err(anyhow::Error::msg)?;
    Ok(vec![
        down.r#type(down_kind).build().map_err(anyhow::Error::msg)?,
        up,
    ])
}

impl TestPage {
    /// The requests the page sent so far, as recorded by [`Browser::open`].
    pub async fn requests(&self) -> anyhow::Result<Vec<Value>> {
        let value = self.eval("window.__kassaRequests || []").await?;
        Ok(serde_json::from_value(value)?)
    }

    /// Checks every request the page sent against the server's OpenAPI document `openapi`: the
    /// path and method are documented, and a JSON body is valid against the operation's request
    /// schema. Answers how many bodies were checked. This is what catches a client and a server
    /// that each agree with their own copy of a field's values but not with each other.
    pub async fn assert_requests_follow(&self, openapi: &str) -> anyhow::Result<usize> {
        let document: Value = serde_json::from_str(openapi)?;
        let mut checked = 0;
        let mut problems = Vec::new();
        for request in self.requests().await? {
            let method = request["method"].as_str().unwrap_or("GET").to_lowercase();
            let path = request["path"].as_str().unwrap_or_default();
            let Some(template) = documented_path(&document, path) else {
                problems.push(format!("{method} {path}: not in the OpenAPI document"));
                continue;
            };
            let Some(operation) = document["paths"][&template].get(&method) else {
                problems.push(format!("{method} {path}: {template} has no {method}"));
                continue;
            };
            let Some(body) = request["body"].as_str() else {
                continue;
            };
            let json_type = request["contentType"]
                .as_str()
                .is_some_and(|t| t.starts_with("application/json"));
            if !json_type {
                problems.push(format!(
                    "{method} {path}: body sent without application/json"
                ));
                continue;
            }
            let Some(schema) = operation
                .pointer("/requestBody/content/application~1json/schema")
                .cloned()
            else {
                problems.push(format!(
                    "{method} {path}: sends a body the document does not describe"
                ));
                continue;
            };
            let body: Value = match serde_json::from_str(body) {
                Ok(b) => b,
                Err(e) => {
                    problems.push(format!("{method} {path}: body is not JSON: {e}"));
                    continue;
                }
            };
            // The operation's schema with the document's components beside it, so that its
            // `$ref`s resolve within the one document.
            let mut root = serde_json::json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "components": document["components"].clone(),
            });
            if let (Some(root), Some(schema)) = (root.as_object_mut(), schema.as_object()) {
                root.extend(schema.clone());
            }
            let validator = jsonschema::validator_for(&root)
                .map_err(|e| anyhow::anyhow!("{template}: schema does not compile: {e}"))?;
            for error in validator.iter_errors(&body) {
                problems.push(format!(
                    "{method} {path}: {} at {}: {body}",
                    error,
                    error.instance_path()
                ));
            }
            checked += 1;
        }
        anyhow::ensure!(
            problems.is_empty(),
            "requests the page sent do not follow the server's OpenAPI document:\n{}",
            problems.join("\n")
        );
        Ok(checked)
    }
}

/// The OpenAPI path template (`/v1/receipts/{number}`) that `path` is an instance of.
fn documented_path(document: &Value, path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('/').collect();
    document["paths"].as_object()?.keys().find_map(|template| {
        let wanted: Vec<&str> = template.split('/').collect();
        let fits = wanted.len() == parts.len()
            && wanted
                .iter()
                .zip(&parts)
                .all(|(w, p)| (w.starts_with('{') && !p.is_empty()) || w == p);
        fits.then(|| template.clone())
    })
}
