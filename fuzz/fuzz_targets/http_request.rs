//! HTTP requests from anyone who can reach the port: the target (path and
//! query string) and the Authorization header, against a snapshot with
//! hosts and an alert. A status, never a panic; 5xx never comes from a
//! request alone.
#![no_main]

use std::sync::OnceLock;

use hyper::HeaderMap;
use hyper::header::{AUTHORIZATION, HeaderValue};
use libfuzzer_sys::fuzz_target;
use trafficalerted::aggregator::RuntimeInfo;
use trafficalerted::config::{Auth, Config};
use trafficalerted::http::{Access, probe};
use trafficalerted::snapshot::{DestView, HostView, Snapshot};
use trafficalerted::wire::Addr;

fn snapshot() -> &'static Snapshot {
    static SNAP: OnceLock<Snapshot> = OnceLock::new();
    SNAP.get_or_init(|| {
        let mut s = Snapshot::empty(&Config::default(), RuntimeInfo::default());
        s.hosts = std::sync::Arc::new(
            (1..=50u8)
                .map(|n| HostView {
                    addr: if n % 2 == 0 {
                        Addr::from_v4([10, 0, 0, n])
                    } else {
                        Addr::from_v6([0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, n])
                    },
                    sent_bytes: u64::from(n) * 1000,
                    sent_packets: u64::from(n),
                    recv_bytes: 0,
                    recv_packets: 0,
                    contacted: u32::from(n),
                    ports: 0,
                    alerts: u32::from(n % 4),
                    destinations: vec![DestView {
                        addr: Addr::from_v4([10, 9, 9, n]),
                        bytes: 1,
                        packets: 1,
                    }],
                })
                .collect(),
        );
        s
    })
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let (target, auth) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let Ok(target) = std::str::from_utf8(target) else {
        return;
    };
    let access = match mode % 3 {
        0 => Access::new(None),
        1 => Access::new(Some(&Auth::Bearer("t0ken".into()))),
        _ => Access::new(Some(&Auth::Basic {
            user: "ops".into(),
            password: "pw".into(),
        })),
    };
    let mut headers = HeaderMap::new();
    if let Some(v) = auth.and_then(|a| HeaderValue::from_bytes(a).ok()) {
        headers.insert(AUTHORIZATION, v);
    }
    let status = probe(target, &headers, &access, snapshot());
    assert!((200..500).contains(&status), "{status} for {target:?}");
});
