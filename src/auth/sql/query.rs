//! The SQL the users backend runs: Django's preset for each dialect, or the
//! operator's own query with its `:username` turned into the driver's
//! placeholder. The user name is only ever a bound parameter. Pure text.

/// Which database the URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    MySql,
    Sqlite,
}

impl Dialect {
    /// From the URL's scheme; `None` for any other.
    pub fn of_url(url: &str) -> Option<Dialect> {
        let scheme = url.split_once(':')?.0.to_ascii_lowercase();
        match scheme.as_str() {
            "postgres" | "postgresql" => Some(Dialect::Postgres),
            "mysql" | "mariadb" => Some(Dialect::MySql),
            "sqlite" => Some(Dialect::Sqlite),
            _ => None,
        }
    }

    fn placeholder(self) -> &'static str {
        match self {
            Dialect::Postgres => "$1",
            Dialect::MySql | Dialect::Sqlite => "?",
        }
    }
}

/// Where the users come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Django's `auth_user` (or a custom user model's table), its groups,
    /// `is_active`, `is_staff`, `is_superuser`.
    Django { table: String },
    /// The operator's query: one `:username`, columns `username`,
    /// `password`, and optionally `email`, `name`, `groups`, `disabled`.
    Query(String),
}

/// The statement to prepare for `source` on `dialect`.
pub fn statement(dialect: Dialect, source: &Source) -> String {
    match source {
        Source::Django { table } => django(dialect, table),
        Source::Query(q) => bind_username(q, dialect.placeholder()),
    }
}

fn django(dialect: Dialect, table: &str) -> String {
    let groups = match dialect {
        Dialect::Postgres => "string_agg(g.name, ',')",
        Dialect::MySql => "GROUP_CONCAT(g.name SEPARATOR ',')",
        Dialect::Sqlite => "group_concat(g.name, ',')",
    };
    let p = dialect.placeholder();
    // sqlx's Any driver reads neither SQLite's BOOL nor MySQL's TINYINT(1):
    // the flags are read as integers there.
    let flag = |column: &str| match dialect {
        Dialect::Postgres => format!("u.{column}"),
        Dialect::MySql => format!("CAST(u.{column} AS SIGNED)"),
        Dialect::Sqlite => format!("CAST(u.{column} AS INTEGER)"),
    };
    let (active, staff, superuser) = (flag("is_active"), flag("is_staff"), flag("is_superuser"));
    // Django names a user model's group table `<table>_groups`, with the
    // user's column `user_id` (for a model called User).
    format!(
        "SELECT u.username AS username, u.password AS password, u.email AS email, \
         u.first_name AS first_name, u.last_name AS last_name, {active} AS is_active, \
         {staff} AS is_staff, {superuser} AS is_superuser, \
         (SELECT {groups} FROM auth_group g JOIN {table}_groups ug ON ug.group_id = g.id \
         WHERE ug.user_id = u.id) AS groups \
         FROM {table} u WHERE u.username = {p}"
    )
}

/// Where `:username` stands in `query`, as byte ranges (a `::` cast or a
/// longer name such as `:username2` is not it).
fn username_params(query: &str) -> Vec<std::ops::Range<usize>> {
    const NAME: &str = ":username";
    let bytes = query.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(pos) = query.get(from..).and_then(|rest| rest.find(NAME)) {
        let start = from + pos;
        let end = start + NAME.len();
        let after_ok = bytes
            .get(end)
            .is_none_or(|b| !(b.is_ascii_alphanumeric() || *b == b'_'));
        let before_ok = start == 0 || bytes.get(start - 1) != Some(&b':');
        if after_ok && before_ok {
            found.push(start..end);
        }
        from = end;
    }
    found
}

fn bind_username(query: &str, placeholder: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut last = 0;
    for r in username_params(query) {
        out.push_str(query.get(last..r.start).unwrap_or(""));
        out.push_str(placeholder);
        last = r.end;
    }
    out.push_str(query.get(last..).unwrap_or(""));
    out
}

/// What `check-config` can tell of a query without a database: a single
/// statement with exactly one `:username` that names the columns needed.
pub fn check_query(query: &str) -> Result<(), String> {
    let q = query.trim().trim_end_matches(';');
    if !q.get(..6).is_some_and(|s| s.eq_ignore_ascii_case("select")) {
        return Err("expected a SELECT statement".into());
    }
    if q.contains(';') {
        return Err("expected a single statement (no `;` inside)".into());
    }
    match username_params(q).len() {
        1 => {}
        0 => return Err("expected the parameter `:username` (the name typed at sign-in)".into()),
        n => return Err(format!("expected `:username` once, found it {n} times")),
    }
    // The parameter itself does not name a column.
    let lower = bind_username(q, "?").to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    for column in ["username", "password"] {
        if !words.contains(&column) {
            return Err(format!(
                "expected a column named `{column}` (use `AS {column}` to name it)"
            ));
        }
    }
    Ok(())
}

/// A table name fit to be written into SQL: letters, digits, `_`, and one
/// `.` for a schema.
pub fn check_table(table: &str) -> Result<(), String> {
    let ok = !table.is_empty()
        && table.len() <= 64
        && table.split('.').count() <= 2
        && table.split('.').all(|part| {
            part.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected a table name like \"accounts_user\" (letters, digits, `_`), found {table:?}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_username_becomes_the_drivers_placeholder() {
        let q = "SELECT login AS username, hash AS password FROM users WHERE login = :username AND kind::text = 'x'";
        assert_eq!(
            statement(Dialect::Postgres, &Source::Query(q.into())),
            "SELECT login AS username, hash AS password FROM users WHERE login = $1 AND kind::text = 'x'"
        );
        assert!(statement(Dialect::MySql, &Source::Query(q.into())).contains("login = ? AND"));
        assert_eq!(
            bind_username("WHERE a = :username2 OR b = :username", "?"),
            "WHERE a = :username2 OR b = ?"
        );
    }

    #[test]
    fn the_django_preset_binds_the_name_and_reads_the_groups() {
        let pg = statement(
            Dialect::Postgres,
            &Source::Django {
                table: "auth_user".into(),
            },
        );
        assert!(
            pg.ends_with("FROM auth_user u WHERE u.username = $1"),
            "{pg}"
        );
        assert!(pg.contains("JOIN auth_user_groups ug"), "{pg}");
        let my = statement(
            Dialect::MySql,
            &Source::Django {
                table: "accounts_user".into(),
            },
        );
        assert!(
            my.contains("GROUP_CONCAT") && my.ends_with("u.username = ?"),
            "{my}"
        );
    }

    #[test]
    fn queries_are_checked_without_a_database() {
        let good = "SELECT login AS username, pw AS password FROM t WHERE login = :username";
        assert_eq!(check_query(good), Ok(()));
        assert_eq!(check_query(&format!("{good};")), Ok(()));
        assert!(check_query("DELETE FROM t WHERE a = :username").is_err());
        assert!(check_query("SELECT username, password FROM t")
            .unwrap_err()
            .contains(":username"));
        assert!(check_query(
            "SELECT username, password FROM t WHERE a = :username OR b = :username"
        )
        .is_err());
        assert!(
            check_query("SELECT login, pw AS password FROM t WHERE a = :username")
                .unwrap_err()
                .contains("`username`")
        );
        assert!(
            check_query("SELECT username, password FROM t WHERE a = :username; DROP TABLE t")
                .is_err()
        );
    }

    #[test]
    fn table_names_cannot_carry_sql() {
        assert!(check_table("auth_user").is_ok());
        assert!(check_table("app.accounts_user").is_ok());
        for bad in ["", "users; DROP TABLE x", "a b", "1abc", "a.b.c", "users--"] {
            assert!(check_table(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dialects_from_url_schemes() {
        assert_eq!(
            Dialect::of_url("postgres://u@h/db"),
            Some(Dialect::Postgres)
        );
        assert_eq!(
            Dialect::of_url("postgresql://u@h/db"),
            Some(Dialect::Postgres)
        );
        assert_eq!(
            Dialect::of_url("mysql://root@127.0.0.1/app"),
            Some(Dialect::MySql)
        );
        assert_eq!(
            Dialect::of_url("sqlite:///srv/app/db.sqlite3"),
            Some(Dialect::Sqlite)
        );
        assert_eq!(Dialect::of_url("redis://x"), None);
        assert_eq!(Dialect::of_url("nonsense"), None);
    }
}
