//! The web portal in a real browser: headless Chromium driven over WebDriver
//! (`chromedriver`, fantoccini) against the real `berth serve` with the process
//! runtime and the real JupyterLab. The same run writes a PNG of every page at
//! desktop and phone widths to `$BERTH_SCREENSHOTS` (else a temp dir), which is
//! what `scripts/screenshots` runs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client as Driver, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::jupyterhub::have_jupyter;
use crate::process::Rig;
use crate::ADMIN_PASSWORD;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// axe-core, the accessibility engine, as scripts/install-deps installs it.
fn axe_source() -> String {
    let prefix =
        std::env::var("BERTH_NODE_PREFIX").unwrap_or_else(|_| "/opt/berth/node".to_owned());
    let path = format!("{prefix}/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}: run scripts/install-deps"))
}

/// The WCAG 2.1 A and AA rules that every page must pass.
const AXE_RUN: &str = r#"
const done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
  .then(r => done(r.violations.map(v => `${v.id} (${v.impact}): ${v.help}: ` +
      v.nodes.map(n => n.target.join(" ")).join(", "))))
  .catch(e => done([`axe failed: ${e}`]));
"#;

/// What has the keyboard focus: which of the selectors `arguments[0]` it
/// matches, whether a focus ring shows, and a description.
const FOCUSED: &str = r##"
const el = document.activeElement;
if (!el || el === document.body) return null;
const s = getComputedStyle(el);
const ring = (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== "none";
const what = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.name ? `[name=${el.name}]` : "") +
  " " + (el.innerText || el.value || "").trim().slice(0, 40);
return {matches: arguments[0].filter(css => el.matches(css)), ring, what};
"##;

/// Window sizes of the screenshots: a desktop and a phone.
const WIDTHS: [(&str, u32, u32); 2] = [("desktop", 1280, 900), ("phone", 360, 780)];

/// Names of 32 characters, the longest berth takes.
const LONG_USER: &str = "a-user-whose-name-is-32-chars-xy";
const LONG_GROUP: &str = "a-group-whose-name-is-32-chars-x";
const LONG_PROFILE: &str = "a-profile-whose-name-is-32-chars";
const LONG_WS: &str = "a-workspace-named-with-32-chars1";

/// A `chromedriver` process and one headless Chromium session.
struct Browser {
    driver: Driver,
    chromedriver: Child,
    base: String,
    shots: PathBuf,
    taken: Vec<PathBuf>,
    axe: String,
    /// What axe found wrong, by page and width.
    violations: Vec<String>,
}

impl Browser {
    async fn start(base: &str, shots: &Path) -> Browser {
        assert!(
            Path::new(CHROMEDRIVER).is_file() && Path::new(CHROMIUM).is_file(),
            "{CHROMEDRIVER} or {CHROMIUM} is missing: run scripts/install-deps"
        );
        let port = free_port();
        let chromedriver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                // Root needs --no-sandbox; the rest keeps a headless run small and alike.
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--hide-scrollbars", "--force-device-scale-factor=1",
                         "--lang=en-US", "--no-first-run"],
            }),
        );
        caps.insert("unhandledPromptBehavior".into(), json!("ignore"));
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let driver = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(d) => break d,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("no WebDriver session from chromedriver: {e}"),
            }
        };
        std::fs::create_dir_all(shots).unwrap();
        Browser {
            driver,
            chromedriver,
            base: base.to_owned(),
            shots: shots.to_owned(),
            taken: Vec::new(),
            axe: axe_source(),
            violations: Vec::new(),
        }
    }

    async fn goto(&self, path: &str) {
        // Chromium abandons a navigation when the host's interfaces change,
        // and they do here: each workspace start adds a veth pair.
        for _ in 0..3 {
            self.driver
                .goto(&format!("{}{path}", self.base))
                .await
                .unwrap();
            let page = self.js("return document.body.innerText").await;
            if !page.as_str().unwrap_or("").contains("ERR_NETWORK_CHANGED") {
                return;
            }
        }
        panic!("{path}: ERR_NETWORK_CHANGED three times");
    }

    /// The path (and query) the browser is at.
    async fn path(&self) -> String {
        // A page that is reloading itself may not answer at once.
        let mut tries = 0;
        let u = loop {
            match self.driver.current_url().await {
                Ok(u) => break u,
                Err(e) if tries < 10 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Err(e) => panic!("the browser's URL: {e}"),
            }
        };
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        }
    }

    async fn title(&self) -> String {
        self.driver.title().await.unwrap()
    }

    /// The text of the element `css`, once there is one.
    async fn text(&self, css: &str) -> String {
        let script = format!("return document.querySelector({}) !== null", json!(css));
        self.until(&format!("an element {css}"), 60, &script).await;
        let script = format!(
            "return document.querySelector({}).innerText.trim()",
            json!(css)
        );
        self.js(&script)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Runs `act`, which leaves the page, and waits until the next one has loaded.
    async fn leaving<F: std::future::Future<Output = ()>>(&self, act: F) {
        self.js("window.__leaving = true").await;
        act.await;
        self.until(
            "the next page",
            120,
            "return window.__leaving === undefined && document.readyState === 'complete'",
        )
        .await;
    }

    /// Submits the form of the field `css` with Enter, and waits for the answer.
    async fn submit(&self, css: &str) {
        self.leaving(self.press_enter(css)).await;
    }

    /// Clicks `css` (a link or a submit button), and waits for the next page.
    async fn follow(&self, css: &str) {
        self.leaving(self.click(css)).await;
    }

    /// Waits up to 60 s for an element.
    async fn wait(&self, css: &str) -> fantoccini::elements::Element {
        let found = self
            .driver
            .wait()
            .at_most(Duration::from_secs(60))
            .for_element(Locator::Css(css))
            .await;
        match found {
            Ok(el) => el,
            Err(e) => panic!(
                "no {css} on {}: {e}\n{}",
                self.path().await,
                self.js("return document.body.innerText").await
            ),
        }
    }

    async fn fill(&self, css: &str, value: &str) {
        let el = self.wait(css).await;
        el.clear().await.unwrap();
        el.send_keys(value).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.wait(css).await.click().await.unwrap();
    }

    /// Submits the form that holds `css` the way a keyboard user does: Enter.
    async fn press_enter(&self, css: &str) {
        self.wait(css).await.send_keys("\u{E007}").await.unwrap();
    }

    /// Runs `script` (a function body) and returns its value.
    /// (A page that is loading or reloading itself may not answer at once.)
    async fn js(&self, script: &str) -> Value {
        let mut tries = 0;
        loop {
            match self.driver.execute(script, vec![]).await {
                Ok(v) => return v,
                Err(e) if tries < 20 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Err(e) => panic!("{script}: {e}"),
            }
        }
    }

    /// Polls `script` until it returns `true`, for up to `secs`.
    async fn until(&self, what: &str, secs: u64, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if self.js(script).await == json!(true) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {secs} s; page {}: {}",
                self.path().await,
                self.js("return document.body.innerText").await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn log_in(&self, user: &str, password: &str) {
        self.goto("/hub/login").await;
        self.fill("#f-username", user).await;
        self.fill("#f-password", password).await;
        self.submit("#f-password").await;
    }

    async fn log_out(&self) {
        self.follow("form.who button").await;
        self.wait("#f-username").await;
    }

    /// Presses Tab up to `max` times from the top of the page, until every one
    /// of `want` (CSS selectors) has had the focus; fails if one never gets it
    /// or a focused control shows no focus ring.
    async fn tab_to_all(&self, want: &[&str], max: usize) {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        const TAB: char = '\u{e004}';
        self.js("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
            .await;
        let mut missing: Vec<&str> = want.to_vec();
        let mut path = Vec::new();
        for _ in 0..max {
            let tab = KeyActions::new("keyboard".into())
                .then(KeyAction::Down { value: TAB })
                .then(KeyAction::Up { value: TAB });
            self.driver.perform_actions(tab).await.unwrap();
            let found = self
                .driver
                .execute(FOCUSED, vec![json!(want)])
                .await
                .unwrap();
            let what = found["what"].as_str().unwrap_or("nothing").to_owned();
            assert!(
                found.is_null() || found["ring"] == json!(true),
                "{what} shows no focus ring"
            );
            for m in found["matches"].as_array().into_iter().flatten() {
                missing.retain(|css| Some(*css) != m.as_str());
            }
            path.push(what);
            if missing.is_empty() {
                return;
            }
        }
        panic!(
            "Tab never reached {missing:?}; it went through:\n{}",
            path.join("\n")
        );
    }

    /// What is wrong with the page as it is now, if it is one of berth's (not an
    /// app's behind the proxy): axe-core's WCAG 2.1 A and AA violations, and
    /// anything it loaded from another origin.
    async fn faults(&self) -> Vec<String> {
        let berths = "return !!document.querySelector('link[href=\"/hub/static/berth.css\"]')";
        if self.js(berths).await != json!(true) {
            return Vec::new();
        }
        // Offline-proof: nothing the page loaded came from another origin.
        let foreign = self
            .js("return performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith(location.origin))")
            .await;
        let mut found: Vec<String> = foreign
            .as_array()
            .into_iter()
            .flatten()
            .map(|u| format!("loaded from another origin: {u}"))
            .collect();
        // Nothing wider than the window (a table may scroll in its own box),
        // and the audit table not even that.
        let overflow = self
            .js("const w = window.innerWidth; const d = document.documentElement.scrollWidth; \
                 const t = document.querySelector('#audit'); \
                 return [d > w ? `the page is ${d}px wide in a ${w}px window` : null, \
                   t && w >= 1280 && t.scrollWidth > t.parentElement.clientWidth \
                     ? `the audit table is ${t.scrollWidth}px wide in ${t.parentElement.clientWidth}px` : null]")
            .await;
        found.extend(
            overflow
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned)),
        );
        if self.js("return typeof axe === 'undefined'").await == json!(true) {
            self.js(&format!("{}\nwindow.axe = axe;", self.axe)).await;
        }
        match self.driver.execute_async(AXE_RUN, vec![]).await {
            Ok(Value::Array(v)) => {
                found.extend(v.iter().map(|v| v.as_str().unwrap_or("?").to_owned()))
            }
            other => found.push(format!("axe did not run: {other:?}")),
        }
        found
    }

    /// A PNG of the whole page at each width, named `{name}-{width}.png`, and
    /// its accessibility audit at that width.
    async fn shoot(&mut self, name: &str) {
        for (label, w, h) in WIDTHS {
            self.driver.set_window_size(w, h).await.unwrap();
            for v in self.faults().await {
                self.violations.push(format!("{name} at {label}: {v}"));
            }
            let full = self
                .js("return Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)")
                .await
                .as_u64()
                .unwrap_or(u64::from(h)) as u32;
            self.driver
                .set_window_size(w, full.clamp(h, 6000))
                .await
                .unwrap();
            let png = match self.driver.screenshot().await {
                Ok(png) => png,
                Err(e) => panic!(
                    "{name}: screenshot at {}: {e}\n{}",
                    self.path().await,
                    self.js("return document.documentElement.outerHTML").await
                ),
            };
            assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}: not a PNG");
            let path = self.shots.join(format!("{name}-{label}.png"));
            std::fs::write(&path, png).unwrap();
            self.taken.push(path);
        }
        self.driver.set_window_size(1280, 900).await.unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.chromedriver.kill();
        let _ = self.chromedriver.wait();
    }
}

/// A loopback port free at the moment of asking.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether the text of the element `css` is `want` (a JS predicate).
fn text_is(css: &str, want: &str) -> String {
    format!(
        "const e = document.querySelector({}); return !!e && e.textContent.trim() === {};",
        json!(css),
        json!(want)
    )
}

/// The whole story of the issue: an admin makes a user and a profile (after a
/// refused one), the user logs in (after a wrong password), is refused the admin
/// pages, makes a workspace (after a refused name) and watches it run without a
/// reload, opens JupyterLab through the proxy, stops it, makes a token (after a
/// refused scope), uses and revokes it; the admin sees all of it in the audit
/// log. Every page is photographed on the way.
#[tokio::test]
async fn a_user_and_an_admin_use_the_portal() {
    if !have_jupyter() {
        return;
    }
    let mut rig = Rig::new();
    let url = rig.start_serve();
    let keep = std::env::var_os("BERTH_SCREENSHOTS").map(PathBuf::from);
    let tmp = tempfile::tempdir().unwrap();
    let shots = keep.clone().unwrap_or_else(|| tmp.path().to_owned());
    let mut b = Browser::start(&url, &shots).await;

    // Anyone is sent to the login page, and comes back after it.
    b.goto("/hub/admin/users").await;
    assert_eq!(b.path().await, "/hub/login?next=%2Fhub%2Fadmin%2Fusers");
    b.shoot("login").await;
    b.fill("#f-username", "admin").await;
    b.fill("#f-password", "not-the-password").await;
    b.submit("#f-password").await;
    assert_eq!(b.text("#login-error").await, "Wrong user name or password.");
    b.shoot("login-error").await;
    b.fill("#f-password", ADMIN_PASSWORD).await;
    b.submit("#f-password").await;
    b.wait("#users").await;
    assert_eq!(b.path().await, "/hub/admin/users");
    assert_eq!(b.title().await, "Users · berth");

    // The admin makes a user; a bad password is refused beside its field.
    b.fill("#f-name", "ada").await;
    b.fill("#f-password", "short").await;
    b.js("document.getElementById('f-password').removeAttribute('minlength')")
        .await;
    b.submit("#f-name").await;
    assert_eq!(
        b.text("[data-error-for=password]").await,
        "must be 8 to 1024 characters"
    );
    assert_eq!(
        b.js("return document.getElementById('f-name').value").await,
        "ada"
    );
    b.shoot("admin-users-error").await;
    b.fill("#f-password", "ada-password").await;
    b.submit("#f-password").await;
    b.wait("tr[data-user=ada]").await;
    assert_eq!(b.text(".notice").await, "Created user ada.");
    // ... and a group with her in it.
    b.fill("#f-group", "analysts").await;
    b.submit("#f-group").await;
    b.fill("#add-analysts", "ada").await;
    b.submit("#add-analysts").await;
    b.until(
        "ada is in analysts",
        10,
        &text_is("tr[data-user=ada] td[data-label=Groups]", "analysts"),
    )
    .await;
    b.shoot("admin-users").await;

    // A profile: a CPU count that is no number is refused beside its field.
    b.goto("/hub/admin/profiles").await;
    b.fill("#f-name", "small-lab").await;
    b.fill("#f-display_name", "Small lab (1 CPU, 2 GiB)").await;
    b.fill("#f-cpu", "lots").await;
    b.fill("#f-memory_gib", "2").await;
    b.fill("#f-idle_minutes", "45").await;
    b.fill("#f-cost_per_hour", "0.25").await;
    b.follow("#new-profile button[type=submit]").await;
    assert_eq!(
        b.text("[data-error-for=cpu]").await,
        "enter a number, 0 or more"
    );
    b.shoot("admin-profiles-error").await;
    b.fill("#f-cpu", "1000").await;
    b.follow("#new-profile button[type=submit]").await;
    assert_eq!(
        b.text("[data-error-for=cpu]").await,
        "must be between 0.01 and 512 CPUs"
    );
    b.fill("#f-cpu", "1").await;
    b.follow("#new-profile button[type=submit]").await;
    b.wait("tr[data-profile=small-lab]").await;
    assert_eq!(b.text(".notice").await, "Created profile small-lab.");
    b.shoot("admin-profiles").await;
    b.goto("/hub/admin/profiles/small-lab").await;
    assert_eq!(
        b.js("return document.getElementById('f-cpu').value").await,
        "1"
    );
    b.shoot("admin-profile-edit").await;
    // Ada's own quota: a count that is no whole number is refused beside it.
    b.goto("/hub/admin/quotas").await;
    b.follow("tr[data-user=ada] a.button").await;
    b.wait("#edit-quota").await;
    b.fill("#f-workspaces", "2.5").await;
    b.fill("#f-cpu", "4").await;
    b.fill("#f-memory_gib", "2000000000000").await;
    b.follow("#edit-quota button[type=submit]").await;
    assert_eq!(
        b.text("[data-error-for=workspaces]").await,
        "enter a whole number, 0 or more"
    );
    assert_eq!(
        b.text("[data-error-for=memory_gib]").await,
        "at most 1 EiB",
        "every field's error at once"
    );
    b.fill("#f-memory_gib", "").await;
    b.shoot("admin-quota-edit").await;
    b.fill("#f-workspaces", "3").await;
    b.follow("#edit-quota button[type=submit]").await;
    b.wait("#quotas").await;
    assert_eq!(b.text(".notice").await, "Saved the quota of ada.");
    let row = b.text("tr[data-user=ada]").await;
    assert!(
        row.contains("own limits") && row.contains("0 of 3"),
        "{row}"
    );
    b.shoot("admin-quotas").await;
    // The admin sets ada's password (she forgot hers): no old one needed.
    b.goto("/hub/admin/users").await;
    b.follow("tr[data-user=ada] a[href$='/password']").await;
    b.wait("#password-form").await;
    assert_eq!(b.title().await, "Password of ada · berth");
    b.shoot("admin-password").await;
    b.fill("#f-password", "ada-password-2").await;
    b.fill("#f-confirm", "ada-password-2").await;
    b.follow("#password-form button[type=submit]").await;
    b.wait("#users").await;
    assert_eq!(
        b.text(".notice").await,
        "Set the password of ada; their sessions were logged out."
    );
    b.log_out().await;
    b.shoot("logged-out").await;

    // Ada: the admin pages are refused, not just hidden.
    b.log_in("ada", "ada-password-2").await;
    b.wait("#new-workspace").await;
    assert_eq!(b.path().await, "/hub/home");
    assert_eq!(
        b.js("return !!document.querySelector('a[href=\"/hub/admin/users\"]')")
            .await,
        false
    );
    for page in [
        "/hub/admin/users",
        "/hub/admin/profiles",
        "/hub/admin/audit",
        "/hub/admin/workspaces",
        "/hub/admin/quotas",
    ] {
        b.goto(page).await;
        assert_eq!(b.title().await, "Forbidden · berth", "{page}");
        assert_eq!(
            b.text(".lead").await,
            "Only administrators may see this page."
        );
    }
    b.shoot("forbidden").await;

    // A bad name is flagged as it is typed, and the form is not sent.
    b.goto("/hub/home").await;
    let quota = b
        .text(".quota")
        .await
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        quota.contains("0 of 3 workspaces") && quota.contains("0 of 4 CPUs"),
        "{quota}"
    );
    b.shoot("home-empty").await;
    b.fill("#f-name", "Lab").await;
    assert_eq!(
        b.text("[data-error-for=name]").await,
        "Only lowercase letters, digits and hyphens (not “L”)."
    );
    b.press_enter("#f-name").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(b.path().await, "/hub/home");
    b.shoot("home-name-error").await;
    // The server says the same when the browser's check is bypassed.
    b.leaving(async {
        b.js("document.getElementById('new-workspace').submit()")
            .await;
    })
    .await;
    b.until("the server's refusal", 10, "return document.title === 'Your workspaces · berth' && document.querySelector('[data-error-for=name]').textContent.includes('lowercase')").await;

    // A workspace from the profile, followed to running without a reload.
    b.goto("/hub/home").await;
    b.fill("#f-name", "lab").await;
    b.click("input[name=profile][value=small-lab]").await;
    b.follow("#new-workspace button[type=submit]").await;
    b.wait("#workspaces").await;
    assert_eq!(
        b.text(".notice").await,
        "Created workspace lab; it is starting."
    );
    b.js("window.__same_page = true").await;
    b.until(
        "lab runs",
        120,
        &text_is("#workspaces [data-state]", "running"),
    )
    .await;
    assert_eq!(
        b.js("return window.__same_page === true").await,
        true,
        "the page reloaded"
    );
    b.shoot("home").await;
    // From the keyboard alone, Tab reaches every control, each with a focus ring.
    b.tab_to_all(
        &[
            "a.skip",
            "#f-name",
            "input[name=profile]",
            "#new-workspace button[type=submit]",
            "#workspaces a[data-open]",
            "#workspaces [data-when=active] button",
            "form.who button",
        ],
        60,
    )
    .await;

    // Open: JupyterLab's UI loads through berth's proxy (after its OAuth login).
    b.follow("#workspaces a[data-open]").await;
    b.wait("#jp-main-dock-panel").await;
    assert!(
        b.path().await.starts_with("/user/ada/lab/lab"),
        "{}",
        b.path().await
    );
    b.until(
        "JupyterLab's launcher",
        60,
        "return !!document.querySelector('.jp-Launcher, .jp-LauncherCard')",
    )
    .await;
    b.shoot("jupyterlab").await;

    // Its page: state history, resources in use, log, next events.
    b.goto("/hub/home").await;
    b.follow("#workspaces th a").await;
    b.wait("#history").await;
    let page = b
        .js("return document.querySelector('main').innerText")
        .await;
    let page = page.as_str().unwrap().to_lowercase();
    for want in [
        "running",
        "pending",
        "/user/ada/lab/",
        "stops after 45 min idle",
        "of 1 cpus",
        "of 2 gib",
        "it is kept until you delete it.",
    ] {
        assert!(
            page.contains(want),
            "{want:?} missing from the workspace page:\n{page}"
        );
    }
    assert!(!b.text("pre.log").await.is_empty());
    // The home's use, of its own file system's size (an image of the limit).
    let disk = b.text("#disk").await;
    assert!(
        disk.contains(" of ") && disk.contains("GiB") && !disk.contains("full"),
        "{disk}"
    );
    b.shoot("workspace").await;

    // Stop, followed live too; the proxy then shows its start page.
    b.goto("/hub/home").await;
    b.js("window.__same_page = true").await;
    b.follow("#workspaces [data-when=active] button").await;
    b.wait("#workspaces").await;
    assert_eq!(b.text(".notice").await, "Stopping lab.");
    b.js("window.__same_page = true").await;
    b.until(
        "lab stops",
        60,
        &text_is("#workspaces [data-state]", "stopped"),
    )
    .await;
    assert_eq!(b.js("return window.__same_page === true").await, true);
    b.goto("/user/ada/lab/").await;
    b.wait("#start").await;
    b.shoot("workspace-stopped").await;
    // Starting it there follows the start, and opens JupyterLab when ready.
    b.follow("#start").await;
    b.wait("#jp-main-dock-panel").await;
    assert!(
        b.path().await.starts_with("/user/ada/lab/lab"),
        "{}",
        b.path().await
    );

    // Ada shares lab with grace (after trying herself, which is refused beside
    // the field); grace finds it under "Shared with you" and opens it.
    let admin = client::Client::new(&url, Some(crate::process::admin_token(&url).await)).unwrap();
    crate::jupyterhub::create_user(&admin, "grace").await;
    b.goto("/hub/home").await;
    b.follow("#workspaces th a").await;
    b.wait("#share-form").await;
    assert_eq!(b.text("#sharing .empty").await, "Not shared with anyone.");
    b.fill("#share-form #f-name", "ada").await;
    b.follow("#share-form button[type=submit]").await;
    assert_eq!(
        b.text("[data-error-for=name]").await,
        "ada owns lab; share it with someone else"
    );
    b.shoot("share-error").await;
    b.fill("#share-form #f-name", "grace").await;
    b.follow("#share-form button[type=submit]").await;
    b.wait("#shares").await;
    assert_eq!(b.text(".notice").await, "Shared lab with grace.");
    assert!(b.text("#shares").await.contains("grace"));
    b.shoot("sharing").await;
    b.log_out().await;
    b.log_in("grace", "grace-password").await;
    b.wait("#shared").await;
    assert!(b.text("#shared").await.contains("ada"));
    b.shoot("shared-with-you").await;
    b.follow("#shared a.button").await;
    b.wait("#jp-main-dock-panel").await;
    assert!(
        b.path().await.starts_with("/user/ada/lab/lab"),
        "{}",
        b.path().await
    );
    b.goto("/hub/home").await;
    b.log_out().await;
    // Revoked, it is gone from grace's home and its door is shut to her.
    b.log_in("ada", "ada-password-2").await;
    b.wait("#new-workspace").await;
    b.follow("#workspaces th a").await;
    b.wait("#shares").await;
    b.click("#shares button.danger").await;
    b.wait(".notice").await;
    assert_eq!(
        b.text(".notice").await,
        "lab is no longer shared with user grace."
    );
    b.log_out().await;
    b.log_in("grace", "grace-password").await;
    b.wait("#new-workspace").await;
    assert_eq!(
        b.js("return !!document.getElementById('shared')").await,
        false
    );
    b.goto("/user/ada/lab/lab").await;
    assert_eq!(b.title().await, "Forbidden · berth");
    b.goto("/hub/home").await;
    b.log_out().await;
    b.log_in("ada", "ada-password-2").await;
    b.wait("#new-workspace").await;

    // A workspace whose app never answers stays on the progress page, which
    // shows the app's output; deleting
    // it asks first.
    crate::process::create_profile(
        &admin,
        "sleeper",
        256 << 20,
        "import time; print('loading the model', flush=True); time.sleep(3600)",
    )
    .await;
    b.goto("/hub/home").await;
    b.fill("#f-name", "slow").await;
    b.click("input[name=profile][value=sleeper]").await;
    b.follow("#new-workspace button[type=submit]").await;
    assert_eq!(
        b.text(".notice").await,
        "Created workspace slow; it is starting."
    );
    b.until("slow starts", 30, "return [...document.querySelectorAll('#workspaces [data-state]')].some(e => e.textContent === 'starting')").await;
    b.goto("/user/ada/slow/").await;
    b.wait(".progress").await;
    b.until(
        "slow starts",
        30,
        "return document.querySelector('[data-state]').textContent === 'starting'",
    )
    .await;
    // The page lists the start's steps and what the app printed, as it comes.
    b.until(
        "the app's output on the start page",
        30,
        "return [...document.querySelectorAll('.progress-log li.log')].some(e => e.textContent === 'loading the model')",
    )
    .await;
    b.shoot("workspace-starting").await;
    b.goto("/hub/home").await;
    b.follow("tr:last-child a.danger").await;
    b.wait("form[action$='/delete']").await;
    b.shoot("confirm-delete").await;
    b.follow("form[action$='/delete'] button[type=submit]")
        .await;
    assert_eq!(b.text(".notice").await, "Deleting slow.");
    b.until("slow is gone", 60, "return document.querySelectorAll('#workspaces tbody tr').length === 1 || [...document.querySelectorAll('#workspaces [data-state]')].some(e => e.textContent === 'deleted')").await;

    // A token: a bad scope is refused beside its field; a good one is shown once,
    // works, and stops working when revoked.
    b.goto("/hub/token").await;
    b.fill("#f-note", "ci").await;
    b.fill("#f-scopes", "read:everything").await;
    b.submit("#f-scopes").await;
    assert!(b
        .text("[data-error-for=scopes]")
        .await
        .contains("read:everything"));
    b.shoot("tokens-error").await;
    b.fill("#f-scopes", "read:servers").await;
    b.submit("#f-scopes").await;
    let secret = b
        .wait("#new-token")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(secret.starts_with(model::secret::TOKEN_PREFIX), "{secret}");
    b.shoot("tokens").await;
    let http = reqwest::Client::new();
    let me = |t: String| http.get(format!("{url}/api/v1/me")).bearer_auth(t).send();
    assert_eq!(me(secret.clone()).await.unwrap().status(), 200);
    b.goto("/hub/token").await;
    assert!(b.text("#tokens").await.contains("read:servers"));
    // Ada's other tokens are JupyterLab's; the one to revoke has the note "ci".
    b.js("[...document.querySelectorAll('#tokens tbody tr')].find(r => r.querySelector('th').textContent.trim().startsWith('ci ')).id = 'ci-token'").await;
    b.click("#ci-token form[data-confirm] button").await;
    b.driver.accept_alert().await.unwrap();
    b.wait(".notice").await;
    assert_eq!(b.text(".notice").await, "Token revoked.");
    assert_eq!(me(secret).await.unwrap().status(), 401);

    // Ada changes her password: every field's problem at once, then a wrong
    // current one beside its field; done, she stays logged in.
    b.goto("/hub/password").await;
    b.fill("#f-password", "short").await;
    b.fill("#f-confirm", "other").await;
    b.js("for (const e of document.querySelectorAll('#password-form input')) { e.removeAttribute('required'); e.removeAttribute('minlength'); }").await;
    b.follow("#password-form button[type=submit]").await;
    assert_eq!(
        b.text("[data-error-for=old_password]").await,
        "enter your current password"
    );
    assert_eq!(
        b.text("[data-error-for=password]").await,
        "must be 8 to 1024 characters"
    );
    assert_eq!(
        b.text("[data-error-for=confirm]").await,
        "does not match the new password"
    );
    b.shoot("password-error").await;
    b.fill("#f-old_password", "not-my-password").await;
    b.fill("#f-password", "ada-password-3").await;
    b.fill("#f-confirm", "ada-password-3").await;
    b.follow("#password-form button[type=submit]").await;
    assert_eq!(
        b.text("[data-error-for=old_password]").await,
        "that is not your current password"
    );
    b.fill("#f-old_password", "ada-password-2").await;
    b.fill("#f-password", "ada-password-3").await;
    b.fill("#f-confirm", "ada-password-3").await;
    b.shoot("password").await;
    b.follow("#password-form button[type=submit]").await;
    b.wait("#new-workspace").await;
    assert_eq!(
        b.text(".notice").await,
        "Your password was changed. Your other sessions were logged out."
    );
    b.log_out().await;
    b.log_in("ada", "ada-password-3").await;
    b.wait("#new-workspace").await;
    b.log_out().await;

    // The admin sees all of it: the audit log, filtered to ada.
    b.log_in("admin", ADMIN_PASSWORD).await;
    b.wait("#new-workspace").await;
    b.goto("/hub/admin/workspaces?all=1").await;
    b.wait("#all-workspaces").await;
    b.shoot("admin-workspaces").await;
    b.goto("/hub/admin/audit").await;
    b.fill("#f-user", "ada").await;
    b.submit("#f-user").await;
    b.wait("#audit").await;
    let log = b.text("#audit").await;
    for action in [
        "auth.login",
        "workspace.create",
        "workspace.stop",
        "workspace.share",
        "workspace.unshare",
        "token.create",
        "token.delete",
        "user.password",
        "auth.logout",
    ] {
        assert!(
            log.contains(action),
            "{action} missing from ada's audit log:\n{log}"
        );
    }
    b.shoot("admin-audit").await;
    b.fill("#f-user", "admin").await;
    b.fill("#f-action", "user").await;
    b.submit("#f-action").await;
    b.wait("#audit").await;
    let log = b.text("#audit").await;
    assert!(
        log.contains("user.create") && log.contains("user ada"),
        "{log}"
    );
    b.fill("#f-action", "quota").await;
    b.submit("#f-action").await;
    b.wait("#audit").await;
    let log = b.text("#audit").await;
    assert!(log.contains("quota.set") && log.contains("ada"), "{log}");
    b.fill("#f-action", "bogus").await;
    b.submit("#f-action").await;
    assert!(b
        .text("[data-error-for=action]")
        .await
        .starts_with("no such action or family of actions; the families are auth, group,"));

    // Names of 32 characters, the most berth takes, on every page that shows
    // them: the pages still hold at 360 px, and the audit table at 1280 px.
    let admin = client::Client::new(&url, Some(crate::process::admin_token(&url).await)).unwrap();
    admin
        .create_user(&api_types::UserCreate {
            name: LONG_USER.into(),
            password: Some("a-long-password".into()),
            admin: false,
        })
        .await
        .unwrap();
    admin
        .create_group(&api_types::GroupCreate {
            name: LONG_GROUP.into(),
            members: vec![LONG_USER.into(), "ada".into()],
        })
        .await
        .unwrap();
    crate::process::create_profile(&admin, LONG_PROFILE, 256 << 20, "pass").await;
    let long = admin
        .create_workspace(&api_types::WorkspaceCreate {
            name: LONG_WS.into(),
            profile: Some(LONG_PROFILE.into()),
            owner: Some(LONG_USER.into()),
            start: false,
        })
        .await
        .unwrap();
    for page in [
        "/hub/admin/users",
        "/hub/admin/profiles",
        "/hub/admin/quotas",
        "/hub/admin/workspaces?all=1",
        "/hub/admin/audit",
    ] {
        b.goto(page).await;
        b.wait("main h1").await;
        let name = format!(
            "long-{}",
            page.trim_start_matches("/hub/admin/")
                .split('?')
                .next()
                .unwrap()
        );
        b.shoot(&name).await;
    }
    b.log_out().await;
    b.log_in(LONG_USER, "a-long-password").await;
    b.wait("#new-workspace").await;
    b.shoot("long-home").await;
    b.goto(&format!("/hub/workspaces/{}", long.id)).await;
    b.wait("#history").await;
    b.shoot("long-workspace").await;

    // Every page was photographed at both widths, and passed the audit.
    assert!(
        b.violations.is_empty(),
        "accessibility (WCAG 2.1 A and AA, axe-core) and offline use:\n{}",
        b.violations.join("\n")
    );
    assert_eq!(b.taken.len(), 2 * 36, "{:?}", b.taken);
    if let Some(dir) = keep {
        eprintln!("wrote {} screenshots to {}", b.taken.len(), dir.display());
    }
}
