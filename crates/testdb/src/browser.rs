//! A real headless Chromium driven through chromedriver (WebDriver), for the review UI's tests.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use thirtyfour::prelude::*;

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// Chromium and chromedriver, started for one test: chromedriver on a free loopback port, and
/// the Chromium session it opens. Drop ends both through their own handles (the session by
/// WebDriver's `DELETE /session`, chromedriver by its pid), also when the test panics.
pub struct Browser {
    driver: Option<WebDriver>,
    chromedriver: Child,
    /// `127.0.0.1:PORT` of chromedriver.
    server: String,
    profile: tempfile::TempDir,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("chromedriver", &self.server)
            .finish_non_exhaustive()
    }
}

impl Browser {
    /// `None` (the test skips) when Chromium or chromedriver is missing, unless
    /// SYNAPSOR_REQUIRE_BROWSER=1, which makes that a failure.
    pub async fn start() -> Option<Browser> {
        let chromium = ["chromium", "chromium-browser", "google-chrome"]
            .into_iter()
            .find_map(on_path);
        let driver = on_path("chromedriver");
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            assert!(
                std::env::var("SYNAPSOR_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "SYNAPSOR_REQUIRE_BROWSER=1 but chromium or chromedriver is not installed (apt-get install chromium chromium-driver)"
            );
            eprintln!("skipping: chromium or chromedriver is not installed");
            return None;
        };
        // WebDriver's HTTP client is reqwest with rustls, whose provider the process picks.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let chromedriver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let mut browser = Browser {
            driver: None,
            chromedriver,
            server: format!("127.0.0.1:{port}"),
            profile: tempfile::tempdir().expect("a temporary profile folder"),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(&chromium.to_string_lossy()).expect("chromium path");
        for arg in [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-breakpad",
            "--window-size=1280,900",
            &format!("--user-data-dir={}", browser.profile.path().display()),
        ] {
            caps.add_arg(arg).expect("chromium argument");
        }
        let driver = WebDriver::new(format!("http://127.0.0.1:{port}"), caps)
            .await
            .expect("a Chromium session");
        browser.driver = Some(driver);
        Some(browser)
    }

    /// The WebDriver session.
    pub fn d(&self) -> &WebDriver {
        self.driver.as_ref().expect("the session is open until quit")
    }

    /// The text of the first element matching `css`, waiting up to 10 s for it to appear.
    pub async fn text_of(&self, css: &str) -> String {
        self.text_within(css, Duration::from_secs(10)).await
    }

    /// The text of the first element matching `css`, waiting up to `wait` for it to appear. A
    /// live page may reload between finding the element and reading it: that is retried.
    pub async fn text_within(&self, css: &str, wait: Duration) -> String {
        let deadline = Instant::now() + wait;
        loop {
            let last = match self.d().find(By::Css(css)).await {
                Ok(e) => match e.text().await {
                    Ok(text) => return text,
                    Err(e) => e.to_string(),
                },
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                let url = self.d().current_url().await.map(|u| u.to_string()).unwrap_or_default();
                let page = self.d().source().await.unwrap_or_default();
                panic!("no {css} ({last}) on {url}:\n{page}")
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the text of `css` contains `want` (a live page reloads on its own).
    pub async fn wait_for_text(&self, css: &str, want: &str, wait: Duration) -> String {
        let deadline = Instant::now() + wait;
        loop {
            let text = match self.d().find(By::Css(css)).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text.contains(want) {
                return text;
            }
            if Instant::now() > deadline {
                let page = self.d().source().await.unwrap_or_default();
                panic!("{css} never said {want:?} (last: {text:?}):\n{page}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks a button that sends a form, and waits until the next page replaced this one.
    pub async fn submit(&self, css: &str) {
        let old = self.d().find(By::Tag("html")).await.expect("a page");
        self.click(css).await;
        old.wait_until()
            .wait(Duration::from_secs(15), Duration::from_millis(50))
            .stale()
            .await
            .expect("the next page loads");
    }

    /// The whole page's text.
    pub async fn body(&self) -> String {
        self.text_of("body").await
    }

    /// Clicks the first element matching `css`, retrying for up to 10 s while it is missing or
    /// went stale (a live page reloaded).
    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let last = match self.d().find(By::Css(css)).await {
                Ok(e) => match e.click().await {
                    Ok(()) => return,
                    Err(e) => e.to_string(),
                },
                Err(e) => e.to_string(),
            };
            assert!(Instant::now() < deadline, "cannot click {css}: {last}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves the whole page (the window grown to its height) to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let h = self
            .d()
            .execute(
                "return document.documentElement.scrollHeight + window.outerHeight - window.innerHeight",
                vec![],
            )
            .await
            .expect("page height");
        let h = u32::try_from(h.json().as_u64().unwrap_or(900).clamp(600, 3000)).unwrap_or(900);
        self.d().set_window_rect(0, 0, 1280, h).await.expect("resize");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot folder");
        }
        self.d().screenshot(path).await.expect("screenshot");
        self.d().set_window_rect(0, 0, 1280, 900).await.expect("resize");
    }

    /// Ends the session (Drop does it too, less politely).
    pub async fn quit(mut self) {
        if let Some(d) = self.driver.take() {
            let _ = d.quit().await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(d) = self.driver.take() {
            // A panicking test never reached quit(): close its Chromium through chromedriver,
            // synchronously (drop cannot wait for the async client).
            let path = format!("/session/{}", d.session_id());
            let _ = d.leak();
            let _ = delete(&self.server, &path);
        }
        let _ = self.chromedriver.kill();
        let _ = self.chromedriver.wait();
    }
}

/// `DELETE path` on a fresh connection, the answer ignored.
fn delete(addr: &str, path: &str) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        stream,
        "DELETE {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut sink = Vec::new();
    stream.read_to_end(&mut sink)?;
    Ok(())
}
