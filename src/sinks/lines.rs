//! Reading the alert history line by line without ever holding more than a
//! bounded line: the file is ours, but a disk, an editor or another program
//! may have put anything in it, a gigabyte without a newline included.

use std::io::{self, BufRead};

/// Longer lines are not events the daemon wrote (an event is a few KiB):
/// they are skipped without being held.
pub const MAX_LINE: usize = 1 << 20;

/// What [`next`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// A whole line, newline included, in the buffer.
    Whole,
    /// A line longer than the bound, skipped to its newline; the buffer is
    /// empty.
    TooLong,
    /// The end of the input inside a line (a write cut short); the buffer
    /// holds what there was, up to the bound.
    Torn,
    /// The end of the input.
    End,
}

/// Reads the next line into `line` (cleared first), holding at most `max`
/// bytes of it; returns what was found and how many bytes were consumed.
pub fn next(r: &mut impl BufRead, line: &mut Vec<u8>, max: usize) -> io::Result<(Line, u64)> {
    line.clear();
    let mut consumed = 0u64;
    let mut too_long = false;
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            let what = match (consumed, too_long) {
                (0, _) => Line::End,
                (_, true) => Line::TooLong,
                _ => Line::Torn,
            };
            return Ok((what, consumed));
        }
        let (n, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if !too_long {
            if line.len() + n > max {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(&buf[..n]);
            }
        }
        r.consume(n);
        consumed += n as u64;
        if done {
            return Ok((if too_long { Line::TooLong } else { Line::Whole }, consumed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that makes up `len` bytes without a newline, never holding
    /// them: a gigabyte line costs the test nothing.
    struct Endless {
        left: u64,
        chunk: Vec<u8>,
    }

    impl io::Read for Endless {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = out.len().min(self.left as usize);
            out[..n].fill(b'x');
            self.left -= n as u64;
            Ok(n)
        }
    }

    impl BufRead for Endless {
        fn fill_buf(&mut self) -> io::Result<&[u8]> {
            let n = self.chunk.len().min(self.left as usize);
            Ok(&self.chunk[..n])
        }
        fn consume(&mut self, n: usize) {
            self.left -= n as u64;
        }
    }

    #[test]
    fn lines_are_whole_too_long_torn_or_the_end() {
        let mut r = io::Cursor::new(b"ab\ncdefgh\nij".to_vec());
        let mut l = Vec::new();
        assert_eq!(next(&mut r, &mut l, 4).unwrap(), (Line::Whole, 3));
        assert_eq!(l, b"ab\n");
        assert_eq!(next(&mut r, &mut l, 4).unwrap(), (Line::TooLong, 7));
        assert!(l.is_empty());
        assert_eq!(next(&mut r, &mut l, 4).unwrap(), (Line::Torn, 2));
        assert_eq!(l, b"ij");
        assert_eq!(next(&mut r, &mut l, 4).unwrap(), (Line::End, 0));
    }

    #[test]
    fn a_gigabyte_line_is_skipped_holding_at_most_the_bound() {
        let mut r = Endless {
            left: 1 << 30,
            chunk: vec![b'x'; 64 * 1024],
        };
        let mut l = Vec::new();
        let (what, n) = next(&mut r, &mut l, MAX_LINE).unwrap();
        assert_eq!((what, n), (Line::TooLong, 1 << 30));
        assert!(l.capacity() <= MAX_LINE, "held {} bytes", l.capacity());
    }
}
