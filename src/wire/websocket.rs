//! WebSocket framing (RFC 6455 §5.2) as far as the gateway needs it: where
//! each frame starts and ends in a byte stream, what kind it is, and the
//! close frame the gateway sends when a session ends. Payloads are never
//! decoded, unmasked or buffered (an extension such as permessage-deflate
//! changes payloads, not frame heads). Pure: bytes in, positions out; it
//! never panics on what a peer sends.

/// The close code for "policy violation": the session behind the socket
/// is over (RFC 6455 §7.4.1).
pub const POLICY_VIOLATION: u16 = 1008;

/// What a frame head says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHead {
    pub opcode: u8,
    pub fin: bool,
    pub len: u64,
}

impl FrameHead {
    /// Text, binary or a continuation of either: what a user's activity
    /// looks like (pings and pongs are the connection's own upkeep).
    pub fn is_data(&self) -> bool {
        matches!(self.opcode, 0x0..=0x2)
    }

    pub fn is_close(&self) -> bool {
        self.opcode == 0x8
    }
}

/// Follows a byte stream frame by frame. Feed it every byte in order with
/// `step`; between steps it can say whether the stream stands between two
/// frames, where a frame of the gateway's own may be put.
#[derive(Debug, Default, Clone)]
pub struct FrameScanner {
    head: [u8; 14],
    have: usize,
    /// Payload bytes of the current frame still to come.
    remaining: u64,
    /// A close frame has gone by: nothing more may be sent this way.
    closed: bool,
}

impl FrameScanner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes a prefix of `data` (at least one byte when `data` is not
    /// empty, never past the end of one frame head or one payload) and
    /// returns its length, and the head if this step completed one.
    pub fn step(&mut self, data: &[u8]) -> (usize, Option<FrameHead>) {
        if data.is_empty() {
            return (0, None);
        }
        if self.remaining > 0 {
            let n = usize::try_from(self.remaining)
                .unwrap_or(usize::MAX)
                .min(data.len());
            self.remaining -= n as u64;
            return (n, None);
        }
        let mut used = 0;
        for &b in data {
            if let Some(slot) = self.head.get_mut(self.have) {
                *slot = b;
            }
            self.have += 1;
            used += 1;
            if self.have >= 2 && self.have == head_len(self.head[1]) {
                let head = parse(&self.head);
                self.have = 0;
                self.remaining = head.len;
                self.closed |= head.is_close();
                return (used, Some(head));
            }
        }
        (used, None)
    }

    /// Whether the stream stands between two frames.
    pub fn at_boundary(&self) -> bool {
        self.have == 0 && self.remaining == 0
    }

    /// Whether a close frame has gone by in this direction.
    pub fn closed(&self) -> bool {
        self.closed
    }
}

/// Length of a frame head, from its second byte.
fn head_len(second: u8) -> usize {
    let ext = match second & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    2 + ext + mask
}

fn parse(head: &[u8; 14]) -> FrameHead {
    let len = match head[1] & 0x7f {
        126 => u64::from(u16::from_be_bytes([head[2], head[3]])),
        127 => u64::from_be_bytes([
            head[2], head[3], head[4], head[5], head[6], head[7], head[8], head[9],
        ]),
        n => u64::from(n),
    };
    FrameHead {
        opcode: head[0] & 0x0f,
        fin: head[0] & 0x80 != 0,
        len,
    }
}

/// A close frame with `code` and `reason` (cut to fit a control frame);
/// masked with `mask` when it goes to a server, as a client's must be.
pub fn close_frame(code: u16, reason: &str, mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    payload.extend_from_slice(&reason.as_bytes()[..cut]);
    let len = u8::try_from(payload.len()).unwrap_or(125);
    let mut frame = vec![0x88];
    match mask {
        Some(key) => {
            frame.push(0x80 | len);
            frame.extend_from_slice(&key);
            frame.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
        }
        None => {
            frame.push(len);
            frame.extend_from_slice(&payload);
        }
    }
    frame
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every head in `stream`, fed in pieces of `piece` bytes, and whether
    /// it ended between frames.
    fn scan(stream: &[u8], piece: usize) -> (Vec<FrameHead>, bool) {
        let mut s = FrameScanner::new();
        let mut heads = Vec::new();
        for chunk in stream.chunks(piece.max(1)) {
            let mut rest = chunk;
            while !rest.is_empty() {
                let (n, head) = s.step(rest);
                assert!(n > 0);
                heads.extend(head);
                rest = &rest[n..];
            }
        }
        (heads, s.at_boundary())
    }

    fn frame(opcode: u8, payload_len: usize, masked: bool) -> Vec<u8> {
        let mut f = vec![0x80 | opcode];
        let m = if masked { 0x80 } else { 0 };
        match payload_len {
            n if n < 126 => f.push(m | n as u8),
            n if n <= 0xffff => {
                f.push(m | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(m | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if masked {
            f.extend_from_slice(&[1, 2, 3, 4]);
        }
        f.extend(std::iter::repeat_n(b'x', payload_len));
        f
    }

    #[test]
    fn finds_every_frame_whatever_the_lengths_and_chunking() {
        let mut stream = Vec::new();
        let sizes = [0usize, 5, 125, 126, 300, 65535, 65536, 70000];
        for (i, &n) in sizes.iter().enumerate() {
            stream.extend(frame(if i % 2 == 0 { 1 } else { 2 }, n, i % 3 == 0));
        }
        stream.extend(frame(9, 4, true));
        for piece in [1, 2, 3, 7, 1000, stream.len()] {
            let (heads, boundary) = scan(&stream, piece);
            assert!(boundary, "piece {piece}");
            let lens: Vec<u64> = heads.iter().map(|h| h.len).collect();
            let mut want: Vec<u64> = sizes.iter().map(|&n| n as u64).collect();
            want.push(4);
            assert_eq!(lens, want, "piece {piece}");
            assert_eq!(heads.iter().filter(|h| h.is_data()).count(), sizes.len());
        }
    }

    #[test]
    fn mid_frame_is_not_a_boundary() {
        let f = frame(1, 10, true);
        for cut in 1..f.len() {
            let (_, boundary) = scan(&f[..cut], 3);
            assert!(!boundary, "cut at {cut}");
        }
    }

    #[test]
    fn close_frames_read_back_as_close_with_the_code() {
        for mask in [None, Some([9, 8, 7, 6])] {
            let f = close_frame(POLICY_VIOLATION, "session ended", mask);
            let mut s = FrameScanner::new();
            let (n, head) = s.step(&f);
            let head = head.unwrap();
            assert!(head.is_close() && head.fin && !head.is_data());
            assert_eq!(head.len, 15);
            let mut payload = f[n..].to_vec();
            if let Some(k) = mask {
                for (i, b) in payload.iter_mut().enumerate() {
                    *b ^= k[i % 4];
                }
            }
            assert_eq!(&payload[..2], &1008u16.to_be_bytes());
            assert_eq!(&payload[2..], b"session ended");
            assert_eq!(s.step(&f[n..]).0, 15);
            assert!(s.at_boundary() && s.closed());
        }
    }

    #[test]
    fn a_long_reason_is_cut_to_fit_a_control_frame() {
        let f = close_frame(1008, &"é".repeat(100), None);
        assert_eq!(f[1] as usize, f.len() - 2);
        assert!(f.len() - 2 <= 125);
    }

    proptest! {
        #[test]
        fn any_bytes_are_consumed_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), piece in 1usize..40) {
            let mut s = FrameScanner::new();
            for chunk in bytes.chunks(piece) {
                let mut rest = chunk;
                while !rest.is_empty() {
                    let (n, _) = s.step(rest);
                    prop_assert!(n > 0 && n <= rest.len());
                    rest = &rest[n..];
                }
            }
        }
    }
}
