//! Changing the users file: parse with `toml_edit` so comments, order,
//! formatting and every other user stay byte for byte; validate the result
//! as the gateway would load it; then replace the file atomically (temp file
//! in the same directory, fsync, rename), keeping its permissions.

use std::path::Path;
use toml_edit::{DocumentMut, Item, Table, Value};

use super::UserDb;

/// New details for `add_user`.
#[derive(Debug, Default, Clone)]
pub struct NewUser {
    pub password_hash: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub groups: Vec<String>,
}

/// Applies `change` and writes the file; returns the users as written.
fn edit(
    path: &Path,
    change: impl FnOnce(&mut DocumentMut) -> Result<(), String>,
) -> Result<UserDb, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| format!("{shown} is not valid TOML: {e}"))?;
    change(&mut doc)?;
    let updated = doc.to_string();
    let users = UserDb::parse(path, &updated)
        .map_err(|e| format!("the change would break the file: {e}"))?;
    crate::atomic_file::replace(path, updated.as_bytes())?;
    Ok(users)
}

fn user_table<'a>(doc: &'a mut DocumentMut, user: &str) -> Result<&'a mut Table, String> {
    doc.get_mut(user)
        .and_then(Item::as_table_mut)
        .ok_or_else(|| format!("no user {user:?} in the users file"))
}

/// Sets a value, keeping the spacing and comment around the old one.
fn set_keeping_decor(table: &mut Table, key: &str, value: Value) {
    match table.get_mut(key).and_then(Item::as_value_mut) {
        Some(old) => {
            let decor = old.decor().clone();
            *old = value;
            *old.decor_mut() = decor;
        }
        None => {
            table.insert(key, Item::Value(value));
        }
    }
}

pub fn set_password(path: &Path, user: &str, hash: &str) -> Result<UserDb, String> {
    edit(path, |doc| {
        set_keeping_decor(user_table(doc, user)?, "password", Value::from(hash));
        Ok(())
    })
}

pub fn set_disabled(path: &Path, user: &str, disabled: bool) -> Result<UserDb, String> {
    edit(path, |doc| {
        set_keeping_decor(user_table(doc, user)?, "disabled", Value::from(disabled));
        Ok(())
    })
}

pub fn add_user(path: &Path, user: &str, details: &NewUser) -> Result<UserDb, String> {
    edit(path, |doc| {
        if doc.contains_key(user) {
            return Err(format!("user {user:?} already exists"));
        }
        let mut t = Table::new();
        t.insert("password", toml_edit::value(details.password_hash.as_str()));
        if let Some(n) = &details.name {
            t.insert("name", toml_edit::value(n.as_str()));
        }
        if let Some(e) = &details.email {
            t.insert("email", toml_edit::value(e.as_str()));
        }
        let groups: toml_edit::Array = details.groups.iter().map(String::as_str).collect();
        t.insert("groups", toml_edit::value(groups));
        doc.insert(user, Item::Table(t));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::password::hash_password;

    fn file_with(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn a_new_password_changes_only_that_hash() {
        let (a, b) = (
            hash_password("aaaaaaaaaa").unwrap(),
            hash_password("bbbbbbbbbb").unwrap(),
        );
        let before = format!(
            "# staff accounts\n[alice]\npassword  =  \"{a}\"   # rotated yearly\ngroups = [\"staff\"]\n\n# the other one\n[bob]\npassword = \"{b}\"\n"
        );
        let (_dir, path) = file_with(&before);
        let new = hash_password("cccccccccc").unwrap();
        set_password(&path, "alice", &new).unwrap();
        let after = std::fs::read_to_string(&path).unwrap();
        assert_eq!(after, before.replace(&a, &new));
        assert!(
            UserDb::load(&path)
                .unwrap()
                .get("alice")
                .unwrap()
                .password_hash
                == new
        );
    }

    #[test]
    fn refuses_changes_that_would_break_the_file() {
        let (_dir, path) = file_with(&format!(
            "[alice]\npassword = \"{}\"\n",
            hash_password("aaaaaaaaaa").unwrap()
        ));
        let before = std::fs::read_to_string(&path).unwrap();
        assert!(set_password(&path, "alice", "not-a-hash").is_err());
        assert!(set_password(&path, "nobody", "x")
            .unwrap_err()
            .contains("no user"));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            before,
            "left untouched"
        );
    }

    #[test]
    fn adds_and_disables_users() {
        let (_dir, path) = file_with("# people\n");
        let details = NewUser {
            password_hash: hash_password("dddddddddd").unwrap(),
            name: Some("Dee".into()),
            email: None,
            groups: vec!["kiosk".into()],
        };
        add_user(&path, "dee", &details).unwrap();
        assert!(add_user(&path, "dee", &details).is_err());
        set_disabled(&path, "dee", true).unwrap();
        let db = UserDb::load(&path).unwrap();
        let dee = db.get("dee").unwrap();
        assert!(dee.disabled);
        assert_eq!(&dee.groups[..], ["kiosk"]);
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("# people\n"),
            "comments kept"
        );
    }

    #[cfg(unix)]
    #[test]
    fn keeps_the_files_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let (_dir, path) = file_with(&format!(
            "[alice]\npassword = \"{}\"\n",
            hash_password("aaaaaaaaaa").unwrap()
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        set_password(&path, "alice", &hash_password("eeeeeeeeee").unwrap()).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
