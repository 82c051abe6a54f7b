//! A real browser on the web page: headless Chromium driven over the
//! WebDriver protocol (Debian's `chromium` and `chromium-driver`, which
//! `.ci/run` installs). It opens the status page and a unit page, searches
//! by a Digital Link URI through the search box, and takes screenshots
//! (written to `target/tmp/browser/`). Without Chromium the test prints a
//! loud SKIPPED line and passes.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::web::{passed_unit, web_line};
use linemark::daemon::Daemon;

const CHROMIUM: &str = "/usr/bin/chromium";
const DRIVER: &str = "/usr/bin/chromedriver";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Driver {
    http: reqwest::Client,
    base: String,
    session: String,
}

impl Driver {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut rq = self.http.request(method, &url);
        if let Some(b) = body {
            rq = rq
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let r = rq.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = r.status();
        let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        assert!(status.is_success(), "{url}: {status} {v}");
        v["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT].as_str().unwrap().to_string()
    }

    async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.call(reqwest::Method::GET, &format!("/element/{e}/text"), None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn screenshot(&self, name: &str) -> std::path::PathBuf {
        self.screenshot_at_least(name, 800).await
    }

    async fn screenshot_at_least(&self, name: &str, min_width: u32) -> std::path::PathBuf {
        use base64::Engine as _;
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(&png));
        let info = decoder.read_info().unwrap();
        assert!(info.info().width >= min_width, "a real screenshot");
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, &png).unwrap();
        p
    }
}

/// chromedriver and a headless Chromium session with this window size.
async fn start_browser(window: &str) -> (Driver, tokio::process::Child, tempfile::TempDir) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = tokio::process::Command::new(DRIVER)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = http.get(format!("{base}/status")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let profile = tempfile::tempdir().unwrap();
    let caps = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", format!("--window-size={window}"),
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }
    }}});
    let r = http
        .post(format!("{base}/session"))
        .header("content-type", "application/json")
        .body(caps.to_string())
        .send()
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    let session = v["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {v}"))
        .to_string();
    let b = Driver {
        http: http.clone(),
        base: base.clone(),
        session,
    };
    (b, driver, profile)
}

fn no_browser() -> bool {
    if !std::path::Path::new(CHROMIUM).exists() || !std::path::Path::new(DRIVER).exists() {
        eprintln!(
            "\n*** SKIPPED: the browser test needs {CHROMIUM} and {DRIVER} \
             (apt-get install chromium chromium-driver; .ci/run installs them) ***\n"
        );
        return true;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shows_status_and_unit_pages_and_finds_a_unit_by_its_digital_link() {
    if no_browser() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let line = web_line(out.path());
    let d = Daemon::start(line.config()).await.unwrap();
    let site = format!("http://{}", d.web_addr().unwrap());
    let unit = passed_unit(&d).await;

    let (b, mut driver, _profile) = start_browser("1280,900").await;
    // The status page: the station and the live IDs-left figure.
    b.go(&format!("{site}/")).await;
    assert_eq!(b.text("#ids_left").await, "9999");
    assert!(b.text("#stations").await.contains('t'));
    let shot = b.screenshot("status.png").await;
    eprintln!("screenshot: {}", shot.display());

    // A unit page.
    b.go(&format!("{site}/units/{unit}")).await;
    assert_eq!(b.text("#unit").await, unit);
    assert!(b.text("#history").await.contains("FINAL_PASS"));

    // Search by the label's Digital Link URI, typed into the search box.
    b.go(&format!("{site}/")).await;
    let q = b.find("#q").await;
    let uri = format!("https://id.example.com/01/09506000134352/10/L1/21/{unit}");
    b.call(
        reqwest::Method::POST,
        &format!("/element/{q}/value"),
        Some(json!({ "text": uri })),
    )
    .await;
    let find = b.find("#find").await;
    b.call(
        reqwest::Method::POST,
        &format!("/element/{find}/click"),
        Some(json!({})),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let url = b.call(reqwest::Method::GET, "/url", None).await;
        if url.as_str().is_some_and(|u| u.contains("/units?q=")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the search did not navigate: {url}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(b.text("#unit").await, unit, "the search found the unit");
    let shot = b.screenshot("unit.png").await;
    eprintln!("screenshot: {}", shot.display());

    b.call(reqwest::Method::DELETE, "", None).await;
    let _ = driver.kill().await;
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shows_a_passport_readably_on_a_phone() {
    if no_browser() {
        return;
    }
    let Some(c) = crate::helper::central::Central::start("browser::a_passport_on_a_phone") else {
        return;
    };
    c.write_config(0, "\n[[product]]\ngtin = \"09506000134352\"\nname = \"PACK-48V battery pack\"\n[[product.link]]\nrel = \"gs1:pip\"\nhref = \"https://www.example.com/packs\"\ntitle = \"Product page\"\n");
    let token = c.add_line("P1-L03");
    let inst = c.run();
    let line = crate::helper::Line::new();
    line.grant_block("b1", 1_048_576, 1000);
    let unit = crate::helper::alloc(&line.open()).unwrap();
    let batch = super::central::batch_of(&line, 1, super::central::line_head(&line));
    let r = reqwest::Client::new()
        .post(format!("{}/v1/lines/P1-L03/journal", inst.base()))
        .bearer_auth(&token)
        .body(batch.to_string())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    // A phone-sized window (390 x 844 CSS pixels, as a scan opens it).
    let (b, mut driver, _profile) = start_browser("390,844").await;
    b.go(&format!("{}/passports/{unit}", inst.base())).await;
    assert_eq!(b.text("h1").await, "PACK-48V battery pack");
    let body = b.text("body").await;
    assert!(
        body.contains(&unit) && body.contains("in production") && body.contains("Germany"),
        "{body}"
    );
    assert!(body.contains("Product page"), "{body}");
    // Nothing wider than the screen: no sideways scrolling on a phone.
    let fits = b
        .call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": "return [document.documentElement.scrollWidth, window.innerWidth];", "args": []})),
        )
        .await;
    let (scroll, inner) = (fits[0].as_i64().unwrap(), fits[1].as_i64().unwrap());
    assert!(inner <= 500, "a phone-sized viewport: {inner}");
    assert!(
        scroll <= inner,
        "the page is {scroll} px wide in a {inner} px window"
    );
    let shot = b.screenshot_at_least("passport-phone.png", 300).await;
    eprintln!("screenshot: {}", shot.display());
    // An unknown unit's page says so.
    b.go(&format!("{}/passports/FTY8JWEQF4GZ0", inst.base()))
        .await;
    assert!(b.text("body").await.contains("counterfeit"));
    b.call(reqwest::Method::DELETE, "", None).await;
    let _ = driver.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shows_the_battery_pass_aspects_on_a_phone_and_more_after_sign_in() {
    if no_browser() {
        return;
    }
    let Some(c) = crate::helper::central::Central::start("browser::battery_pass_aspects") else {
        return;
    };
    c.write_config(
        0,
        "\n[[product]]\ngtin = \"09506000134352\"\nname = \"PACK-48V battery pack\"\n",
    );
    let token = c.add_line("P1-L03");
    let inst = c.run();
    let base = inst.base();
    let unit = super::central::passed_unit_in(&base, &token).await;
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/product-09506000134352");
    let import = c.cli(&["product", "import", "09506000134352", dir.to_str().unwrap()]);
    assert_eq!(
        import.status.code(),
        Some(0),
        "{}",
        crate::helper::stderr(&import)
    );
    let out = c.cli(&[
        "token",
        "new",
        "--role",
        "recycler",
        "--name",
        "Recycling GmbH",
    ]);
    let recycler = crate::helper::stdout(&out)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string();

    let (b, mut driver, _profile) = start_browser("390,844").await;
    b.go(&format!("{base}/passports/{unit}")).await;
    let body = b.text("body").await;
    // Public attributes, readably: words, units, percentages.
    for want in [
        "Battery mass",
        "kg",
        "Recycled content",
        "%",
        "Carbon footprint",
        "Sign in",
    ] {
        assert!(
            body.contains(want),
            "the public page lacks {want:?}:\n{body}"
        );
    }
    // Restricted ones are not there before signing in.
    for hidden in [
        "Battery status",
        "Dismantling and removal information",
        "Result of test report",
    ] {
        assert!(
            !body.contains(hidden),
            "{hidden:?} shown to the public:\n{body}"
        );
    }
    let fits = |v: &Value| v[0].as_i64().unwrap() <= v[1].as_i64().unwrap();
    let width = json!({"script": "return [document.documentElement.scrollWidth, window.innerWidth];", "args": []});
    let w = b
        .call(reqwest::Method::POST, "/execute/sync", Some(width.clone()))
        .await;
    assert!(fits(&w), "the page is wider than the phone: {w}");
    b.screenshot_at_least("passport-aspects-public.png", 300)
        .await;

    // Sign in with the recycler's token in the page's form.
    let script = format!(
        "document.querySelector('input[name=token]').value = '{recycler}'; document.querySelector('form').submit(); return true;"
    );
    b.call(
        reqwest::Method::POST,
        "/execute/sync",
        Some(json!({"script": script, "args": []})),
    )
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut body = String::new();
    while std::time::Instant::now() < deadline {
        body = b.text("body").await;
        if body.contains("Signed in as") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        body.contains("Signed in as Recycling GmbH (recycler)"),
        "{body}"
    );
    for want in [
        "Battery status",
        "Original",
        "Dismantling and removal information",
        "Spare part sources",
    ] {
        assert!(
            body.contains(want),
            "the signed-in page lacks {want:?}:\n{body}"
        );
    }
    assert!(
        !body.contains("Result of test report"),
        "authority-only shown to a recycler"
    );
    let w = b
        .call(reqwest::Method::POST, "/execute/sync", Some(width.clone()))
        .await;
    assert!(fits(&w), "the signed-in page is wider than the phone: {w}");
    b.screenshot_at_least("passport-aspects-recycler.png", 300)
        .await;

    // The model's passport: model attributes only.
    b.go(&format!("{base}/models/09506000134352")).await;
    let body = b.text("body").await;
    assert!(
        body.contains("battery model") && body.contains("Battery mass"),
        "{body}"
    );
    assert!(!body.contains("Manufacturing date"), "{body}");
    b.call(reqwest::Method::DELETE, "", None).await;
    let _ = driver.kill().await;
}
