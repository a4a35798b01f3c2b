//! End to end: `[users.sql]` in front of real apps' databases. Django
//! projects made by the test on SQLite, PostgreSQL and MariaDB, their users
//! made by Django; a PHP-style table with `password_hash()` output. Users
//! sign in with the passwords the app gave them, a password changed or an
//! account deactivated in the app ends the gateway session within
//! `refresh`, and the database going away stops sign-ins only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::app_db::{php_hash, python, require_php, require_python, Db, Django, Relay};
use common::{config, Browser, Gateway, Upstream};
use std::time::{Duration, Instant};

/// Fast failures and no throttling: these tests send many wrong passwords.
const LOGIN: &str = "\n[login]\nmax_failures = 1000\nfailure_delay = \"0s\"\n";

fn sql_config(upstream: &Upstream, url: &str, source: &str) -> String {
    config(
        upstream.addr,
        &format!(
            "\n[users.sql]\nurl = {url:?}\n{source}\nrefresh = \"1s\"\ntimeout = \"2s\"\n{LOGIN}"
        ),
    )
}

/// Polls `page` until it is sent to the login page, within `limit`.
async fn ended_within(browser: &mut Browser, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        let r = browser.page("/reports").await;
        if r.status == 303 {
            return r.location().to_string();
        }
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            start.elapsed() < limit,
            "the session did not end within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sql_queries(gw: &Gateway) -> u64 {
    let (_, metrics) = gw.admin("GET", "/metrics", None).await;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("gatehouse_users_sql_queries_total{result=\"ok\"} "))
        .expect("the SQL query counter is exported")
        .parse()
        .unwrap()
}

/// The whole Django story on one database.
async fn django_story(db: Db) {
    let Some(app) = Django::create(db, &["PBKDF2PasswordHasher"]) else {
        return;
    };
    app.create_user("ann", "ann-django-pw-1", &["editors"], true);
    app.create_user("ned", "ned-django-pw-1", &[], false);
    app.shell("User.objects.filter(username='ned').update(is_active=False)");
    app.shell("u = User.objects.create_user('sam', 'sam@example.com', 'sam-django-pw-1'); u.is_superuser = True; u.save()");

    let upstream = Upstream::start();
    let gw = Gateway::start(&sql_config(
        &upstream,
        &app.url(None),
        "preset = \"django\"",
    ));

    // Signs in with the Django password; the app learns who, with groups.
    let mut ann = gw.signed_in("ann", "ann-django-pw-1").await;
    assert_eq!(ann.page("/reports").await.status, 200);
    let seen = upstream.last();
    assert_eq!(seen.header("x-remote-user"), Some("ann"));
    assert_eq!(seen.header("x-remote-email"), Some("ann@example.com"));
    assert_eq!(seen.header("x-remote-name"), Some("Test ann"));
    let groups = seen.header("x-remote-groups").unwrap().to_string();
    assert!(groups.split(',').any(|g| g == "editors"), "{groups}");
    assert!(groups.split(',').any(|g| g == "staff"), "{groups}");
    let sam = gw.signed_in("sam", "sam-django-pw-1").await;
    drop(sam);
    assert!(upstream
        .requests()
        .iter()
        .all(|r| r.header("x-remote-user") != Some("sam")
            || r.header("x-remote-groups")
                .is_some_and(|g| g.contains("superuser"))));

    // A wrong password, an unknown user, an inactive one, and SQL
    // metacharacters all look the same.
    let wrong = Browser::new(&gw.url("/"))
        .login("ann", "not-her-password", "/")
        .await;
    assert_eq!(wrong.status, 401);
    for user in [
        "nobody",
        "ned",
        "' OR 1=1 --",
        "ann' --",
        "\"ann\"",
        "ann\\",
        "ann; DROP TABLE auth_user",
    ] {
        let pw = if user == "ned" {
            "ned-django-pw-1"
        } else {
            "ann-django-pw-1"
        };
        let r = Browser::new(&gw.url("/")).login(user, pw, "/").await;
        assert_eq!(r.status, wrong.status, "{user}");
        assert!(
            r.body.contains("Incorrect username or password")
                == wrong.body.contains("Incorrect username or password"),
            "{user}"
        );
    }
    assert_eq!(
        app.shell("print(User.objects.count())").trim(),
        "3",
        "nothing was dropped"
    );

    // No query per proxied request: at most one per user per refresh.
    let before = sql_queries(&gw).await;
    let start = Instant::now();
    let mut requests = 0;
    while start.elapsed() < Duration::from_millis(2500) {
        assert_eq!(ann.page("/reports").await.status, 200);
        requests += 1;
    }
    let queries = sql_queries(&gw).await - before;
    assert!(requests >= 50, "{requests} requests");
    assert!(
        queries <= 4,
        "{queries} queries for {requests} requests in 2.5 s with refresh = 1s"
    );

    // The password changed in Django ends the gateway session.
    app.shell("u = User.objects.get(username='ann'); u.set_password('ann-new-pw-22'); u.save()");
    let location = ended_within(&mut ann, Duration::from_secs(5)).await;
    assert!(location.ends_with("reason=password"), "{location}");
    assert_eq!(gw.login_status("ann", "ann-django-pw-1").await, 401);

    // Deactivated in Django: the session ends as revoked, sign-in refused.
    let mut ann = gw.signed_in("ann", "ann-new-pw-22").await;
    app.shell("User.objects.filter(username='ann').update(is_active=False)");
    let location = ended_within(&mut ann, Duration::from_secs(5)).await;
    assert!(location.ends_with("reason=revoked"), "{location}");
    assert_eq!(gw.login_status("ann", "ann-new-pw-22").await, 401);

    // With an SQL backend the password page belongs to the app.
    let mut b = gw.signed_in("sam", "sam-django-pw-1").await;
    assert_eq!(b.page("/.gatehouse/password").await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_on_sqlite() {
    django_story(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_on_postgresql() {
    django_story(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_on_mariadb() {
    django_story(Db::Mariadb).await;
}

/// Django set to Argon2 and to BCryptSHA256 (when those packages install):
/// passwords it writes in those formats sign in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_argon2_and_bcrypt_sha256_hashers() {
    require_python(&["argon2", "bcrypt"]);
    let Some(app) = Django::create(
        Db::Postgres,
        &[
            "Argon2PasswordHasher",
            "BCryptSHA256PasswordHasher",
            "PBKDF2PasswordHasher",
        ],
    ) else {
        return;
    };
    app.create_user("ada", "ada-argon2-pw-1", &[], false);
    app.shell("u = User.objects.create_user('bea', None, 'x'); u.password = make_password('bea-bcrypt-pw-1', hasher='bcrypt_sha256'); u.save()");
    let stored = app.shell("print(User.objects.get(username='ada').password.split('$')[0], User.objects.get(username='bea').password.split('$')[0])");
    assert_eq!(stored.trim(), "argon2 bcrypt_sha256");
    let upstream = Upstream::start();
    let gw = Gateway::start(&sql_config(
        &upstream,
        &app.url(None),
        "preset = \"django\"",
    ));
    gw.signed_in("ada", "ada-argon2-pw-1").await;
    gw.signed_in("bea", "bea-bcrypt-pw-1").await;
    assert_eq!(gw.login_status("ada", "bea-bcrypt-pw-1").await, 401);
}

/// A PHP app's table: `password_hash()` output ($2y$ and argon2id) in
/// MariaDB, read through a custom query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn php_password_hash_in_mariadb_with_a_custom_query() {
    if require_php().is_none() || require_python(&["pymysql"]).is_none() {
        return;
    }
    let Some(app) = Django::create(Db::Mariadb, &["PBKDF2PasswordHasher"]) else {
        return;
    };
    let bcrypt = php_hash("php-bcrypt-pw-1", "PASSWORD_DEFAULT");
    let argon = php_hash("php-argon-pw-1", "PASSWORD_ARGON2ID");
    assert!(bcrypt.starts_with("$2y$") && argon.starts_with("$argon2id$"));
    python(app.dir.path(), &format!(
        "import pymysql\nc = pymysql.connect(host='127.0.0.1', user='root', database='{}', autocommit=True)\ncur = c.cursor()\n\
         cur.execute('CREATE TABLE members (login VARCHAR(50), pass VARCHAR(255), mail VARCHAR(100), full_name VARCHAR(100), roles VARCHAR(100), banned TINYINT(1))')\n\
         cur.executemany('INSERT INTO members VALUES (%s, %s, %s, %s, %s, %s)', [('pia', {bcrypt:?}, 'pia@example.com', 'Pia P', 'admins,editors', 0), ('pat', {argon:?}, None, None, None, 0), ('pep', {bcrypt:?}, None, None, None, 1)])",
        app.name
    ));
    let upstream = Upstream::start();
    let query = "query = \"SELECT login AS username, pass AS password, mail AS email, full_name AS name, roles AS `groups`, CAST(banned AS SIGNED) AS disabled FROM members WHERE login = :username\"";
    let gw = Gateway::start(&sql_config(&upstream, &app.url(None), query));
    let mut pia = gw.signed_in("pia", "php-bcrypt-pw-1").await;
    assert_eq!(
        pia.page("/admin/").await.status,
        200,
        "admins reach the admin route"
    );
    let seen = upstream.last();
    assert_eq!(seen.header("x-remote-groups"), Some("admins,editors"));
    assert_eq!(seen.header("x-remote-name"), Some("Pia P"));
    gw.signed_in("pat", "php-argon-pw-1").await;
    assert_eq!(
        gw.login_status("pep", "php-bcrypt-pw-1").await,
        401,
        "disabled"
    );
    assert_eq!(gw.login_status("pat", "php-bcrypt-pw-1").await, 401);
}

/// The database goes away (the connection cut, as when it stops): sign-ins
/// get the unavailable page, signed-in users keep browsing, `/ready` says
/// so; back again, everything works without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_going_away_stops_sign_ins_only() {
    let Some(app) = Django::create(Db::Postgres, &["PBKDF2PasswordHasher"]) else {
        return;
    };
    app.create_user("ann", "ann-django-pw-1", &[], false);
    app.create_user("ben", "ben-django-pw-1", &[], false);
    let relay = Relay::start("127.0.0.1:5432".parse().unwrap());
    let upstream = Upstream::start();
    let gw = Gateway::start(&sql_config(
        &upstream,
        &app.url(Some(relay.port)),
        "preset = \"django\"",
    ));
    let mut ann = gw.signed_in("ann", "ann-django-pw-1").await;
    assert_eq!(gw.admin("GET", "/ready", None).await.0, 200);

    relay.cut();
    let start = Instant::now();
    let r = Browser::new(&gw.url("/"))
        .login("ben", "ben-django-pw-1", "/")
        .await;
    assert_eq!(r.status, 503, "{}", gw.log());
    assert!(r.body.contains("unavailable"), "{}", r.body);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "answered within the query timeout"
    );
    // Past `refresh`, the failed re-read keeps the record last read.
    for _ in 0..15 {
        assert_eq!(ann.page("/reports").await.status, 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = gw.admin("GET", "/ready", None).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("users database"), "{body}");
    // The users file is consulted first: its break-glass admin still signs in.
    assert_eq!(gw.login_status("alice", common::ALICE_PASSWORD).await, 303);

    relay.restore();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = gw.login_status("ben", "ben-django-pw-1").await;
        if status == 303 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sign-ins did not come back: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(gw.admin("GET", "/ready", None).await.0, 200);
    assert_eq!(ann.page("/reports").await.status, 200);
    let log = gw.log();
    let outage_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("gatehouse::outage") && l.contains("users database"))
        .collect();
    assert_eq!(outage_lines.len(), 2, "one line down, one back:\n{log}");
    assert!(
        outage_lines[0].contains("ERROR") && outage_lines[0].contains("is unreachable"),
        "{}",
        outage_lines[0]
    );
    assert!(
        outage_lines[1].contains("is back after") && outage_lines[1].contains("login"),
        "the refused sign-ins are counted: {}",
        outage_lines[1]
    );
    assert!(
        !log.contains(" WARN gatehouse::gateway::pages::login"),
        "{log}"
    );
}

/// `check-config --connect` runs the query once: fine against a real
/// Django database, `FILE:LINE: users.sql.url: …` when nothing answers.
#[test]
fn check_config_connects_and_names_the_url_line() {
    let Some(app) = Django::create(Db::Sqlite, &["PBKDF2PasswordHasher"]) else {
        return;
    };
    let run = |url: &str| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gatehouse.toml");
        let text = format!(
            "[[route]]\npath_prefix = \"/\"\nupstream = \"127.0.0.1:9\"\naccess = \"login\"\n\n[users.sql]\nurl = {url:?}\npreset = \"django\"\ntimeout = \"2s\"\n"
        );
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new(common::binary())
            .args(["check-config", "--connect", "-c"])
            .arg(&path)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            path,
        )
    };
    let (code, out, err, _) = run(&app.url(None));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("users database answered"), "{out}");
    let unused = common::free_port();
    let (code, _, err, path) = run(&format!("postgres://postgres@127.0.0.1:{unused}/nothing"));
    assert_eq!(code, Some(1));
    assert!(
        err.contains(&format!("{}:7: users.sql.url: ", path.display())),
        "{err}"
    );
}
