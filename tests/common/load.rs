//! Steady load for outage and soak tests: a few looping clients (each
//! pausing between requests, and stopping on a flag or after a bounded
//! number of rounds), counting every answer they saw.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::browser::{Browser, Response};

/// A client's part in the mix.
#[derive(Clone, Debug)]
pub enum Role {
    /// Signed in once, then loading pages; signs in again only when told
    /// its session ended (counted as a sign-out).
    SignedIn { user: String, password: String },
    /// A fresh browser signing in over and over (the device limit evicts
    /// the oldest), loading one page each time.
    LoginChurn { user: String, password: String },
}

impl Role {
    pub fn signed_in(user: &str, password: &str) -> Role {
        Role::SignedIn {
            user: user.into(),
            password: password.into(),
        }
    }

    pub fn login_churn(user: &str, password: &str) -> Role {
        Role::LoginChurn {
            user: user.into(),
            password: password.into(),
        }
    }
}

/// What the clients saw.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub requests: u64,
    pub ok: u64,
    pub logins: u64,
    /// 503 "the store could not be reached" (pages, API calls, logins).
    pub store_refused: u64,
    /// Of those, logins.
    pub store_refused_logins: u64,
    /// 503 "too many people are signing in" (not a store failure).
    pub busy: u64,
    /// A signed-in client sent to the login page (its session ended).
    pub signed_out: u64,
    /// Anything else: status and the start of the body.
    pub unexpected: Vec<String>,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.requests += other.requests;
        self.ok += other.ok;
        self.logins += other.logins;
        self.store_refused += other.store_refused;
        self.store_refused_logins += other.store_refused_logins;
        self.busy += other.busy;
        self.signed_out += other.signed_out;
        self.unexpected.extend(other.unexpected.iter().cloned());
    }

    /// Counts a 503 by what it says; false when it is not one.
    fn refused(&mut self, r: &Response, login: bool) -> bool {
        if r.status != 503 {
            return false;
        }
        if r.body.contains("Too many people are signing in") {
            self.busy += 1;
        } else if r.body.contains("could not be checked")
            || r.body.contains("Signing in is unavailable")
            || r.body.contains("store_unavailable")
        {
            self.store_refused += 1;
            if login {
                self.store_refused_logins += 1;
            }
        } else {
            self.odd(r);
        }
        true
    }

    fn odd(&mut self, r: &Response) {
        let start: String = r.body.chars().take(120).collect();
        self.unexpected.push(format!("{}: {start}", r.status));
    }
}

pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Counts>>,
}

/// Pause between two requests of one client.
const PAUSE: Duration = Duration::from_millis(20);
/// A client stops after this many rounds even if never told to.
const MAX_ROUNDS: u64 = 50_000;

impl Load {
    pub fn start(base_url: &str, roles: &[Role]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = roles
            .iter()
            .enumerate()
            .map(|(n, role)| {
                let (stop, role, base) = (Arc::clone(&stop), role.clone(), base_url.to_string());
                tokio::spawn(async move { client(n, &base, role, stop).await })
            })
            .collect();
        Load { stop, tasks }
    }

    /// Stops every client and adds up what they saw.
    pub async fn finish(self) -> Counts {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = Counts::default();
        for t in self.tasks {
            total.add(&t.await.unwrap());
        }
        total
    }
}

/// Signs in (counting the attempt); true when it worked.
async fn sign_in(b: &mut Browser, user: &str, password: &str, c: &mut Counts) -> bool {
    c.requests += 1;
    c.logins += 1;
    let r = b.login(user, password, "/").await;
    match r.status {
        303 => {
            c.ok += 1;
            true
        }
        _ if c.refused(&r, true) => false,
        _ => {
            c.odd(&r);
            false
        }
    }
}

async fn client(n: usize, base: &str, role: Role, stop: Arc<AtomicBool>) -> Counts {
    let mut c = Counts::default();
    let mut b = Browser::new(base);
    let mut signed_in = false;
    for round in 0..MAX_ROUNDS {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        match &role {
            Role::SignedIn { user, password } => {
                if !signed_in {
                    signed_in = sign_in(&mut b, user, password, &mut c).await;
                } else {
                    c.requests += 1;
                    let r = b.page(&format!("/app/{n}/{round}")).await;
                    match r.status {
                        200 => c.ok += 1,
                        303 => {
                            c.signed_out += 1;
                            signed_in = false;
                        }
                        _ if c.refused(&r, false) => {}
                        _ => c.odd(&r),
                    }
                }
            }
            Role::LoginChurn { user, password } => {
                let mut fresh = Browser::new(base);
                if sign_in(&mut fresh, user, password, &mut c).await {
                    c.requests += 1;
                    let r = fresh.page(&format!("/app/churn/{n}/{round}")).await;
                    match r.status {
                        // 303: evicted or revoked by now, which is the churn
                        200 | 303 => c.ok += 1,
                        _ if c.refused(&r, false) => {}
                        _ => c.odd(&r),
                    }
                }
            }
        }
        tokio::time::sleep(PAUSE).await;
    }
    c
}

/// The sum of a counter's samples in a Prometheus text exposition
/// (`name` alone or with any labels).
pub fn metric_sum(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| *series == name || series.starts_with(&format!("{name}{{")))
        .map(|(_, v)| v.parse::<f64>().unwrap() as u64)
        .sum()
}

/// Resident memory (KiB) and open descriptors of a process, from /proc.
pub fn footprint(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    (rss, fds)
}
