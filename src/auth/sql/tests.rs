//! The record cache against a real SQLite database, with a hand-moved
//! clock: what is read from the database, and when.

use super::*;
use crate::clock::ManualClock;
use sqlx::ConnectOptions;

const MINUTE: Duration = Duration::from_secs(60);

/// A PHP-style `people` table holding `names`, and a backend on it that
/// re-reads a record only hourly (so only look-ups and pruning matter).
async fn backend(dir: &std::path::Path, names: &[&str]) -> (Arc<SqlUsers>, Arc<ManualClock>) {
    let path = dir.join("app.sqlite3");
    let mut db = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    sqlx::query("CREATE TABLE people (username TEXT PRIMARY KEY, password TEXT NOT NULL)")
        .execute(&mut db)
        .await
        .unwrap();
    for name in names {
        sqlx::query("INSERT INTO people VALUES (?, '$2y$10$MUOjwToONkN/5CR60UvDa.x117VI28CA30e58CPk4SPxsRcwuCa/u')")
            .bind(*name)
            .execute(&mut db)
            .await
            .unwrap();
    }
    let settings = SqlSettings {
        url: format!("sqlite://{}", path.display()),
        dialect: Dialect::Sqlite,
        source: Source::Query(
            "SELECT username, password FROM people WHERE username = :username".into(),
        ),
        refresh: Duration::from_secs(3600),
        timeout: Duration::from_secs(5),
    };
    let clock = Arc::new(ManualClock::at(Timestamp::from_millis(1_000_000_000)));
    let users = SqlUsers::new(&settings, clock.clone()).unwrap();
    (users, clock)
}

fn queries(users: &SqlUsers) -> u64 {
    users.queries_ok.load(Ordering::Relaxed)
}

#[tokio::test]
async fn users_without_a_recent_request_are_forgotten_and_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let (users, clock) = backend(dir.path(), &["ann", "bob"]).await;
    assert!(users.sign_in_lookup("ann").await.unwrap().is_some());
    assert!(users.session_lookup("bob").await.unwrap().is_some());
    assert_eq!(queries(&users), 2);

    // ann keeps browsing; bob's last request is 35 minutes old.
    clock.advance(20 * MINUTE);
    assert!(users.session_lookup("ann").await.unwrap().is_some());
    clock.advance(15 * MINUTE);
    assert_eq!(
        queries(&users),
        2,
        "ann's request was served from the cache"
    );

    assert_eq!(users.prune(clock.now(), 30 * MINUTE), 1);
    assert_eq!(users.cache.lock().len(), 1);
    assert!(users.session_lookup("ann").await.unwrap().is_some());
    assert_eq!(queries(&users), 2, "ann's record was kept");
    assert!(users.session_lookup("bob").await.unwrap().is_some());
    assert_eq!(queries(&users), 3, "bob's was dropped, so read again");

    // Nobody left: nothing is kept.
    clock.advance(31 * MINUTE);
    assert_eq!(users.prune(clock.now(), 30 * MINUTE), 2);
    assert!(users.cache.lock().is_empty());
}

#[tokio::test]
async fn wrong_guesses_at_many_names_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..50).map(|i| format!("user{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let (users, clock) = backend(dir.path(), &refs).await;
    // A sign-in reads the row whatever the password turns out to be.
    for name in &refs {
        users.sign_in_lookup(name).await.unwrap();
    }
    for i in 0..50 {
        assert!(users
            .sign_in_lookup(&format!("nobody{i}"))
            .await
            .unwrap()
            .is_none());
    }
    assert_eq!(users.cache.lock().len(), 50, "unknown names are never kept");
    clock.advance(30 * MINUTE);
    assert_eq!(users.prune(clock.now(), 30 * MINUTE), 50);
    assert!(users.cache.lock().is_empty());
}

#[test]
fn the_logged_url_holds_no_credentials() {
    use crate::logging::url_for_log as describe;
    assert_eq!(
        describe("postgres://gatehouse_ro:s3cret@127.0.0.1:5432/app?sslmode=require&password=x"),
        "postgres://127.0.0.1:5432/app"
    );
    assert_eq!(
        describe("mysql://root@localhost/app"),
        "mysql://localhost/app"
    );
    assert_eq!(
        describe("sqlite:///var/lib/app/db.sqlite3"),
        "sqlite:///var/lib/app/db.sqlite3"
    );
}
