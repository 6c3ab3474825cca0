//! `weft ctl dashboard` in a real headless Chromium (Debian's, through its chromedriver),
//! against a `weft host` on a real nats-server serving hello under load (#18 item 3): the page
//! loads and shows the host, the actor with its load, provider and link; a change made with
//! `weft ctl` appears on it live; a scale made on the page is carried out (the inventory shows
//! it). And the rogue side: an action without the page's token, or a request addressed to
//! another host name (DNS rebinding), is refused and changes nothing.

use crate::ctl::KeepAlive;
use crate::up::{Up, served_at};
use crate::{HttpLoad, Weft, signed_actor};
use fantoccini::{Client, ClientBuilder, Locator};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use weft_testing::{ChromeDriver, NatsServer};

/// A child process killed (and reaped) on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn raw(address: &str, head: &str) -> (u16, String) {
    crate::up::exchange(address, head.as_bytes())
}

/// A scale POSTed over the raw wire with `token` (none when `None`), saying its body is
/// `declared` bytes long and sending `body`; (status, body of the answer).
fn post_scale(address: &str, token: Option<&str>, declared: usize, body: &str) -> (u16, String) {
    let token = token.map_or(String::new(), |t| format!("x-weft-token: {t}\r\n"));
    raw(
        address,
        &format!(
            "POST /api/scale HTTP/1.1\r\nHost: {address}\r\n{token}Content-Type: application/json\r\n\
             Content-Length: {declared}\r\nConnection: close\r\n\r\n{body}"
        ),
    )
}

/// Chromium as the machine's probe found it works here: headless, no sandbox (root), none of
/// its own network traffic (this machine reaches no outside host).
async fn browser(driver: &ChromeDriver, profile: &std::path::Path) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1500,1000",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url())
        .await
        .expect("chromedriver did not start a Chromium session")
}

/// The text of the first element `css` finds, waiting until `wanted` holds of it.
async fn until_text(
    browser: &Client,
    css: &str,
    within: Duration,
    wanted: impl Fn(&str) -> bool,
) -> String {
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < within {
        if let Ok(element) = browser.find(Locator::Css(css)).await
            && let Ok(text) = element.text().await
        {
            if wanted(&text) {
                return text;
            }
            last = text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} still reads {last:?} after {within:?}");
}

#[test]
fn the_dashboard_shows_the_lattice_live_and_scales_from_a_real_browser() {
    let weft = Weft::new();
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let manifest = crate::up::hello_app(&weft, &signed_actor("hello"));
    let args = [
        "--lattice",
        "dash",
        "--nats",
        &url,
        "--trust-any-issuer",
        "--label",
        "zone=a",
    ];
    let host = Up::start_command(&weft, "host", &manifest, &args, &[]);
    let hello = served_at(&host, "hello");
    let load = HttpLoad::start(2, || {
        let mut client = KeepAlive::new(&hello);
        move || client.get("/")
    });
    let ctl = |args: &[&str]| {
        let all = [&["ctl", "--lattice", "dash", "--nats", &url][..], args].concat();
        weft.run(&all)
    };

    let mut dashboard = Killed(
        Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(["ctl", "--lattice", "dash", "--nats", &url, "dashboard"])
            .args(["--listen", "127.0.0.1:0", "--refresh-ms", "500"])
            .env("WEFT_HOME", weft.home.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut first = String::new();
    BufReader::new(dashboard.0.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let page = first
        .strip_prefix("dashboard ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no dashboard line: {first:?}"))
        .to_string();
    let address = page
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();

    // The rogue side, over the real wire: no token, no action; another host name, no answer.
    let body = r#"{"actor":"hello","max_instances":3}"#;
    let (status, said) = post_scale(&address, None, body.len(), body);
    assert_eq!(status, 403, "{said}");
    let (status, _) = raw(
        &address,
        &format!(
            "GET / HTTP/1.1\r\nHost: rebound.example:{}\r\nConnection: close\r\n\r\n",
            address.rsplit(':').next().unwrap()
        ),
    );
    assert_eq!(status, 421);
    let (status, html) = raw(
        &address,
        &format!("GET / HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status, 200);
    let token = html
        .split("const TOKEN = \"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let wrong = "0".repeat(token.len());
    let (status, _) = post_scale(&address, Some(&wrong), body.len(), body);
    assert_eq!(status, 403);
    assert!(
        !ctl(&["inventory"]).ok().contains("max 3"),
        "a rogue scale was carried out"
    );
    // A body that never comes is given up on, not waited for (the token's holder too); an
    // oversized one is refused; one within both bounds is the obeyed case, on the page below.
    let trickled = Instant::now();
    let (status, said) = post_scale(&address, Some(token), 40, r#"{"actor""#);
    assert_eq!(status, 400, "{said}");
    assert!(said.contains("did not arrive within 5 s"), "{said}");
    assert!(
        trickled.elapsed() < Duration::from_secs(8),
        "{:?}",
        trickled.elapsed()
    );
    let huge = "x".repeat(5000);
    let (status, said) = post_scale(&address, Some(token), huge.len(), &huge);
    assert_eq!(status, 400, "{said}");
    assert!(said.contains("not read"), "{said}");

    let driver = ChromeDriver::start().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let screenshot = runtime.block_on(async {
        let browser = browser(&driver, profile.path()).await;
        browser.goto(&page).await.unwrap();
        let row = "#actors tr[data-actor=\"hello\"]";
        let within = Duration::from_secs(20);
        until_text(&browser, &format!("{row} td.rev"), within, |t| t == "1").await;
        until_text(&browser, "#hosts tbody", within, |t| t.contains("zone=a")).await;
        until_text(&browser, "#providers tbody", within, |t| {
            t.contains("http-server")
        })
        .await;
        until_text(&browser, "#links tbody", within, |t| {
            t.contains("wasmcloud:httpserver")
        })
        .await;
        // hello's load, measured between two inventories.
        let per_sec = until_text(&browser, &format!("{row} td.persec"), within, |t| {
            t.parse::<f64>().is_ok_and(|r| r > 0.0)
        })
        .await;

        // A change made elsewhere appears live, as an event and in the table.
        ctl(&["scale", "hello", "7"]).ok();
        until_text(
            &browser,
            "#events li[data-kind=\"actor_scaled\"]",
            within,
            |t| t.contains("max 7"),
        )
        .await;
        until_text(&browser, &format!("{row} td.max"), within, |t| t == "7").await;

        // A scale made on the page goes through the signed control interface.
        // The table is drawn anew at each refresh, so an element found may be replaced before
        // it is used (stale): find, type and click again until one attempt holds.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let clicked = async {
                let input = browser
                    .find(Locator::Css(&format!("{row} input.scale-input")))
                    .await?;
                input.clear().await?;
                input.send_keys("12").await?;
                browser
                    .find(Locator::Css(&format!("{row} button.scale-button")))
                    .await?
                    .click()
                    .await
            }
            .await;
            match clicked {
                Ok(()) => break,
                Err(_) if attempts < 20 => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(error) => panic!("the scale was not made on the page: {error}"),
            }
        }
        until_text(&browser, "#message", within, |t| t.contains("max 12")).await;
        until_text(&browser, &format!("{row} td.max"), within, |t| t == "12").await;
        let screenshot = browser.screenshot().await.unwrap();
        browser.close().await.unwrap();
        println!("the page showed hello at {per_sec} req/s and scaled it from 7 to 12");
        screenshot
    });
    let inventory = ctl(&["inventory"]).ok();
    assert!(inventory.contains("max 12"), "{inventory}");
    let audit = ctl(&["audit"]).ok();
    assert_eq!(audit.matches("scale_actor").count(), 2, "{audit}");
    let (ok, failures) = load.finish();
    assert!(failures.is_empty(), "{:?}", failures.first());
    assert!(screenshot.starts_with(b"\x89PNG"));
    let file = weft_testing::actors::target_dir().join("dashboard.png");
    std::fs::write(&file, &screenshot).unwrap();
    println!(
        "{ok} requests served meanwhile, 0 failed; screenshot in {}",
        file.display()
    );
}
