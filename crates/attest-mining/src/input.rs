//! Input plumbing shared by the readers: limits, gzip detection and a reader that
//! refuses oversized tokens before they are buffered.

use std::io::{self, BufRead, BufReader, Read};

use flate2::bufread::MultiGzDecoder;

/// Hard limits on what a reader accepts, so that hostile or broken input fails
/// with an error instead of exhausting memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadLimits {
    /// Longest XML tag, text run or CSV record, which bounds every attribute value.
    pub max_value_bytes: usize,
    /// Most events in one log.
    pub max_events: usize,
    /// Most traces (cases) in one log.
    pub max_traces: usize,
    /// Most attributes on one log, trace or event.
    pub max_attributes_per_element: usize,
    /// Deepest XML element nesting.
    pub max_depth: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_value_bytes: 1 << 20,
            max_events: 50_000_000,
            max_traces: 10_000_000,
            max_attributes_per_element: 10_000,
            max_depth: 64,
        }
    }
}

const BUFFER_BYTES: usize = 64 * 1024;

/// Wraps `input`, decompressing it when it starts with the gzip magic bytes.
/// Returns the byte stream and whether it is gzip.
pub(crate) fn open_maybe_gzip<'a, R: Read + 'a>(input: R) -> io::Result<(Box<dyn Read + 'a>, bool)> {
    let mut buffered = BufReader::with_capacity(BUFFER_BYTES, input);
    let head = buffered.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok((Box::new(MultiGzDecoder::new(buffered)), true))
    } else {
        Ok((Box::new(buffered), false))
    }
}

/// A buffered reader that fails once more than `limit_bytes` were consumed since
/// the last [`TokenLimiter::reset`], and counts lines for error messages.
///
/// The XML and CSV parsers buffer a whole tag or record before returning it;
/// resetting after each one bounds that buffer to the limit plus one chunk, so a
/// gigabyte-long attribute value is refused without being allocated. The
/// buffer is owned here so that counting lines costs no extra call per token.
pub(crate) struct TokenLimiter<R> {
    inner: R,
    buffer: Box<[u8]>,
    start: usize,
    end: usize,
    consumed_since_reset: usize,
    limit_bytes: usize,
    /// Newlines in the chunks before the one in `buffer`.
    newlines_before_chunk: u64,
    /// Set when the limit stopped the input, to tell that error from real I/O errors.
    pub(crate) exceeded: bool,
}

impl<R: Read> TokenLimiter<R> {
    pub(crate) fn new(inner: R, limit_bytes: usize) -> Self {
        Self {
            inner,
            buffer: vec![0; BUFFER_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
            consumed_since_reset: 0,
            limit_bytes,
            newlines_before_chunk: 0,
            exceeded: false,
        }
    }

    /// Marks the start of a new token.
    pub(crate) fn reset(&mut self) {
        self.consumed_since_reset = 0;
    }

    /// The 1-based line of the next unread byte; counted only when asked, as
    /// it is needed for error messages alone.
    pub(crate) fn line(&self) -> u64 {
        self.newlines_before_chunk + count_newlines(&self.buffer[..self.start]) + 1
    }
}

impl<R: Read> Read for TokenLimiter<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let count = available.len().min(out.len());
        out[..count].copy_from_slice(&available[..count]);
        self.consume(count);
        Ok(count)
    }
}

impl<R: Read> BufRead for TokenLimiter<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.consumed_since_reset > self.limit_bytes {
            self.exceeded = true;
            return Err(io::Error::other(format!("token longer than {} bytes", self.limit_bytes)));
        }
        if self.start == self.end {
            self.newlines_before_chunk += count_newlines(&self.buffer[..self.end]);
            self.start = 0;
            self.end = loop {
                match self.inner.read(&mut self.buffer) {
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                    result => break result?,
                }
            };
        }
        Ok(&self.buffer[self.start..self.end])
    }

    fn consume(&mut self, amount: usize) {
        self.start = (self.start + amount).min(self.end);
        self.consumed_since_reset = self.consumed_since_reset.saturating_add(amount);
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    // Byte-wide sums over short chunks cannot overflow and let the compiler
    // vectorise the comparison, which matters as every input byte passes here.
    bytes.chunks(128).map(|chunk| u64::from(chunk.iter().map(|&byte| u8::from(byte == b'\n')).sum::<u8>())).sum()
}

/// Shortens a value for an error message.
pub(crate) fn excerpt(value: &str) -> String {
    const MAX_CHARS: usize = 80;
    if value.chars().count() <= MAX_CHARS {
        value.to_owned()
    } else {
        let mut short: String = value.chars().take(MAX_CHARS).collect();
        short.push('…');
        short
    }
}
