//! `[users]`: the users file, the app's database (`[users.sql]`), or both
//! (the file is consulted first).

use std::path::{Path, PathBuf};

use super::error::{ErrorSink, KeyPath};
use super::file::{SqlSection, UsersSection};
use super::settings::SqlSettings;
use super::validate::{duration_or, relative_to};
use crate::auth::sql::query::{check_query, check_table};
use crate::auth::sql::{Dialect, Source};

pub(super) fn validate_users(
    path: &Path,
    users: UsersSection,
    key: &KeyPath,
    sink: &mut ErrorSink,
) -> (Option<PathBuf>, Option<SqlSettings>) {
    if users.file.is_none() && users.sql.is_none() {
        sink.push(
            &key.key("file"),
            "expected users.file, [users.sql], or both",
        );
    }
    let file = users.file.map(|f| relative_to(path, &f));
    // Named here, at its key, rather than later by the users file reader,
    // which knows neither the config file nor the line.
    if let Some(f) = &file {
        if let Err(e) = std::fs::metadata(f) {
            sink.push(
                &key.key("file"),
                format!("cannot read the users file {}: {e}", f.display()),
            );
        }
    }
    let sql = users.sql.map(|s| validate_sql(s, &key.key("sql"), sink));
    (file, sql)
}

fn validate_sql(s: SqlSection, key: &KeyPath, sink: &mut ErrorSink) -> SqlSettings {
    let dialect = Dialect::of_url(&s.url).unwrap_or_else(|| {
        sink.push(
            &key.key("url"),
            "expected a postgres://, mysql:// (MariaDB too) or sqlite:// URL",
        );
        Dialect::Postgres
    });
    let source = match (s.preset.as_deref(), s.query) {
        (Some("django"), None) => {
            let table = s.table.unwrap_or_else(|| "auth_user".into());
            if let Err(msg) = check_table(&table) {
                sink.push(&key.key("table"), msg);
            }
            Source::Django { table }
        }
        (Some("django"), Some(_)) => {
            sink.push(
                &key.key("query"),
                "expected either preset or query, not both",
            );
            Source::Query(String::new())
        }
        (Some(other), _) => {
            sink.push(
                &key.key("preset"),
                format!("expected \"django\" (or a `query` instead), found {other:?}"),
            );
            Source::Query(String::new())
        }
        (None, Some(q)) => {
            if let Err(msg) = check_query(&q) {
                sink.push(&key.key("query"), msg);
            }
            if s.table.is_some() {
                sink.push(
                    &key.key("table"),
                    "table goes with preset = \"django\"; a query names its own",
                );
            }
            Source::Query(q.trim().trim_end_matches(';').to_string())
        }
        (None, None) => {
            sink.push(
                &key.key("preset"),
                "expected preset = \"django\" or a `query` with :username",
            );
            Source::Query(String::new())
        }
    };
    let refresh = duration_or(sink, &key.key("refresh"), s.refresh, 30);
    if refresh.is_zero() {
        sink.push(&key.key("refresh"), "expected at least \"1s\"");
    }
    let timeout = duration_or(sink, &key.key("timeout"), s.timeout, 5);
    if timeout.is_zero() || timeout > std::time::Duration::from_secs(60) {
        sink.push(&key.key("timeout"), "expected from \"1ms\" to \"60s\"");
    }
    SqlSettings {
        url: s.url,
        dialect,
        source,
        refresh,
        timeout,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use std::path::Path;

    const BASE: &str =
        "[[route]]\npath_prefix = \"/\"\nupstream = \"127.0.0.1:9\"\naccess = \"login\"\n";

    fn errors(users: &str) -> String {
        match parse(Path::new("g.toml"), &format!("{BASE}{users}")) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_django_database_alone_is_enough() {
        let s = parse(
            Path::new("g.toml"),
            &format!("{BASE}[users.sql]\nurl = \"postgres://ro:secret@127.0.0.1/app\"\npreset = \"django\"\nrefresh = \"1s\"\n"),
        )
        .unwrap();
        let sql = s.users_sql.unwrap();
        assert_eq!(sql.refresh, std::time::Duration::from_secs(1));
        assert!(s.users_file.is_none());
        assert!(
            !format!("{sql:?}").contains("secret"),
            "the URL's password is never printed"
        );
    }

    #[test]
    fn mistakes_name_file_line_and_key() {
        let e = errors("[users.sql]\nurl = \"oracle://x\"\npreset = \"django\"\n");
        assert!(e.contains("g.toml:6: users.sql.url"), "{e}");
        let e = errors("[users.sql]\nurl = \"mysql://x\"\nquery = \"SELECT name FROM t WHERE n = :username\"\n");
        assert!(
            e.contains("users.sql.query") && e.contains("`username`"),
            "{e}"
        );
        let e = errors("[users.sql]\nurl = \"mysql://x\"\npreset = \"rails\"\n");
        assert!(e.contains("users.sql.preset"), "{e}");
        let e =
            errors("[users.sql]\nurl = \"mysql://x\"\npreset = \"django\"\ntable = \"x; drop\"\n");
        assert!(e.contains("users.sql.table"), "{e}");
        let e = errors("[users]\n");
        assert!(e.contains("users.file"), "{e}");
    }
}
