//! One result row → a `User`. Databases disagree on types (a MariaDB
//! boolean is a TINYINT, SQLite's is an integer, PostgreSQL's a bool), so
//! each value is read as whatever type fits.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::auth::password::fingerprint;
use crate::auth::User;

/// Text, from a text, binary or integer column; `None` for NULL or a
/// column the query does not have.
fn text(row: &AnyRow, column: &str) -> Option<String> {
    if let Ok(v) = row.try_get::<Option<String>, _>(column) {
        return v;
    }
    if let Ok(v) = row.try_get::<Option<Vec<u8>>, _>(column) {
        return v.and_then(|b| String::from_utf8(b).ok());
    }
    row.try_get::<Option<i64>, _>(column)
        .ok()
        .flatten()
        .map(|n| n.to_string())
}

/// A yes/no column, as a boolean, a number or text; `None` when absent.
fn flag(row: &AnyRow, column: &str) -> Option<bool> {
    if let Ok(v) = row.try_get::<Option<bool>, _>(column) {
        return v;
    }
    let number = row
        .try_get::<Option<i64>, _>(column)
        .ok()
        .flatten()
        .or_else(|| {
            row.try_get::<Option<i32>, _>(column)
                .ok()
                .flatten()
                .map(i64::from)
        })
        .or_else(|| {
            row.try_get::<Option<i16>, _>(column)
                .ok()
                .flatten()
                .map(i64::from)
        });
    if let Some(n) = number {
        return Some(n != 0);
    }
    text(row, column).map(|t| {
        matches!(
            t.trim().to_ascii_lowercase().as_str(),
            "1" | "t" | "true" | "y" | "yes" | "on"
        )
    })
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && !s.chars().any(char::is_control))
}

fn group_list(text: Option<String>) -> Vec<String> {
    text.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty() && !g.chars().any(|c| c.is_control() || c.is_whitespace()))
        .map(str::to_string)
        .collect()
}

fn user(username: String, password: String) -> User {
    User {
        password_fingerprint: fingerprint(&password),
        username,
        password_hash: password,
        name: None,
        email: None,
        groups: Vec::new().into(),
        max_devices: None,
        disabled: false,
        identity_values: Default::default(),
    }
}

/// A row of the Django preset.
pub fn django(row: &AnyRow) -> Option<User> {
    let mut u = user(text(row, "username")?, text(row, "password")?);
    u.email = non_empty(text(row, "email"));
    let first = text(row, "first_name").unwrap_or_default();
    let last = text(row, "last_name").unwrap_or_default();
    u.name = non_empty(Some(format!("{} {}", first.trim(), last.trim())));
    u.disabled = !flag(row, "is_active").unwrap_or(false);
    let mut groups = group_list(text(row, "groups"));
    for (column, group) in [("is_staff", "staff"), ("is_superuser", "superuser")] {
        if flag(row, column) == Some(true) && !groups.iter().any(|g| g == group) {
            groups.push(group.to_string());
        }
    }
    u.groups = groups.into();
    Some(u)
}

/// A row of an operator's query.
pub fn custom(row: &AnyRow) -> Option<User> {
    let mut u = user(text(row, "username")?, text(row, "password")?);
    u.email = non_empty(text(row, "email"));
    u.name = non_empty(text(row, "name"));
    u.groups = group_list(text(row, "groups")).into();
    u.disabled = flag(row, "disabled").unwrap_or(false);
    Some(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_comma_separated_names() {
        assert_eq!(
            group_list(Some(" editors, staff,,bad name".into())),
            ["editors", "staff"]
        );
        assert!(group_list(None).is_empty());
        assert_eq!(non_empty(Some("  ".into())), None);
        assert_eq!(
            non_empty(Some("Ann Lee ".into())).as_deref(),
            Some("Ann Lee")
        );
    }
}
