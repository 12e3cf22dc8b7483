//! The daemon's end of the link to the speaker: a Unix socket the bridge
//! ([`super::bridge`], run by ExaBGP) connects to.
//!
//! The daemon sends the whole wanted set on every change and on every new
//! connection (`begin`, one `route` line per route, `end`); the bridge
//! says what the speaker did and how its BGP sessions are. Writes happen
//! on the link's own thread with a timeout, so a bridge that stops reading
//! cannot stall the tick.

use std::collections::BTreeMap;
use std::io::{BufReader, Write};

use crate::sinks::lines::Line;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::exabgp::Route;

/// Longest line taken from the bridge.
pub const MAX_LINE: usize = 4096;
/// How long a write to the bridge may block.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the link could not start.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("mitigation.bgp.socket {path}: {err}")]
    Socket { path: String, err: std::io::Error },
    #[error("cannot start the speaker link's thread: {0}")]
    Thread(std::io::Error),
}

/// How the speaker is, as far as the bridge said.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Status {
    /// A bridge is connected now.
    pub connected: bool,
    /// Bridges that connected since start.
    pub connections: u64,
    /// BGP sessions by peer address: "up", "down", "connected"…
    pub neighbors: BTreeMap<String, String>,
    /// Wanted sets handed to a bridge.
    pub syncs: u64,
    /// Commands the speaker carried out, and refused.
    pub commands_done: u64,
    pub commands_failed: u64,
    /// Lines from the bridge that meant nothing.
    pub bad_lines: u64,
}

/// One line from the bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Said {
    /// `neighbor <address> <state>`
    Neighbor(String, String),
    /// `done <n>` / `failed <n>`: speaker acknowledgements since the last.
    Done(u64),
    Failed(u64),
}

/// Reads a bridge's line; `None` for anything else.
pub fn parse_line(line: &str) -> Option<Said> {
    let mut w = line.split_ascii_whitespace();
    let said = match (w.next()?, w.next(), w.next()) {
        ("neighbor", Some(addr), Some(state)) => {
            let addr: std::net::IpAddr = addr.parse().ok()?;
            if state.len() > 32
                || !state
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return None;
            }
            Said::Neighbor(addr.to_string(), state.to_string())
        }
        ("done", Some(n), None) => Said::Done(n.parse().ok()?),
        ("failed", Some(n), None) => Said::Failed(n.parse().ok()?),
        _ => return None,
    };
    if w.next().is_some() {
        return None;
    }
    Some(said)
}

#[derive(Debug)]
struct State {
    wanted: Vec<Route>,
    version: u64,
    conn: Option<UnixStream>,
    generation: u64,
    /// (version, generation) last written.
    sent: (u64, u64),
    stopping: bool,
    status: Status,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running link.
#[derive(Debug)]
pub struct Link {
    shared: Arc<Shared>,
    path: PathBuf,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Link {
    /// Listens on `path` (a stale socket file there is replaced; the file
    /// is readable and writable by the daemon's user and group only).
    pub fn start(path: &str) -> Result<Link, LinkError> {
        let err = |err| LinkError::Socket {
            path: path.to_string(),
            err,
        };
        let p = Path::new(path);
        if let Ok(m) = std::fs::symlink_metadata(p) {
            use std::os::unix::fs::FileTypeExt;
            if !m.file_type().is_socket() {
                return Err(err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "exists and is not a socket",
                )));
            }
            std::fs::remove_file(p).map_err(err)?;
        }
        let listener = UnixListener::bind(p).map_err(err)?;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o660)).map_err(err)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                wanted: Vec::new(),
                version: 0,
                conn: None,
                generation: 0,
                sent: (0, 0),
                stopping: false,
                status: Status::default(),
            }),
            changed: Condvar::new(),
        });
        let s = shared.clone();
        std::thread::Builder::new()
            .name("bgp-accept".into())
            .spawn(move || accept(listener, s))
            .map_err(LinkError::Thread)?;
        let s = shared.clone();
        let writer = std::thread::Builder::new()
            .name("bgp-write".into())
            .spawn(move || write_loop(s))
            .map_err(LinkError::Thread)?;
        log::info!("mitigation: waiting for the ExaBGP bridge on {path}");
        Ok(Link {
            shared,
            path: p.to_path_buf(),
            writer: Some(writer),
        })
    }

    /// The routes wanted from now on.
    pub fn publish(&self, wanted: Vec<Route>) {
        let mut st = self.shared.lock();
        if st.wanted == wanted {
            return;
        }
        st.wanted = wanted;
        st.version += 1;
        self.shared.changed.notify_all();
    }

    pub fn status(&self) -> Status {
        self.shared.lock().status.clone()
    }

    /// Closes the link; with `withdraw`, first hands the bridge an empty
    /// set and waits (up to a few seconds) until it is written.
    pub fn stop(mut self, withdraw: bool) {
        if withdraw {
            self.publish(Vec::new());
            let end = Instant::now() + WRITE_TIMEOUT + Duration::from_secs(1);
            let mut st = self.shared.lock();
            while st.conn.is_some() && st.sent.0 != st.version && Instant::now() < end {
                let left = end.saturating_duration_since(Instant::now());
                st = self
                    .shared
                    .changed
                    .wait_timeout(st, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            if st.conn.is_some() && st.sent.0 != st.version {
                log::error!("mitigation: the bridge did not take the withdrawals before shutdown");
            } else if st.conn.is_none() && !st.wanted.is_empty() {
                log::error!(
                    "mitigation: no bridge connected at shutdown: routes stay announced until it reconnects"
                );
            }
        }
        {
            let mut st = self.shared.lock();
            st.stopping = true;
            if let Some(c) = st.conn.take() {
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
            self.shared.changed.notify_all();
        }
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
        // The accepting thread is woken by a connection of our own.
        let _ = UnixStream::connect(&self.path);
        let _ = std::fs::remove_file(&self.path);
    }
}

fn accept(listener: UnixListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                log::warn!("mitigation: accepting the bridge: {e}");
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
        };
        let generation = {
            let mut st = shared.lock();
            if st.stopping {
                return;
            }
            let (Ok(reader), Ok(())) = (
                conn.try_clone(),
                conn.set_write_timeout(Some(WRITE_TIMEOUT)),
            ) else {
                continue;
            };
            if let Some(old) = st.conn.replace(conn) {
                log::warn!("mitigation: a new bridge connected; dropping the previous one");
                let _ = old.shutdown(std::net::Shutdown::Both);
            }
            st.generation += 1;
            st.status.connected = true;
            st.status.connections += 1;
            st.status.neighbors.clear();
            shared.changed.notify_all();
            let g = st.generation;
            let s = shared.clone();
            if std::thread::Builder::new()
                .name("bgp-read".into())
                .spawn(move || read_loop(reader, g, s))
                .is_err()
            {
                log::error!("mitigation: cannot start a thread to read the bridge");
            }
            g
        };
        log::info!("mitigation: the ExaBGP bridge connected (link {generation})");
    }
}

fn read_loop(conn: UnixStream, generation: u64, shared: Arc<Shared>) {
    let mut r = BufReader::new(conn);
    let mut buf = Vec::new();
    loop {
        let said = match crate::sinks::lines::next(&mut r, &mut buf, MAX_LINE) {
            Ok((Line::Whole, _)) => std::str::from_utf8(&buf).ok().and_then(parse_line),
            Ok((Line::TooLong, _)) => None,
            Ok((Line::End | Line::Torn, _)) | Err(_) => break,
        };
        let mut st = shared.lock();
        match said {
            Some(Said::Neighbor(a, s)) => {
                if st.status.neighbors.get(&a) != Some(&s) {
                    log::info!("mitigation: BGP session with {a} is {s}");
                }
                if st.status.neighbors.len() < 64 || st.status.neighbors.contains_key(&a) {
                    st.status.neighbors.insert(a, s);
                }
            }
            Some(Said::Done(n)) => st.status.commands_done += n,
            Some(Said::Failed(n)) => {
                st.status.commands_failed += n;
                log::error!("mitigation: ExaBGP refused {n} command(s) (see its log)");
            }
            None => {
                st.status.bad_lines += 1;
                if st.status.bad_lines.is_power_of_two() {
                    log::warn!(
                        "mitigation: {} line(s) from the bridge meant nothing",
                        st.status.bad_lines
                    );
                }
            }
        }
    }
    let mut st = shared.lock();
    if st.generation == generation && st.conn.is_some() {
        st.conn = None;
        st.status.connected = false;
        log::warn!(
            "mitigation: the ExaBGP bridge went away; routes are kept by ExaBGP and sent again when it reconnects"
        );
        shared.changed.notify_all();
    }
}

fn write_loop(shared: Arc<Shared>) {
    loop {
        let (mut conn, text, mark) = {
            let mut st = shared.lock();
            loop {
                if st.stopping {
                    return;
                }
                if st.conn.is_some() && st.sent != (st.version, st.generation) {
                    break;
                }
                st = shared.changed.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            let Some(Ok(conn)) = st.conn.as_ref().map(UnixStream::try_clone) else {
                st.conn = None;
                continue;
            };
            let mut text = String::from("begin\n");
            for r in &st.wanted {
                text.push_str("route\t");
                text.push_str(&r.key);
                text.push('\t');
                text.push_str(&r.announce);
                text.push('\t');
                text.push_str(&r.withdraw);
                text.push('\n');
            }
            text.push_str("end\n");
            (conn, text, (st.version, st.generation))
        };
        let ok = conn.write_all(text.as_bytes()).is_ok();
        let mut st = shared.lock();
        if ok {
            st.sent = mark;
            st.status.syncs += 1;
        } else if st.generation == mark.1 {
            log::warn!(
                "mitigation: cannot write to the ExaBGP bridge; waiting for it to reconnect"
            );
            if let Some(c) = st.conn.take() {
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
            st.status.connected = false;
        }
        shared.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;

    #[test]
    fn bridge_lines_are_read_strictly() {
        assert_eq!(
            parse_line("neighbor 10.99.0.1 up\n"),
            Some(Said::Neighbor("10.99.0.1".into(), "up".into()))
        );
        assert_eq!(parse_line("done 3"), Some(Said::Done(3)));
        assert_eq!(parse_line("failed 1\n"), Some(Said::Failed(1)));
        for bad in [
            "",
            "neighbor",
            "neighbor x up",
            "neighbor 10.0.0.1 up extra",
            "neighbor 10.0.0.1 u\u{1b}p",
            "done -1",
            "done 99999999999999999999999",
            "route\tx\ty\tz",
        ] {
            assert_eq!(parse_line(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_bridge_gets_the_whole_set_on_connecting_and_on_every_change() {
        let dir = std::env::temp_dir().join(format!("ta-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let link = Link::start(path.to_str().unwrap()).unwrap();
        let r = |k: &str| Route {
            key: k.into(),
            announce: format!("announce {k}"),
            withdraw: format!("withdraw {k}"),
        };
        link.publish(vec![r("route 10.0.0.1/32")]);
        let c = UnixStream::connect(&path).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut rd = BufReader::new(c.try_clone().unwrap());
        let mut read_set = || {
            let mut lines = Vec::new();
            loop {
                let mut l = String::new();
                rd.read_line(&mut l).unwrap();
                if l == "end\n" {
                    return lines;
                }
                lines.push(l);
            }
        };
        assert_eq!(
            read_set(),
            [
                "begin\n",
                "route\troute 10.0.0.1/32\tannounce route 10.0.0.1/32\twithdraw route 10.0.0.1/32\n"
            ]
        );
        (&c).write_all(b"neighbor 10.99.0.1 up\ndone 1\ngarbage\n")
            .unwrap();
        link.publish(vec![r("route 10.0.0.1/32"), r("route 10.0.0.2/32")]);
        assert_eq!(read_set().len(), 3);
        let end = Instant::now() + Duration::from_secs(5);
        while link.status().commands_done == 0 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
        let st = link.status();
        assert!(st.connected);
        assert_eq!(st.neighbors["10.99.0.1"], "up");
        assert_eq!((st.commands_done, st.bad_lines), (1, 1));
        // Stopping hands over an empty set first.
        let t = std::thread::spawn(move || link.stop(true));
        assert_eq!(read_set(), ["begin\n"]);
        t.join().unwrap();
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
