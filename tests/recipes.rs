//! The Django and PHP recipes (`contrib/django`, `contrib/php`) against the
//! real things: a Django project made with `startproject` and `migrate`, run
//! with `runserver`, and PHP's built-in server, each behind the gateway. The
//! signed-in user's name, email and groups arrive, the Django admin admits
//! staff, and headers a client makes up change nothing.
//!
//! Needs `python3` with Django and `php` on PATH; without them the tests
//! skip, except under `CI=true`, where a missing one is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Browser, Gateway, ALICE_PASSWORD, BOB_PASSWORD};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ASSERTION_KEY: &[u8] = b"an assertion key shared by the gateway and the app, 32+ bytes";

/// Whether `program args...` runs and succeeds; under `CI=true` a missing
/// program fails the test instead of skipping it.
fn available(what: &str, program: &str, args: &[&str]) -> bool {
    let ok = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{what} is required under CI=true (.ci/run installs it)"
        );
        eprintln!("skipped: {what} is not installed");
    }
    ok
}

fn contrib(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib")
        .join(sub)
}

/// A server process, killed when the test ends.
struct App {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl App {
    fn wait_listening(mut self) -> App {
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(self.addr).is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "the app exited with {status}:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "the app did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        self
    }
}

fn run(dir: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A public `/public/` route and a login route for the rest, to `app`;
/// with `assertion`, the gateway signs an assertion with `assertion.key`.
fn gateway_for(app: SocketAddr, assertion: bool) -> Gateway {
    let identity = if assertion {
        "[identity]\nassertion_header = \"X-Gatehouse-Assertion\"\nassertion_key_file = \"assertion.key\"\n"
    } else {
        ""
    };
    let text = format!(
        "[server]\nlisten = [\"@LISTEN@\"]\nadmin_listen = \"@ADMIN@\"\ngrace_period = \"0s\"\nthreads = 1\n\n\
         [[route]]\npath_prefix = \"/public/\"\nupstream = \"{app}\"\naccess = \"public\"\n\n\
         [[route]]\npath_prefix = \"/\"\nupstream = \"{app}\"\naccess = \"login\"\n\n\
         [users]\nfile = \"users.toml\"\n\n[session]\ncookie_secure = false\n\n{identity}"
    );
    let key = std::str::from_utf8(ASSERTION_KEY).unwrap();
    Gateway::start_with_files(&text, &[("assertion.key", key)])
}

/// Headers a client might send to pass as someone else, in the spellings
/// a WSGI or CGI app reads as the same variable.
const SPOOFED: [(&str, &str); 5] = [
    ("X-Remote-User", "mallory"),
    ("X_Remote_User", "mallory"),
    ("X-Remote-Groups", "staff,admins"),
    ("X-Remote-Email", "mallory@evil.example"),
    ("X-Gatehouse-Assertion", "e30.AAAA"),
];

// ---------------------------------------------------------------- Django

/// `django-admin startproject`, the settings the README gives, a `whoami`
/// view, `migrate`, then `runserver` on a free port.
fn django(addr: SocketAddr, assertion_key_file: Option<&Path>) -> App {
    let dir = tempfile::tempdir().unwrap();
    run(
        dir.path(),
        "python3",
        &["-m", "django", "startproject", "mysite", "."],
    );
    let settings = dir.path().join("mysite/settings.py");
    let mut text = std::fs::read_to_string(&settings).unwrap();
    text.push_str(&format!(
        "\n# gatehouse (README: Wiring your app, Django)\n\
         import sys\n\
         sys.path.insert(0, {contrib:?})\n\
         MIDDLEWARE.insert(\n    MIDDLEWARE.index(\"django.contrib.auth.middleware.AuthenticationMiddleware\") + 1,\n    \"gatehouse_django.middleware.GatehouseMiddleware\",\n)\n\
         AUTHENTICATION_BACKENDS = [\"gatehouse_django.backends.GatehouseBackend\"]\n\
         GATEHOUSE_STAFF_GROUPS = [\"staff\"]\n\
         GATEHOUSE_SUPERUSER_GROUPS = [\"admins\"]\n\
         LOGOUT_REDIRECT_URL = \"/.gatehouse/logout\"\n",
        contrib = contrib("django").display().to_string(),
    ));
    if let Some(key) = assertion_key_file {
        text.push_str(&format!(
            "GATEHOUSE_ASSERTION_KEY_FILE = {:?}\n",
            key.display().to_string()
        ));
    }
    std::fs::write(&settings, text).unwrap();
    let urls = dir.path().join("mysite/urls.py");
    let mut text = std::fs::read_to_string(&urls).unwrap();
    text.push_str(
        "\nfrom django.http import JsonResponse\n\n\
         def whoami(request):\n\
         \x20   u = request.user\n\
         \x20   return JsonResponse({\n\
         \x20       \"authenticated\": u.is_authenticated,\n\
         \x20       \"username\": u.get_username(),\n\
         \x20       \"email\": getattr(u, \"email\", \"\"),\n\
         \x20       \"full_name\": u.get_full_name() if u.is_authenticated else \"\",\n\
         \x20       \"groups\": sorted(u.groups.values_list(\"name\", flat=True)) if u.is_authenticated else [],\n\
         \x20       \"is_staff\": u.is_staff,\n\
         \x20       \"is_superuser\": u.is_superuser,\n\
         \x20       \"usable_password\": u.has_usable_password() if u.is_authenticated else None,\n\
         \x20   })\n\n\
         urlpatterns += [path(\"whoami/\", whoami), path(\"public/whoami/\", whoami)]\n",
    );
    std::fs::write(&urls, text).unwrap();
    run(
        dir.path(),
        "python3",
        &["manage.py", "migrate", "--noinput"],
    );

    let log = dir.path().join("runserver.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new("python3")
        .args(["manage.py", "runserver", "--noreload", &addr.to_string()])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    App {
        child,
        addr,
        log,
        _dir: dir,
    }
    .wait_listening()
}

fn django_available() -> bool {
    available("python3 with Django", "python3", &["-c", "import django"])
}

fn free_addr() -> SocketAddr {
    format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap()
}

#[tokio::test]
async fn django_gets_the_user_email_name_groups_and_admits_staff_to_its_admin() {
    if !django_available() {
        return;
    }
    let addr = free_addr();
    let gw = gateway_for(addr, false);
    let _app = django(addr, None);

    let mut alice = gw.signed_in("alice", ALICE_PASSWORD).await;
    let me = alice.api("/whoami/").await;
    assert_eq!(me.status, 200, "{}", me.body);
    let me = me.json();
    assert_eq!(me["authenticated"], true, "{me}");
    assert_eq!(me["username"], "alice");
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["full_name"], "Alice Example");
    assert_eq!(me["groups"], serde_json::json!(["admins", "staff"]));
    assert_eq!(me["is_staff"], true);
    assert_eq!(
        me["is_superuser"], true,
        "admins are GATEHOUSE_SUPERUSER_GROUPS"
    );
    assert_eq!(me["usable_password"], false, "only the gateway signs in");

    let admin = alice.page("/admin/").await;
    assert_eq!(admin.status, 200, "{}", admin.body);
    assert!(admin.body.contains("Site administration"), "{}", admin.body);
    let users = alice.page("/admin/auth/user/").await;
    assert_eq!(users.status, 200);
    assert!(users.body.contains("alice"), "{}", users.body);

    // Made-up headers from a signed-in client change nothing.
    let me = alice.get_with("/whoami/", &SPOOFED).await.json();
    assert_eq!(me["username"], "alice", "{me}");
    assert_eq!(me["email"], "alice@example.com");

    // Bob is in no group: signed in, but the admin turns him away.
    let mut bob = gw.signed_in("bob", BOB_PASSWORD).await;
    let me = bob.api("/whoami/").await.json();
    assert_eq!(me["username"], "bob", "{me}");
    assert_eq!(me["is_staff"], false);
    assert_eq!(me["groups"], serde_json::json!([]));
    let admin = bob.page("/admin/").await;
    assert_eq!(admin.status, 302, "{}", admin.body);
    assert!(
        admin.location().starts_with("/admin/login/"),
        "{}",
        admin.location()
    );

    // Nobody signed in: the public route reaches Django anonymous,
    // whatever the client claims.
    let mut anon = Browser::new(&gw.url("/"));
    let me = anon.get_with("/public/whoami/", &SPOOFED).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["authenticated"], false, "{}", me.body);

    // Signed out at the gateway: the Django login made through the header
    // ends too, although the browser still holds Django's session cookie.
    let form = alice.page("/.gatehouse/logout").await;
    let token = form.field("csrf_token");
    let out = alice
        .post_form("/.gatehouse/logout", &[("csrf_token", &token)])
        .await;
    assert_eq!(out.status, 303);
    let me = alice.api("/public/whoami/").await.json();
    assert_eq!(me["authenticated"], false, "{me}");
}

#[tokio::test]
async fn django_with_the_assertion_ignores_a_header_that_skipped_the_gateway() {
    if !django_available() {
        return;
    }
    let addr = free_addr();
    let gw = gateway_for(addr, true);
    let _app = django(addr, Some(&gw.dir().join("assertion.key")));

    let mut alice = gw.signed_in("alice", ALICE_PASSWORD).await;
    let me = alice.api("/whoami/").await.json();
    assert_eq!(me["username"], "alice", "{me}");
    assert_eq!(me["is_staff"], true);

    // Straight to Django, past the gateway, claiming to be alice.
    let direct = reqwest::Client::new()
        .get(format!("http://{addr}/whoami/"))
        .header("X-Remote-User", "alice")
        .header("X-Remote-Groups", "staff,admins")
        .header("X-Gatehouse-Assertion", "e30.AAAA")
        .send()
        .await
        .unwrap();
    let me: serde_json::Value = direct.json().await.unwrap();
    assert_eq!(me["authenticated"], false, "{me}");
}

// ---------------------------------------------------------------- PHP

/// `php -S` with a router script that answers every path with what
/// `gatehouse_identity()` returns.
fn php(addr: SocketAddr, assertion_key_file: Option<&Path>) -> App {
    let dir = tempfile::tempdir().unwrap();
    let lib = contrib("php").join("gatehouse.php");
    std::fs::write(
        dir.path().join("index.php"),
        format!(
            "<?php\nrequire {:?};\nheader('Content-Type: application/json');\n\
             $me = gatehouse_identity();\n\
             echo json_encode(['identity' => $me, 'staff' => gatehouse_in_group($me, 'staff')]);\n",
            lib.display().to_string()
        ),
    )
    .unwrap();
    let log = dir.path().join("php.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut cmd = Command::new("php");
    cmd.args(["-S", &addr.to_string(), "index.php"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    if let Some(key) = assertion_key_file {
        cmd.env("GATEHOUSE_ASSERTION_KEY_FILE", key);
    }
    App {
        child: cmd.spawn().unwrap(),
        addr,
        log,
        _dir: dir,
    }
    .wait_listening()
}

#[tokio::test]
async fn php_gets_the_identity_and_made_up_headers_change_nothing() {
    if !available("php", "php", &["-v"]) {
        return;
    }
    let addr = free_addr();
    let gw = gateway_for(addr, false);
    let _app = php(addr, None);

    let mut alice = gw.signed_in("alice", ALICE_PASSWORD).await;
    for r in [
        alice.api("/index").await,
        alice.get_with("/index", &SPOOFED).await,
    ] {
        assert_eq!(r.status, 200, "{}", r.body);
        let j = r.json();
        assert_eq!(
            j["identity"],
            serde_json::json!({"user": "alice", "email": "alice@example.com", "name": "Alice Example", "groups": ["staff", "admins"]}),
            "{j}"
        );
        assert_eq!(j["staff"], true);
    }

    let mut bob = gw.signed_in("bob", BOB_PASSWORD).await;
    let j = bob.get_with("/x", &SPOOFED).await.json();
    assert_eq!(j["identity"]["user"], "bob", "{j}");
    assert_eq!(j["identity"]["groups"], serde_json::json!([]));
    assert_eq!(j["staff"], false);

    let j = Browser::new(&gw.url("/"))
        .get_with("/public/x", &SPOOFED)
        .await
        .json();
    assert_eq!(j["identity"], serde_json::Value::Null, "{j}");
}

#[tokio::test]
async fn php_with_the_assertion_ignores_a_header_that_skipped_the_gateway() {
    if !available("php", "php", &["-v"]) {
        return;
    }
    let addr = free_addr();
    let gw = gateway_for(addr, true);
    let _app = php(addr, Some(&gw.dir().join("assertion.key")));

    let mut alice = gw.signed_in("alice", ALICE_PASSWORD).await;
    let j = alice.api("/index").await.json();
    assert_eq!(j["identity"]["user"], "alice", "{j}");
    assert_eq!(j["staff"], true);

    let direct = reqwest::Client::new()
        .get(format!("http://{addr}/index"))
        .header("X-Remote-User", "alice")
        .header("X-Remote-Groups", "staff")
        .header("X-Gatehouse-Assertion", "e30.AAAA")
        .send()
        .await
        .unwrap();
    let j: serde_json::Value = direct.json().await.unwrap();
    assert_eq!(j["identity"], serde_json::Value::Null, "{j}");
}
