//! One way to ask for a user, whichever backend holds them: the users file
//! (`file/`), the app's own database (`sql/`), or both (`Users`, the file
//! first). The gateway asks at sign-in, on every request of a session, and
//! for the hash an unknown user is verified against. Never logs a hash.

use std::future::Future;
use std::sync::Arc;

use super::sql::SqlUsers;
use super::{password, User, UserDb};

/// The backend could not answer in time; the text says why (never a
/// password: sqlx's messages carry host and database, not credentials).
#[derive(Debug, Clone)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "users database unavailable: {}", self.0)
    }
}

/// A user, no such user, or no answer.
pub type Lookup = Result<Option<Arc<User>>, Unavailable>;

/// Where users come from.
pub trait UserSource {
    /// At sign-in: the user as the backend holds them now.
    fn sign_in_lookup(&self, name: &str) -> impl Future<Output = Lookup> + Send;

    /// For a signed-in user's request: a record the backend read earlier
    /// will do (it re-reads in its own time); it must not wait on a
    /// database for a user it has already read.
    fn session_lookup(&self, name: &str) -> impl Future<Output = Lookup> + Send;

    /// What an unknown user's password is verified against: a hash of the
    /// backend's typical format and cost, so that an unknown user costs
    /// what a real one does.
    fn dummy_hash(&self) -> String;
}

/// The users file: in memory, swapped whole on reload; answers at once.
impl UserSource for UserDb {
    fn sign_in_lookup(&self, name: &str) -> impl Future<Output = Lookup> + Send {
        std::future::ready(Ok(self.get(name).cloned()))
    }

    fn session_lookup(&self, name: &str) -> impl Future<Output = Lookup> + Send {
        std::future::ready(Ok(self.get(name).cloned()))
    }

    fn dummy_hash(&self) -> String {
        password::dummy_hash().to_string()
    }
}

/// The users of a gateway: the users file's first, so a break-glass admin
/// can live there while the app's users come from its database; then the
/// database's, when `[users.sql]` is set.
pub struct Users<'a> {
    file: &'a UserDb,
    sql: Option<&'a Arc<SqlUsers>>,
}

impl<'a> Users<'a> {
    pub fn new(file: &'a UserDb, sql: Option<&'a Arc<SqlUsers>>) -> Self {
        Users { file, sql }
    }
}

impl UserSource for Users<'_> {
    async fn sign_in_lookup(&self, name: &str) -> Lookup {
        match (self.file.get(name), self.sql) {
            (Some(u), _) => Ok(Some(Arc::clone(u))),
            (None, Some(sql)) => sql.sign_in_lookup(name).await,
            (None, None) => Ok(None),
        }
    }

    async fn session_lookup(&self, name: &str) -> Lookup {
        match (self.file.get(name), self.sql) {
            (Some(u), _) => Ok(Some(Arc::clone(u))),
            (None, Some(sql)) => sql.session_lookup(name).await,
            (None, None) => Ok(None),
        }
    }

    /// The database's when there is one: most names tried that the file
    /// does not hold would be the app's users.
    fn dummy_hash(&self) -> String {
        match self.sql {
            Some(sql) => sql.dummy_hash(),
            None => self.file.dummy_hash(),
        }
    }
}
