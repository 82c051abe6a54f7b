//! Splitting a byte stream into frames.

/// Longest frame, line end included.
pub const MAX_FRAME: usize = 1024;

/// What the decoder found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// One frame's content, CR LF or LF removed.
    Frame(Vec<u8>),
    /// A frame went past [`MAX_FRAME`]; its bytes up to the next LF are dropped.
    TooLong,
}

/// Accumulates bytes and yields frames. A frame that grows past the limit
/// is reported once, then everything up to the next LF is discarded, so the
/// decoder resynchronises on the following frame. Memory stays bounded at
/// [`MAX_FRAME`] whatever a station sends.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already searched for LF.
    scanned: usize,
    discarding: bool,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes held waiting for a line end (never more than [`MAX_FRAME`]
    /// after [`FrameDecoder::next`] returned `None`).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Adds bytes read from the port.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame or error, if there is one.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Decoded> {
        loop {
            let lf = self.buf[self.scanned..]
                .iter()
                .position(|b| *b == b'\n')
                .map(|p| p + self.scanned);
            if self.discarding {
                match lf {
                    Some(i) => {
                        self.buf.drain(..=i);
                        self.scanned = 0;
                        self.discarding = false;
                        continue;
                    }
                    None => {
                        self.buf.clear();
                        self.scanned = 0;
                        return None;
                    }
                }
            }
            return match lf {
                Some(i) => {
                    let mut frame: Vec<u8> = self.buf.drain(..=i).collect();
                    self.scanned = 0;
                    if frame.len() > MAX_FRAME {
                        return Some(Decoded::TooLong);
                    }
                    frame.pop(); // LF
                    if frame.last() == Some(&b'\r') {
                        frame.pop();
                    }
                    Some(Decoded::Frame(frame))
                }
                None if self.buf.len() >= MAX_FRAME => {
                    self.buf.clear();
                    self.scanned = 0;
                    self.discarding = true;
                    Some(Decoded::TooLong)
                }
                None => {
                    self.scanned = self.buf.len();
                    None
                }
            };
        }
    }
}
