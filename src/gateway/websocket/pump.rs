//! One direction of a relayed upgrade: bytes from one side to the other,
//! followed frame by frame (heads only) so that the client's data frames
//! count as activity and, when the session ends, the close frame goes in
//! between two frames, never inside one.
//!
//! Never buffers more than one read, never alters a byte it forwards, and
//! never sends a close frame after one has gone by.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use crate::wire::websocket::{close_frame, FrameScanner, POLICY_VIOLATION};

/// What the peer at the far end of a closing socket is told.
const CLOSE_REASON: &str = "session ended";
/// How long a frame under way (or a write the peer does not read) may
/// take to finish once the session has ended; past that the connection is
/// dropped without a close frame.
const BOUNDARY_WAIT: Duration = Duration::from_millis(500);
/// After a close, how long to read (and drop) what the proxy still sends,
/// so closing the socket does not reset it with the close frame unread.
const DRAIN_WAIT: Duration = Duration::from_secs(1);

#[derive(Clone, Copy)]
pub enum Toward {
    /// Client to app: frames are masked, and so is the close frame sent.
    Server { mask: [u8; 4] },
    /// App to client.
    Client,
}

/// Forwards `first`, then everything `from` sends, to `to` until `from`
/// ends (then `to` is shut down too) or `end` says the session is over.
/// `activity` is raised on each data frame.
pub async fn pump<R, W>(
    mut from: R,
    mut to: W,
    first: Vec<u8>,
    toward: Toward,
    mut end: watch::Receiver<bool>,
    activity: Option<&AtomicBool>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut scanner = FrameScanner::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut pending = first;
    let mut ending = false;
    let give_up = tokio::time::sleep(Duration::MAX);
    tokio::pin!(give_up);
    loop {
        if !pending.is_empty() {
            let (n, stop) = passable(&mut scanner, &pending, ending, activity);
            let written = {
                let write = to.write_all(pending.get(..n).unwrap_or_default());
                tokio::pin!(write);
                // A peer that stops reading must not keep the socket open
                // past its session: the end is heard during a write too.
                loop {
                    tokio::select! {
                        biased;
                        r = &mut write => break r.is_ok(),
                        _ = end.changed(), if !ending => {
                            ending = true;
                            give_up
                                .as_mut()
                                .reset(tokio::time::Instant::now() + BOUNDARY_WAIT);
                        }
                        () = &mut give_up, if ending => break false,
                    }
                }
            };
            if !written {
                return;
            }
            pending.clear();
            if stop {
                break;
            }
        }
        if ending && scanner.at_boundary() {
            break;
        }
        tokio::select! {
            biased;
            _ = end.changed(), if !ending => {
                ending = true;
                give_up
                    .as_mut()
                    .reset(tokio::time::Instant::now() + BOUNDARY_WAIT);
            }
            _ = &mut give_up, if ending => {
                tracing::debug!("websocket relay: a frame under way did not finish; dropped without a close frame");
                return;
            }
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown().await;
                    return;
                }
                Ok(n) => pending.extend_from_slice(buf.get(..n).unwrap_or_default()),
            },
        }
    }
    // The session ended and the stream stands between two frames.
    if !scanner.closed() {
        let mask = match toward {
            Toward::Server { mask } => Some(mask),
            Toward::Client => None,
        };
        let close = close_frame(POLICY_VIOLATION, CLOSE_REASON, mask);
        let _ = tokio::time::timeout(BOUNDARY_WAIT, to.write_all(&close)).await;
    }
    let _ = to.shutdown().await;
    if matches!(toward, Toward::Server { .. }) {
        let _ = tokio::time::timeout(DRAIN_WAIT, async {
            while matches!(from.read(&mut buf).await, Ok(n) if n > 0) {}
        })
        .await;
    }
}

/// How much of `data` may be forwarded: all of it, or when `ending`, up to
/// the first point between two frames (and then `true`: stop there).
/// Raises `activity` for each data frame head seen.
fn passable(
    scanner: &mut FrameScanner,
    data: &[u8],
    ending: bool,
    activity: Option<&AtomicBool>,
) -> (usize, bool) {
    let mut at = 0;
    loop {
        if ending && scanner.at_boundary() {
            return (at, true);
        }
        let Some(rest) = data.get(at..).filter(|r| !r.is_empty()) else {
            return (at, false);
        };
        let (n, head) = scanner.step(rest);
        if let (Some(head), Some(a)) = (head, activity) {
            if head.is_data() {
                a.store(true, Ordering::Relaxed);
            }
        }
        at += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x81, 0x80 | payload.len() as u8, 0, 0, 0, 0];
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn data_frames_raise_activity_and_pings_do_not() {
        let mut s = FrameScanner::new();
        let a = AtomicBool::new(false);
        let ping = [0x89, 0x80, 0, 0, 0, 0];
        assert_eq!(passable(&mut s, &ping, false, Some(&a)), (6, false));
        assert!(!a.load(Ordering::Relaxed));
        assert_eq!(passable(&mut s, &text(b"hi"), false, Some(&a)), (8, false));
        assert!(a.load(Ordering::Relaxed));
    }

    #[test]
    fn when_ending_it_stops_at_the_first_boundary() {
        let mut data = text(b"one");
        data.extend(text(b"two"));
        let mut s = FrameScanner::new();
        assert_eq!(passable(&mut s, &data[..4], false, None), (4, false));
        assert_eq!(passable(&mut s, &data[4..], true, None), (5, true));
        let mut s = FrameScanner::new();
        assert_eq!(passable(&mut s, &data, true, None), (0, true));
    }

    #[tokio::test]
    async fn a_close_frame_follows_the_frame_under_way() {
        let (mut app, from) = tokio::io::duplex(1024);
        let (to, mut client) = tokio::io::duplex(1024);
        let (end_tx, end_rx) = watch::channel(false);
        let frame = [0x82, 4, 1, 2, 3, 4];
        let task = tokio::spawn(pump(from, to, Vec::new(), Toward::Client, end_rx, None));
        app.write_all(&frame[..3]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        end_tx.send(true).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        // The rest of the frame under way and a whole next one, in one go.
        app.write_all(&[&frame[3..], &frame[..]].concat())
            .await
            .unwrap();
        task.await.unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        let mut want = frame.to_vec();
        want.extend(close_frame(1008, "session ended", None));
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn a_peer_that_does_not_read_cannot_hold_the_end_up() {
        let (mut app, from) = tokio::io::duplex(64 * 1024);
        // The client reads nothing, and its buffer is tiny.
        let (to, _client) = tokio::io::duplex(16);
        let (end_tx, end_rx) = watch::channel(false);
        let mut frame = vec![0x82, 126, 0x10, 0x00];
        frame.extend(std::iter::repeat_n(7u8, 0x1000));
        app.write_all(&frame).await.unwrap();
        let task = tokio::spawn(pump(from, to, Vec::new(), Toward::Client, end_rx, None));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!task.is_finished(), "the write should be stuck");
        let ended = std::time::Instant::now();
        end_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .expect("still writing long after the end")
            .unwrap();
        assert!(ended.elapsed() < BOUNDARY_WAIT + Duration::from_millis(300));
    }
}
