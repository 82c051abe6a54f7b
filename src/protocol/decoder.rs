//! Splitting a byte stream into frames.

/// Longest frame, line end included.
pub const MAX_FRAME: usize = 1024;

/// What the decoder found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// One frame's content, CR LF or LF removed, borrowed until the next call.
    Frame(&'a [u8]),
    /// A frame went past [`MAX_FRAME`]; its bytes up to the next LF are dropped.
    TooLong,
}

/// Accumulates bytes and yields frames. A frame that grows past the limit
/// is reported once, then everything up to the next LF is discarded, so the
/// decoder resynchronises on the following frame. Memory stays bounded at
/// [`MAX_FRAME`] plus one read whatever a station sends.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Start of the unread part of `buf`.
    start: usize,
    /// Bytes of `buf` already searched for LF.
    scanned: usize,
    discarding: bool,
    /// The last frame ended in a CR that was the last byte read: an LF
    /// arriving next belongs to that line end, not to an empty frame.
    after_cr: bool,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes held waiting for a line end (never more than [`MAX_FRAME`]
    /// after [`FrameDecoder::next`] returned `None`).
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Adds bytes read from the port.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    fn reset(&mut self) {
        self.after_cr = false;
        self.buf.clear();
        self.start = 0;
        self.scanned = 0;
    }

    /// Where the next frame starts after the line end at `i` (a CR, or an
    /// LF); a CR followed by LF is one line end.
    fn end_of_line(&mut self, i: usize) -> usize {
        if self.buf[i] != b'\r' {
            return i + 1;
        }
        match self.buf.get(i + 1) {
            Some(b'\n') => i + 2,
            Some(_) => i + 1,
            None => {
                self.after_cr = true;
                i + 1
            }
        }
    }

    /// The next complete frame or error, if there is one.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Decoded<'_>> {
        loop {
            if self.after_cr && self.start < self.buf.len() {
                self.after_cr = false;
                if self.buf[self.start] == b'\n' {
                    self.start += 1;
                    self.scanned = self.scanned.max(self.start);
                }
            }
            // A line ends at LF, CR LF, or a lone CR (some PLCs send only CR).
            let lf = self.buf[self.scanned..]
                .iter()
                .position(|b| matches!(b, b'\n' | b'\r'))
                .map(|p| p + self.scanned);
            if self.discarding {
                match lf {
                    Some(i) => {
                        self.start = self.end_of_line(i);
                        self.scanned = self.start;
                        self.discarding = false;
                        continue;
                    }
                    None => {
                        self.reset();
                        return None;
                    }
                }
            }
            return match lf {
                Some(i) => {
                    let from = self.start;
                    self.start = self.end_of_line(i);
                    self.scanned = self.start;
                    // The frame's length counts its whole line end.
                    if self.start - from > MAX_FRAME {
                        return Some(Decoded::TooLong);
                    }
                    Some(Decoded::Frame(&self.buf[from..i]))
                }
                None if self.buf.len() - self.start >= MAX_FRAME => {
                    self.reset();
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
