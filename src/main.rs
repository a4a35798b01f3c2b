//! The command line. Parses arguments and calls the library; nothing else.

use clap::{Parser, Subcommand, ValueEnum};
use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use gatehouse::auth::password::hash_password;
use gatehouse::logging::LogOptions;

// Pingora allocates on every request; glibc's malloc spent about 15% of a
// proxied request in the profile, mimalloc a fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use gatehouse::server::{self, ProcessFlags};

#[derive(Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "A login gateway in front of web apps"
)]
struct Cli {
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    log_format: LogFormat,
    /// Let Pingora and the other libraries log at any level RUST_LOG asks
    /// for (also GATEHOUSE_LOG_UNSAFE=1). Their debug and trace lines print
    /// session cookies, identity assertions and passwords: debugging only.
    #[arg(long, global = true)]
    log_unsafe: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Run {
        /// The configuration file.
        #[arg(short, long, default_value = "config/gatehouse.toml")]
        config: PathBuf,
        /// Run in the background (Pingora's -d).
        #[arg(short, long)]
        daemon: bool,
        /// Take over the listeners of a running instance (Pingora's -u).
        #[arg(short, long)]
        upgrade: bool,
        /// Check that the server can start, then exit (Pingora's -t).
        #[arg(short, long)]
        test: bool,
    },
    /// Validate a configuration file and its users file; exit 1 with the errors.
    CheckConfig {
        #[arg(short, long, default_value = "config/gatehouse.toml")]
        config: PathBuf,
        /// Also connect to the `[users.sql]` database and run its query once
        /// (with a user name nobody has).
        #[arg(long)]
        connect: bool,
    },
    /// Read a password (prompt, or one line of stdin) and print its argon2id hash.
    HashPassword {
        /// Warn under this config's login.min_password_length (default: 10).
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Change the users file (atomically, comments and formatting kept).
    /// Only the file: users from `[users.sql]` are managed in the app.
    Users {
        /// The users file.
        #[arg(short, long, default_value = "config/users.toml", global = true)]
        file: PathBuf,
        #[command(subcommand)]
        action: UsersAction,
    },
    /// List and revoke sessions through the admin API.
    Sessions {
        /// The admin API [default: the config's server.admin_listen, else
        /// http://127.0.0.1:9091].
        #[arg(long, global = true)]
        admin: Option<String>,
        /// A file holding the admin bearer token (or set
        /// GATEHOUSE_ADMIN_TOKEN; default: the config's server.admin_token_file).
        #[arg(long, global = true)]
        token_file: Option<PathBuf>,
        /// The gateway's configuration file: where its admin API listens and
        /// the token it wants.
        #[arg(short, long, global = true)]
        config: Option<PathBuf>,
        /// Print the API's JSON instead of a table.
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        action: SessionsAction,
    },
    /// Run the gateway in front of a built-in demo app, with a demo user.
    Demo {
        /// Where the gateway listens.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Where the demo app listens.
        #[arg(long, default_value = "127.0.0.1:8081")]
        app_listen: SocketAddr,
        /// Where the admin API listens (for `gatehouse sessions`).
        #[arg(long, default_value = "127.0.0.1:9091")]
        admin_listen: SocketAddr,
    },
}

#[derive(Subcommand)]
enum UsersAction {
    /// Add a user; the password is prompted for (or read from stdin).
    Add {
        user: String,
        /// Display name, sent in X-Remote-Name.
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// A group (repeat for several).
        #[arg(long = "group")]
        groups: Vec<String>,
    },
    /// Set a user's password; every session of theirs ends at the next reload.
    Passwd { user: String },
    /// Disable a user: logins refused, sessions ended at the next reload.
    Disable { user: String },
    /// Enable a disabled user again.
    Enable { user: String },
}

#[derive(Subcommand)]
enum SessionsAction {
    /// Show sessions, most recently used first.
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// End one session (by the ID `list` shows).
    Revoke {
        id: String,
        #[arg(long)]
        dry_run: bool,
    },
    /// End every session of one user.
    RevokeUser {
        user: String,
        #[arg(long)]
        dry_run: bool,
    },
    /// End every session.
    RevokeAll {
        #[arg(long)]
        dry_run: bool,
    },
}

fn sessions(
    admin: Option<String>,
    token_file: Option<PathBuf>,
    config: Option<PathBuf>,
    json: bool,
    action: SessionsAction,
) -> Result<(), String> {
    use gatehouse::admin::client::{call, from_config};
    let (config_admin, config_token) = match config {
        Some(path) => {
            let (base, token) = from_config(&path)?;
            (Some(base), token)
        }
        None => (None, None),
    };
    let admin = admin
        .or(config_admin)
        .unwrap_or_else(|| "http://127.0.0.1:9091".to_string());
    let admin = admin.as_str();
    let token = match token_file {
        Some(f) => Some(
            std::fs::read_to_string(&f)
                .map_err(|e| format!("cannot read {}: {e}", f.display()))?
                .trim()
                .to_string(),
        ),
        None => std::env::var("GATEHOUSE_ADMIN_TOKEN").ok().or(config_token),
    };
    // percent-encoding for a path segment or query value (a space is %20, not +)
    let enc = |s: &str| -> String {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let dry = |d: bool| if d { "?dry_run=true" } else { "" };
    let (method, path) = match &action {
        SessionsAction::List { user: Some(u) } => ("GET", format!("/api/sessions?user={}", enc(u))),
        SessionsAction::List { user: None } => ("GET", "/api/sessions".to_string()),
        SessionsAction::Revoke { id, dry_run } => (
            "DELETE",
            format!("/api/sessions/{}{}", enc(id), dry(*dry_run)),
        ),
        SessionsAction::RevokeUser { user, dry_run } => (
            "POST",
            format!("/api/users/{}/revoke{}", enc(user), dry(*dry_run)),
        ),
        SessionsAction::RevokeAll { dry_run } => {
            ("POST", format!("/api/revoke-all{}", dry(*dry_run)))
        }
    };
    let reply = call(admin, method, &path, token.as_deref())?;
    let value: serde_json::Value = serde_json::from_str(&reply.body).map_err(|_| {
        format!(
            "the admin API answered {}: {}",
            reply.status,
            reply.body.trim()
        )
    })?;
    if reply.status >= 400 {
        return Err(format!(
            "the admin API answered {}: {}",
            reply.status,
            value["message"].as_str().unwrap_or(reply.body.trim())
        ));
    }
    if json {
        println!("{value}");
        return Ok(());
    }
    match action {
        SessionsAction::List { .. } => print!("{}", gatehouse::admin::table::sessions(&value)),
        _ => {
            let n = value["ended"].as_u64().unwrap_or(0);
            let verb = if value["dry_run"].as_bool() == Some(true) {
                "would end"
            } else {
                "ended"
            };
            println!("{verb} {n} session{}", if n == 1 { "" } else { "s" });
        }
    }
    Ok(())
}

fn users(file: &Path, action: UsersAction) -> Result<(), String> {
    use gatehouse::auth::file::edit::{add_user, set_disabled, set_password, NewUser};
    let (user, done) = match action {
        UsersAction::Add {
            user,
            name,
            email,
            groups,
        } => {
            let details = NewUser {
                password_hash: hash_password(&read_password()?)?,
                name,
                email,
                groups,
            };
            add_user(file, &user, &details)?;
            (user, "added")
        }
        UsersAction::Passwd { user } => {
            set_password(file, &user, &hash_password(&read_password()?)?)?;
            (user, "password changed")
        }
        UsersAction::Disable { user } => {
            set_disabled(file, &user, true)?;
            (user, "disabled")
        }
        UsersAction::Enable { user } => {
            set_disabled(file, &user, false)?;
            (user, "enabled")
        }
    };
    println!("{user}: {done}. A running gateway applies it on reload (systemctl reload gatehouse, or SIGHUP).");
    Ok(())
}

fn log_options(cli: &Cli) -> LogOptions {
    LogOptions {
        json: matches!(cli.log_format, LogFormat::Json),
        unsafe_framework: cli.log_unsafe || LogOptions::unsafe_from_env(),
    }
}

fn read_password() -> Result<String, String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?;
        let second = rpassword::prompt_password("Again: ").map_err(|e| e.to_string())?;
        if first != second {
            return Err("the two passwords differ".into());
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if password.is_empty() {
        return Err("the password is empty".into());
    }
    Ok(password)
}

fn hash_password_command(config: Option<&Path>) -> Result<(), String> {
    let min_length = match config {
        Some(path) => {
            gatehouse::config::load(path)
                .map_err(|e| e.to_string())?
                .login
                .min_password_length
        }
        None => gatehouse::config::DEFAULT_MIN_PASSWORD_LENGTH,
    };
    let password = read_password()?;
    if let Some(warning) = gatehouse::auth::password::length_warning(&password, min_length) {
        eprintln!("{warning}");
    }
    println!("{}", hash_password(&password)?);
    Ok(())
}

/// `check-config`'s one-line summary: "3 routes, 1 user, at most 1 device
/// per user (ask)", each count in the right number.
fn summary(snap: &gatehouse::gateway::state::Snapshot) -> String {
    let count =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let session = &snap.settings.session;
    let devices = match session.max_devices {
        0 => "any number of devices per user".to_string(),
        n => format!(
            "at most {} per user ({})",
            count(n as usize, "device", "devices"),
            session.on_device_limit.as_str()
        ),
    };
    let mut parts = vec![
        count(snap.settings.routes.len(), "route", "routes"),
        count(snap.users.len(), "user", "users"),
        devices,
    ];
    let overridden = &snap.settings.ui.pages.overridden;
    if !overridden.is_empty() {
        parts.push(format!(
            "{} from ui.templates_dir",
            count(overridden.len(), "page file", "page files")
        ));
    }
    parts.join(", ")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let logging = log_options(&cli);
    let result = match cli.command {
        Command::Run {
            config,
            daemon,
            upgrade,
            test,
        } => {
            gatehouse::logging::init(logging);
            server::run(
                &config,
                ProcessFlags {
                    daemon,
                    upgrade,
                    test,
                },
            )
        }
        Command::CheckConfig { config, connect } => match server::load_snapshot(&config) {
            Ok(snap) if connect && snap.settings.users_sql.is_some() => {
                gatehouse::auth::sql::check_connection(&config, &snap.settings)
                    .map_err(|e| e.to_string())
                    .map(|()| println!("{}: OK (users database answered)", config.display()))
            }
            Ok(snap) => {
                println!("{}: OK ({})", config.display(), summary(&snap));
                println!("Routes, most specific first (a request takes the first that matches):");
                print!(
                    "{}",
                    gatehouse::gateway::routing::describe(&snap.settings.routes)
                );
                Ok(())
            }
            Err(errors) => Err(errors.to_string()),
        },
        Command::HashPassword { config } => hash_password_command(config.as_deref()),
        Command::Users { file, action } => users(&file, action),
        Command::Sessions {
            admin,
            token_file,
            config,
            json,
            action,
        } => sessions(admin, token_file, config, json, action),
        Command::Demo {
            listen,
            app_listen,
            admin_listen,
        } => {
            gatehouse::logging::init(logging);
            gatehouse::demo::run_demo(listen, app_listen, admin_listen)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}
