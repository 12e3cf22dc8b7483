//! `trafficalerted exabgp-bridge`: the process ExaBGP runs (its `process`
//! API) to carry the daemon's routes.
//!
//! It connects to the daemon's socket and keeps what ExaBGP announced for
//! it; each wanted set from the daemon is compared with that, and only the
//! difference is written to ExaBGP. It outlives daemon restarts (ExaBGP
//! keeps the routes meanwhile, and the daemon's first set after
//! reconnecting withdraws what it no longer wants); it ends when ExaBGP
//! does. ExaBGP's acknowledgements and session changes go back to the
//! daemon.

use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::exabgp::Route;
use crate::sinks::lines::{self, Line};

/// Longest line taken from the daemon or from ExaBGP.
const MAX_LINE: usize = 64 * 1024;

/// Options of the bridge.
#[derive(Debug, Clone)]
pub struct Options {
    pub socket: PathBuf,
    /// Withdraw everything when the daemon has been away this long
    /// (`None`: keep the routes until it returns).
    pub orphan_after: Option<Duration>,
}

/// What the bridge shares between its threads.
#[derive(Default)]
struct Shared {
    daemon: Option<UnixStream>,
    neighbors: BTreeMap<String, String>,
}

type Out = Arc<Mutex<std::io::Stdout>>;

fn say(shared: &Mutex<Shared>, line: &str) {
    let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(d) = &mut s.daemon
        && d.write_all(line.as_bytes()).is_err()
    {
        s.daemon = None;
    }
}

/// Writes commands to ExaBGP; ExaBGP gone ends the bridge.
fn command(out: &Out, lines: &[&str]) {
    let mut o = out.lock().unwrap_or_else(|p| p.into_inner());
    for l in lines {
        if writeln!(o, "{l}").is_err() {
            eprintln!("exabgp-bridge: ExaBGP closed its end; exiting");
            std::process::exit(0);
        }
    }
    if o.flush().is_err() {
        std::process::exit(0);
    }
}

/// Reads what ExaBGP writes: acknowledgements and, with
/// `neighbor-changes`, JSON session states.
fn from_exabgp(shared: Arc<Mutex<Shared>>) {
    let stdin = std::io::stdin();
    let mut r = BufReader::new(stdin.lock());
    let mut line = Vec::new();
    loop {
        match lines::next(&mut r, &mut line, MAX_LINE) {
            Ok((Line::Whole, _)) => {}
            Ok((Line::TooLong, _)) => continue,
            Ok((Line::End | Line::Torn, _)) | Err(_) => {
                eprintln!("exabgp-bridge: ExaBGP went away; exiting");
                std::process::exit(0);
            }
        }
        let text = String::from_utf8_lossy(&line);
        let t = text.trim();
        match t {
            "done" => say(&shared, "done 1\n"),
            "error" => say(&shared, "failed 1\n"),
            "shutdown" => std::process::exit(0),
            _ => {
                if let Some((peer, state)) = session_state(t) {
                    {
                        let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
                        s.neighbors.insert(peer.clone(), state.clone());
                    }
                    say(&shared, &format!("neighbor {peer} {state}\n"));
                }
            }
        }
    }
}

/// A session change from ExaBGP's JSON encoder.
pub fn session_state(line: &str) -> Option<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    if v.get("type")?.as_str()? != "state" {
        return None;
    }
    let n = v.get("neighbor")?;
    let peer: std::net::IpAddr = n.get("address")?.get("peer")?.as_str()?.parse().ok()?;
    let state = n.get("state")?.as_str()?;
    if state.is_empty()
        || state.len() > 32
        || !state
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return None;
    }
    Some((peer.to_string(), state.to_string()))
}

/// One line of the daemon's set.
pub fn route_line(l: &str) -> Option<Route> {
    let mut f = l.strip_prefix("route\t")?.split('\t');
    let (key, announce, withdraw) = (f.next()?, f.next()?, f.next()?);
    if f.next().is_some()
        || !announce.starts_with("announce ")
        || !withdraw.starts_with("withdraw ")
        || [key, announce, withdraw]
            .iter()
            .any(|s| s.bytes().any(|b| b.is_ascii_control()))
    {
        return None;
    }
    Some(Route {
        key: key.into(),
        announce: announce.into(),
        withdraw: withdraw.into(),
    })
}

/// The commands that turn `had` into `wanted`: withdrawals first, then
/// announcements of what is new or changed (a changed route is announced
/// again, which replaces it: no withdrawal, no flap).
pub fn diff(had: &BTreeMap<String, Route>, wanted: &BTreeMap<String, Route>) -> Vec<String> {
    let mut out: Vec<String> = had
        .iter()
        .filter(|(k, _)| !wanted.contains_key(*k))
        .map(|(_, r)| r.withdraw.clone())
        .collect();
    out.extend(
        wanted
            .iter()
            .filter(|(k, r)| had.get(*k) != Some(r))
            .map(|(_, r)| r.announce.clone()),
    );
    out
}

/// Runs the bridge until ExaBGP ends it.
pub fn run(opts: &Options) -> ! {
    let shared = Arc::new(Mutex::new(Shared::default()));
    let out: Out = Arc::new(Mutex::new(std::io::stdout()));
    {
        let s = shared.clone();
        std::thread::spawn(move || from_exabgp(s));
    }
    let mut announced: BTreeMap<String, Route> = BTreeMap::new();
    let mut away_since = Instant::now();
    let mut said_waiting = false;
    loop {
        let conn = match UnixStream::connect(&opts.socket) {
            Ok(c) => c,
            Err(e) => {
                if !said_waiting {
                    eprintln!(
                        "exabgp-bridge: cannot reach the daemon at {} ({e}); retrying every second",
                        opts.socket.display()
                    );
                    said_waiting = true;
                }
                if let Some(after) = opts.orphan_after
                    && !announced.is_empty()
                    && away_since.elapsed() >= after
                {
                    eprintln!(
                        "exabgp-bridge: the daemon has been away for {}s; withdrawing its {} route(s)",
                        after.as_secs(),
                        announced.len()
                    );
                    let w: Vec<String> = announced.values().map(|r| r.withdraw.clone()).collect();
                    command(&out, &w.iter().map(String::as_str).collect::<Vec<_>>());
                    announced.clear();
                }
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        said_waiting = false;
        eprintln!("exabgp-bridge: connected to the daemon");
        let Ok(writer) = conn.try_clone() else {
            continue;
        };
        {
            let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
            s.daemon = Some(writer);
            let states: Vec<String> = s
                .neighbors
                .iter()
                .map(|(a, st)| format!("neighbor {a} {st}\n"))
                .collect();
            drop(s);
            for l in states {
                say(&shared, &l);
            }
        }
        let mut r = BufReader::new(conn);
        let mut line = Vec::new();
        let mut set: Option<BTreeMap<String, Route>> = None;
        loop {
            match lines::next(&mut r, &mut line, MAX_LINE) {
                Ok((Line::Whole, _)) => {}
                Ok((Line::TooLong, _)) => {
                    eprintln!("exabgp-bridge: ignoring an overlong line from the daemon");
                    continue;
                }
                Ok((Line::End | Line::Torn, _)) | Err(_) => break,
            }
            let Ok(l) = std::str::from_utf8(&line) else {
                continue;
            };
            let l = l.trim_end_matches('\n');
            match l {
                "begin" => set = Some(BTreeMap::new()),
                "end" => {
                    let Some(wanted) = set.take() else { continue };
                    let cmds = diff(&announced, &wanted);
                    command(&out, &cmds.iter().map(String::as_str).collect::<Vec<_>>());
                    announced = wanted;
                }
                _ => match (route_line(l), set.as_mut()) {
                    (Some(route), Some(s)) => {
                        s.insert(route.key.clone(), route);
                    }
                    _ => eprintln!("exabgp-bridge: ignoring a line from the daemon: {l:?}"),
                },
            }
        }
        shared.lock().unwrap_or_else(|p| p.into_inner()).daemon = None;
        away_since = Instant::now();
        eprintln!(
            "exabgp-bridge: the daemon went away; keeping its {} route(s) until it returns",
            announced.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(k: &str, attrs: &str) -> (String, Route) {
        (
            k.to_string(),
            Route {
                key: k.into(),
                announce: format!("announce {k} {attrs}"),
                withdraw: format!("withdraw {k}"),
            },
        )
    }

    #[test]
    fn only_the_difference_goes_to_exabgp_and_a_changed_route_is_replaced_not_withdrawn() {
        let had: BTreeMap<_, _> = [r("route a", "x"), r("route b", "x"), r("route c", "x")].into();
        let wanted: BTreeMap<_, _> =
            [r("route b", "x"), r("route c", "y"), r("route d", "x")].into();
        assert_eq!(
            diff(&had, &wanted),
            [
                "withdraw route a",
                "announce route c y",
                "announce route d x"
            ]
        );
        assert!(diff(&wanted, &wanted).is_empty());
    }

    #[test]
    fn exabgp_session_changes_and_daemon_lines_are_read_strictly() {
        let up = r#"{ "exabgp": "4.0.1", "time": 1.0, "type": "state", "neighbor": { "address": { "local": "10.99.0.2", "peer": "10.99.0.1" }, "asn": { "local": 65002, "peer": 65001 } , "state": "up" } }"#;
        assert_eq!(session_state(up), Some(("10.99.0.1".into(), "up".into())));
        assert_eq!(session_state(r#"{"type":"update"}"#), None);
        assert_eq!(session_state("done"), None);
        assert_eq!(
            session_state(r#"{"type":"state","neighbor":{"address":{"peer":"x"},"state":"up"}}"#),
            None
        );
        assert!(route_line("route\tk\tannounce k\twithdraw k").is_some());
        assert!(route_line("route\tk\tneighbor 1.2.3.4 teardown 4\twithdraw k").is_none());
        assert!(route_line("route\tk\tannounce k\rx\twithdraw k").is_none());
        assert!(route_line("route\tk\tannounce k").is_none());
    }
}
