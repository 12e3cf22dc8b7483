//! IPFIX over TCP (RFC 7011 section 10.4): messages one after another on a
//! stream, each framed by the length in its header. A connection is one
//! transport session: its templates end with it (the caller forgets them).
//! NetFlow v9 and sFlow have no such framing and are not taken over TCP.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::Problem;

/// The largest IPFIX message: its length field is 16 bits.
const MAX_MESSAGE: usize = 65_535;

/// Why a connection ends.
#[derive(Debug)]
pub enum End {
    /// The exporter closed it.
    Closed,
    Error(io::Error),
    /// The stream is not IPFIX messages: their boundaries are lost.
    Framing(Problem),
    /// Closed to make room for a new connection: it had sent no whole
    /// message for [`IDLE`] or longer while every slot was taken.
    Idle,
}

/// A connection that has sent no whole message for this long gives way to
/// a new one when every slot is taken: silent or byte-dribbling clients
/// cannot keep exporters out (an exporter that was only quiet reconnects).
pub const IDLE: Duration = Duration::from_secs(10);

/// One exporter's connection and the part of a message read so far.
#[derive(Debug)]
pub struct Conn {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    buf: Box<[u8]>,
    filled: usize,
    /// When it connected or last sent a whole message.
    pub last_message: Instant,
}

impl Conn {
    pub fn new(stream: TcpStream, peer: SocketAddr) -> io::Result<Conn> {
        stream.set_nonblocking(true)?;
        Ok(Conn {
            stream,
            peer,
            buf: vec![0; MAX_MESSAGE].into_boxed_slice(),
            filled: 0,
            last_message: Instant::now(),
        })
    }

    /// Reads what the socket has (at most `reads` reads), handing each
    /// whole message to `each`; `Some` when the connection must end.
    pub fn pump(&mut self, reads: usize, each: &mut impl FnMut(&[u8])) -> Option<End> {
        for _ in 0..reads {
            match self.stream.read(&mut self.buf[self.filled..]) {
                Ok(0) => return Some(End::Closed),
                Ok(n) => {
                    self.filled += n;
                    if let Err(p) = self.frames(each) {
                        return Some(End::Framing(p));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Some(End::Error(e)),
            }
        }
        None
    }

    /// Hands over the whole messages in the buffer and keeps the rest at
    /// its start. After it, the buffer holds less than one message, so a
    /// read always has room.
    fn frames(&mut self, each: &mut impl FnMut(&[u8])) -> Result<(), Problem> {
        let (used, result) = split(&self.buf[..self.filled], each);
        if used > 0 {
            self.last_message = Instant::now();
        }
        self.buf.copy_within(used..self.filled, 0);
        self.filled -= used;
        result
    }
}

/// The connection to close for a new one when every slot is taken: the one
/// silent longest, if it has been silent for [`IDLE`].
pub fn make_room(last_messages: impl Iterator<Item = Instant>, now: Instant) -> Option<usize> {
    last_messages
        .enumerate()
        .min_by_key(|(_, t)| *t)
        .filter(|(_, t)| now.saturating_duration_since(*t) >= IDLE)
        .map(|(i, _)| i)
}

/// Hands each whole IPFIX message at the start of `stream` to `each`;
/// returns the bytes they took, and an error if what follows them cannot
/// begin a message.
pub fn split(stream: &[u8], each: &mut impl FnMut(&[u8])) -> (usize, Result<(), Problem>) {
    let mut at = 0;
    loop {
        let rest = &stream[at..];
        if rest.len() < 4 {
            return (at, Ok(()));
        }
        if u16::from_be_bytes([rest[0], rest[1]]) != 10 {
            return (at, Err(Problem::Version));
        }
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        if len < 16 {
            return (at, Err(Problem::Length));
        }
        if rest.len() < len {
            return (at, Ok(()));
        }
        each(&rest[..len]);
        at += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    fn message(n: u8, len: usize) -> Vec<u8> {
        let mut m = vec![n; len];
        m[..4].copy_from_slice(&[0, 10, (len >> 8) as u8, len as u8]);
        m
    }

    fn pair() -> (TcpStream, Conn) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let tx = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (rx, peer) = l.accept().unwrap();
        (tx, Conn::new(rx, peer).unwrap())
    }

    fn drain(c: &mut Conn, got: &mut Vec<Vec<u8>>) -> Option<End> {
        let mut each = |m: &[u8]| got.push(m.to_vec());
        for _ in 0..200 {
            if let Some(e) = c.pump(64, &mut each) {
                return Some(e);
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        None
    }

    #[test]
    fn messages_split_anyhow_come_out_whole() {
        let (mut tx, mut c) = pair();
        let sent: Vec<Vec<u8>> = [16, 17, 1400, 65_535, 40, 16]
            .iter()
            .enumerate()
            .map(|(i, &len)| message(i as u8 + 1, len))
            .collect();
        let stream: Vec<u8> = sent.concat();
        // Odd pieces, cutting headers and bodies.
        let mut got = Vec::new();
        for piece in stream.chunks(7_777).flat_map(|c| c.chunks(3)) {
            tx.write_all(piece).unwrap();
            if piece.len() < 3 {
                let mut each = |m: &[u8]| got.push(m.to_vec());
                assert!(c.pump(4, &mut each).is_none());
            }
        }
        drop(tx);
        assert!(matches!(drain(&mut c, &mut got), Some(End::Closed)));
        assert_eq!(got, sent);
    }

    #[test]
    fn room_is_made_by_the_connection_silent_longest_once_idle() {
        let now = Instant::now() + IDLE * 3;
        let at = |s: u64| now - Duration::from_secs(s);
        assert_eq!(make_room([at(1), at(25), at(12)].into_iter(), now), Some(1));
        assert_eq!(
            make_room([at(1), at(9)].into_iter(), now),
            None,
            "none idle long enough"
        );
        assert_eq!(make_room(std::iter::empty(), now), None);
    }

    #[test]
    fn a_stream_of_something_else_ends() {
        for (bad, problem) in [
            (vec![0, 9, 0, 20], Problem::Version),
            (vec![0, 10, 0, 15], Problem::Length),
        ] {
            let (mut tx, mut c) = pair();
            tx.write_all(&message(1, 20)).unwrap();
            tx.write_all(&bad).unwrap();
            let mut got = Vec::new();
            match drain(&mut c, &mut got) {
                Some(End::Framing(p)) => assert_eq!(p, problem),
                e => panic!("{e:?}"),
            }
            assert_eq!(got, vec![message(1, 20)], "what came before is counted");
        }
    }
}
