//! The apps' own databases for the `[users.sql]` tests: a Django project
//! made by `django-admin startproject` + `migrate` on SQLite, PostgreSQL or
//! MariaDB (a throwaway database on the machine's server, created and
//! dropped by the test), its users made by Django itself; and a TCP relay
//! that a test can cut to take the database away for real.
//!
//! Without python3 + Django (or php) a test skips with a printed reason,
//! except under `CI=true`, where that is a failure.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

fn skip(why: &str) -> Option<()> {
    if ci() {
        panic!("{why}, and CI=true makes that a failure (.ci/run installs it)");
    }
    eprintln!("SKIPPED: {why}");
    None
}

/// Runs python3 with `code`; its stdout, or a panic with stderr.
pub fn python(dir: &Path, code: &str) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(code)
        .current_dir(dir)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python3 failed:\n{code}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `Some(())` when python3 can import `modules`.
pub fn require_python(modules: &[&str]) -> Option<()> {
    let ok = Command::new("python3")
        .arg("-c")
        .arg(format!("import {}", modules.join(", ")))
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Some(())
    } else {
        skip(&format!(
            "python3 with {} is not installed",
            modules.join(", ")
        ))
    }
}

pub fn require_php() -> Option<()> {
    if Command::new("php")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        Some(())
    } else {
        skip("php is not installed")
    }
}

/// A PHP `password_hash()` of `password` with `algo` (e.g. `PASSWORD_BCRYPT`).
pub fn php_hash(password: &str, algo: &str) -> String {
    let out = Command::new("php")
        .arg("-r")
        .arg(format!("echo password_hash($argv[1], {algo});"))
        .arg(password)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
    Mariadb,
}

/// A throwaway database name, unique across parallel tests.
fn db_name() -> String {
    let mut bytes = [0u8; 6];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    format!(
        "gh_sql_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

pub struct Django {
    pub dir: tempfile::TempDir,
    pub db: Db,
    pub name: String,
    /// What Django's DATABASES entry says, as Python.
    engine: String,
}

impl Django {
    /// A new project on `db` with `hashers` (Django's `PASSWORD_HASHERS`,
    /// first one used for new passwords), migrated.
    pub fn create(db: Db, hashers: &[&str]) -> Option<Django> {
        let mut modules = vec!["django"];
        match db {
            Db::Postgres => modules.push("psycopg2"),
            Db::Mariadb => modules.push("pymysql"),
            Db::Sqlite => {}
        }
        require_python(&modules)?;
        let dir = tempfile::tempdir().unwrap();
        let name = db_name();
        let engine = match db {
            Db::Sqlite => format!(
                "{{'ENGINE': 'django.db.backends.sqlite3', 'NAME': {:?}}}",
                dir.path().join("db.sqlite3").display().to_string()
            ),
            Db::Postgres => {
                python(dir.path(), &format!(
                    "import psycopg2\nc = psycopg2.connect(host='127.0.0.1', user='postgres', dbname='postgres')\nc.autocommit = True\nc.cursor().execute('CREATE DATABASE {name}')"
                ));
                format!("{{'ENGINE': 'django.db.backends.postgresql', 'NAME': '{name}', 'USER': 'postgres', 'HOST': '127.0.0.1', 'PORT': '5432'}}")
            }
            Db::Mariadb => {
                python(dir.path(), &format!(
                    "import pymysql\nc = pymysql.connect(host='127.0.0.1', user='root')\nc.cursor().execute('CREATE DATABASE {name} CHARACTER SET utf8mb4')"
                ));
                format!("{{'ENGINE': 'django.db.backends.mysql', 'NAME': '{name}', 'USER': 'root', 'HOST': '127.0.0.1', 'PORT': '3306'}}")
            }
        };
        let app = Django {
            dir,
            db,
            name,
            engine,
        };
        let run = Command::new("python3")
            .args(["-m", "django", "startproject", "legacyapp", "."])
            .current_dir(app.dir.path())
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let settings = app.dir.path().join("legacyapp/settings.py");
        let mut text = std::fs::read_to_string(&settings).unwrap();
        if db == Db::Mariadb {
            text = format!("import pymysql\npymysql.install_as_MySQLdb()\n{text}");
        }
        let hashers: Vec<String> = hashers
            .iter()
            .map(|h| format!("'django.contrib.auth.hashers.{h}'"))
            .collect();
        text.push_str(&format!(
            "\nDATABASES = {{'default': {}}}\nPASSWORD_HASHERS = [{}]\n",
            app.engine,
            hashers.join(", ")
        ));
        std::fs::write(&settings, text).unwrap();
        app.manage(&["migrate", "-v", "0"]);
        Some(app)
    }

    pub fn manage(&self, args: &[&str]) -> String {
        let out = Command::new("python3")
            .arg("manage.py")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "manage.py {args:?}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs Python in `manage.py shell` (models imported as `User`, `Group`).
    pub fn shell(&self, code: &str) -> String {
        let code = format!(
            "from django.contrib.auth.models import User, Group\nfrom django.contrib.auth.hashers import make_password\n{code}"
        );
        self.manage(&["shell", "-v", "0", "-c", &code])
    }

    /// `User.objects.create_user`, with a name, an email and groups.
    pub fn create_user(&self, username: &str, password: &str, groups: &[&str], staff: bool) {
        let groups: Vec<String> = groups.iter().map(|g| format!("{g:?}")).collect();
        self.shell(&format!(
            "u = User.objects.create_user({username:?}, {email:?}, {password:?}, first_name='Test', last_name={username:?}, is_staff={staff})\n\
             for g in [{groups}]:\n    u.groups.add(Group.objects.get_or_create(name=g)[0])\n",
            email = format!("{username}@example.com"),
            staff = if staff { "True" } else { "False" },
            groups = groups.join(", ")
        ));
    }

    /// The `[users.sql]` URL the gateway uses (through `port` if given).
    pub fn url(&self, port: Option<u16>) -> String {
        match self.db {
            Db::Sqlite => format!("sqlite://{}", self.dir.path().join("db.sqlite3").display()),
            Db::Postgres => format!(
                "postgres://postgres@127.0.0.1:{}/{}",
                port.unwrap_or(5432),
                self.name
            ),
            Db::Mariadb => format!(
                "mysql://root@127.0.0.1:{}/{}",
                port.unwrap_or(3306),
                self.name
            ),
        }
    }
}

impl Drop for Django {
    fn drop(&mut self) {
        let code = match self.db {
            Db::Sqlite => return,
            Db::Postgres => format!(
                "import psycopg2\nc = psycopg2.connect(host='127.0.0.1', user='postgres', dbname='postgres')\nc.autocommit = True\nc.cursor().execute('DROP DATABASE IF EXISTS {} WITH (FORCE)')",
                self.name
            ),
            Db::Mariadb => format!(
                "import pymysql\nc = pymysql.connect(host='127.0.0.1', user='root')\nc.cursor().execute('DROP DATABASE IF EXISTS {}')",
                self.name
            ),
        };
        let _ = Command::new("python3").arg("-c").arg(code).output();
    }
}

/// A TCP relay in front of a database: `cut()` closes every connection and
/// refuses new ones (as a stopped server or a dead network does),
/// `restore()` lets them through again.
pub struct Relay {
    pub port: u16,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    pub fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (c, o) = (Arc::clone(&cut), Arc::clone(&open));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if c.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                o.lock()
                    .unwrap()
                    .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Relay { port, cut, open }
    }

    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}
