//! `login.failure_delay`: a refused form that checks a password (the login
//! form, the password page) is answered only after the delay, counted from
//! when it arrived. A client looping on refusals then costs the gateway a
//! timer per attempt instead of a busy core. (It does not bound guessing: a
//! guesser can hang up and try again on a new connection;
//! `login.max_failures` is what bounds guessing.)

use std::future::Future;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use tokio::time::Instant;

use super::respond::Reply;
use crate::bounded::Place;

/// Refusals waiting out the delay at once. Each holds its connection open,
/// so past this many the rest are answered at once: the delay can never
/// hold more than this many sockets.
pub const MAX_WAITING: usize = 256;

#[derive(Default)]
pub struct RefusalDelay {
    waiting: AtomicUsize,
}

/// 4xx and 5xx answers, except 409: the device limit follows a right
/// password.
fn is_refusal(status: u16) -> bool {
    status >= 400 && status != 409
}

impl RefusalDelay {
    /// The answer to a posted form; a refusal is held until `delay` after
    /// the form arrived.
    pub async fn hold_refusals(
        &self,
        delay: Duration,
        answer: impl Future<Output = pingora::Result<Reply>>,
    ) -> pingora::Result<Reply> {
        let arrived = Instant::now();
        let reply = answer.await?;
        if is_refusal(reply.status) {
            self.wait(arrived, delay).await;
        }
        Ok(reply)
    }

    /// Returns `delay` after `arrived`, or at once when `MAX_WAITING`
    /// refusals are already waiting.
    pub async fn wait(&self, arrived: Instant, delay: Duration) {
        if delay.is_zero() {
            return;
        }
        let Some(_place) = Place::take(&self.waiting, MAX_WAITING) else {
            return;
        };
        tokio::time::sleep_until(arrived + delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn refusals_are_the_errors_but_the_device_limit() {
        // signed in, the device choice page or password changed, the device limit
        for status in [303, 200, 409] {
            assert!(!is_refusal(status), "{status}");
        }
        // bad form, wrong password, bad token, too slow, too large,
        // throttled, busy
        for status in [400, 401, 403, 408, 413, 429, 503] {
            assert!(is_refusal(status), "{status}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn waits_from_arrival_and_never_holds_more_than_max() {
        let delay = Duration::from_secs(1);
        let gate = Arc::new(RefusalDelay::default());
        let arrived = Instant::now();
        let mut waiting = Vec::new();
        for _ in 0..MAX_WAITING {
            let gate = gate.clone();
            waiting.push(tokio::spawn(async move {
                gate.wait(arrived, delay).await;
                Instant::now()
            }));
        }
        while gate.waiting.load(std::sync::atomic::Ordering::Acquire) < MAX_WAITING {
            tokio::task::yield_now().await;
        }
        // every place is taken: one more is answered at once
        gate.wait(Instant::now(), delay).await;
        assert_eq!(Instant::now(), arrived, "the extra refusal waited");
        for w in waiting {
            assert_eq!(w.await.unwrap(), arrived + delay);
        }
        // the places came back: a new refusal waits again, counted from
        // its own arrival (half the delay ago)
        tokio::time::advance(delay / 2).await;
        let later = Instant::now() - delay / 2;
        gate.wait(later, delay).await;
        assert_eq!(Instant::now(), later + delay);
        // "0s" turns it off
        let now = Instant::now();
        gate.wait(now, Duration::ZERO).await;
        assert_eq!(Instant::now(), now);
    }
}
