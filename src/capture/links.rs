//! The network namespace's interfaces, read from the kernel over rtnetlink
//! (an RTM_GETLINK dump). sysfs would be simpler, but it shows the namespace
//! it was mounted in, which is not ours when the daemon is started inside a
//! namespace without a private mount of /sys.

use std::io;
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, send,
    socket,
};

/// One network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub ifindex: u32,
    pub name: String,
    /// ARPHRD_* hardware type.
    pub hatype: u16,
    /// IFF_UP.
    pub up: bool,
    /// The device this one is stacked on (VLAN, macvlan), if it is in this
    /// namespace.
    pub lower: Option<u32>,
    /// The bridge or bond this device is a port of.
    pub master: Option<u32>,
    /// The driver kind (`vlan`, `veth`, `bridge`, `bond`, ...), if any.
    pub kind: Option<String>,
}

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
const IFLA_IFNAME: u16 = 3;
const IFLA_LINK: u16 = 5;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_LINK_NETNSID: u16 = 37;
const IFF_UP: u32 = 1;
const NLA_TYPE_MASK: u16 = 0x3fff;

/// rtnetlink multicast group of link changes.
const RTMGRP_LINK: u32 = 1;

/// Tells whether the kernel announced a link change (an interface added,
/// removed, renamed, or going up or down) since it was last asked, so the
/// interface list is read again only when something changed.
#[derive(Debug)]
pub struct LinkWatch {
    fd: std::os::fd::OwnedFd,
    buf: Vec<u8>,
}

impl LinkWatch {
    pub fn new() -> io::Result<LinkWatch> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::NetlinkRoute,
        )?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, RTMGRP_LINK))?;
        Ok(LinkWatch {
            fd,
            buf: vec![0u8; 16 * 1024],
        })
    }

    /// Drains the announcements; true if there was any, or if some were
    /// lost (the socket overran), which calls for a fresh list too.
    pub fn changed(&mut self) -> bool {
        let mut changed = false;
        loop {
            match recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::MSG_DONTWAIT) {
                Ok(0) => return changed,
                Ok(_) => changed = true,
                Err(nix::errno::Errno::EAGAIN) => return changed,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return true,
            }
        }
    }
}

/// Lists the interfaces of the current network namespace.
pub fn list() -> io::Result<Vec<Link>> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )?;
    bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
    let seq: u32 = 1;
    let mut req = Vec::with_capacity(NLMSG_HDRLEN + IFINFOMSG_LEN);
    req.extend_from_slice(&((NLMSG_HDRLEN + IFINFOMSG_LEN) as u32).to_ne_bytes());
    req.extend_from_slice(&RTM_GETLINK.to_ne_bytes());
    req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req.extend_from_slice(&seq.to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes());
    req.extend_from_slice(&[0u8; IFINFOMSG_LEN]);
    send(fd.as_raw_fd(), &req, MsgFlags::empty())?;

    let mut links = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty())?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "netlink closed",
            ));
        }
        if parse_messages(&buf[..n], seq, &mut links)? {
            return Ok(links);
        }
    }
}

/// Parses one datagram of a dump; returns true at its end.
fn parse_messages(mut b: &[u8], seq: u32, out: &mut Vec<Link>) -> io::Result<bool> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed netlink message");
    while b.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes(b[0..4].try_into().map_err(|_| bad())?) as usize;
        let ty = u16::from_ne_bytes([b[4], b[5]]);
        let mseq = u32::from_ne_bytes(b[8..12].try_into().map_err(|_| bad())?);
        if len < NLMSG_HDRLEN || len > b.len() {
            return Err(bad());
        }
        let msg = &b[..len];
        if mseq == seq {
            match ty {
                NLMSG_DONE => return Ok(true),
                NLMSG_ERROR => {
                    let code = msg
                        .get(16..20)
                        .map(|e| i32::from_ne_bytes([e[0], e[1], e[2], e[3]]))
                        .unwrap_or(-(nix::errno::Errno::EIO as i32));
                    if code != 0 {
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                }
                RTM_NEWLINK => {
                    if let Some(l) = parse_link(&msg[NLMSG_HDRLEN..]) {
                        out.push(l);
                    }
                }
                _ => {}
            }
        }
        let aligned = (len + 3) & !3;
        b = b.get(aligned..).unwrap_or(&[]);
    }
    Ok(false)
}

fn parse_link(body: &[u8]) -> Option<Link> {
    if body.len() < IFINFOMSG_LEN {
        return None;
    }
    let hatype = u16::from_ne_bytes([body[2], body[3]]);
    let ifindex = i32::from_ne_bytes(body[4..8].try_into().ok()?);
    let flags = u32::from_ne_bytes(body[8..12].try_into().ok()?);
    let mut link = Link {
        ifindex: u32::try_from(ifindex).ok()?,
        name: String::new(),
        hatype,
        up: flags & IFF_UP != 0,
        lower: None,
        master: None,
        kind: None,
    };
    let mut lower = None;
    let mut foreign_lower = false;
    for (ty, data) in attrs(&body[IFINFOMSG_LEN..]) {
        match ty {
            IFLA_IFNAME => link.name = c_string(data),
            IFLA_LINK => lower = u32_attr(data),
            IFLA_MASTER => link.master = u32_attr(data),
            IFLA_LINK_NETNSID => foreign_lower = true,
            IFLA_LINKINFO => {
                for (ity, idata) in attrs(data) {
                    if ity == IFLA_INFO_KIND {
                        link.kind = Some(c_string(idata));
                    }
                }
            }
            _ => {}
        }
    }
    // IFLA_LINK names an index in another namespace when a netns id comes
    // with it (the peer of a veth pair, say): not a lower device of ours.
    if !foreign_lower && lower != Some(link.ifindex) {
        link.lower = lower.filter(|&l| l != 0);
    }
    if link.name.is_empty() {
        return None;
    }
    Some(link)
}

/// Iterates route attributes: (type, payload).
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([b[0], b[1]]));
        let ty = u16::from_ne_bytes([b[2], b[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > b.len() {
            return None;
        }
        let data = &b[4..len];
        let aligned = (len + 3) & !3;
        b = b.get(aligned..).unwrap_or(&[]);
        Some((ty, data))
    })
}

fn u32_attr(d: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(d.get(..4)?.try_into().ok()?))
}

fn c_string(d: &[u8]) -> String {
    let end = d.iter().position(|&c| c == 0).unwrap_or(d.len());
    String::from_utf8_lossy(&d[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(ty: u16, data: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&ty.to_ne_bytes());
        a.extend_from_slice(data);
        while a.len() % 4 != 0 {
            a.push(0);
        }
        a
    }

    fn newlink(seq: u32, ifindex: i32, hatype: u16, attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut body = vec![0u8, 0];
        body.extend_from_slice(&hatype.to_ne_bytes());
        body.extend_from_slice(&ifindex.to_ne_bytes());
        body.extend_from_slice(&IFF_UP.to_ne_bytes());
        body.extend_from_slice(&0u32.to_ne_bytes());
        for a in attrs {
            body.extend_from_slice(a);
        }
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&RTM_NEWLINK.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&body);
        m
    }

    fn done(seq: u32) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&20u32.to_ne_bytes());
        m.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&[0u8; 8]);
        m
    }

    #[test]
    fn parses_a_dump() {
        let mut d = newlink(1, 2, 1, &[attr(IFLA_IFNAME, b"eth0\0")]);
        d.extend(newlink(
            1,
            5,
            1,
            &[
                attr(IFLA_IFNAME, b"eth0.100\0"),
                attr(IFLA_LINK, &2u32.to_ne_bytes()),
                attr(IFLA_LINKINFO, &attr(IFLA_INFO_KIND, b"vlan\0")),
            ],
        ));
        d.extend(newlink(
            1,
            6,
            1,
            &[
                attr(IFLA_IFNAME, b"veth0\0"),
                attr(IFLA_LINK, &9u32.to_ne_bytes()),
                attr(IFLA_LINK_NETNSID, &0i32.to_ne_bytes()),
                attr(IFLA_MASTER, &7u32.to_ne_bytes()),
            ],
        ));
        d.extend(done(1));
        let mut out = Vec::new();
        assert!(parse_messages(&d, 1, &mut out).unwrap());
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].name, "eth0");
        assert_eq!(out[0].lower, None);
        assert_eq!(out[1].lower, Some(2));
        assert_eq!(out[1].kind.as_deref(), Some("vlan"));
        assert_eq!(
            out[2].lower, None,
            "a veth peer in another namespace is no lower device"
        );
        assert_eq!(out[2].master, Some(7));
    }

    #[test]
    fn other_sequence_numbers_are_ignored() {
        let mut d = newlink(9, 2, 1, &[attr(IFLA_IFNAME, b"eth0\0")]);
        d.extend(done(1));
        let mut out = Vec::new();
        assert!(parse_messages(&d, 1, &mut out).unwrap());
        assert!(out.is_empty());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut out = Vec::new();
        let mut d = newlink(1, 2, 1, &[attr(IFLA_IFNAME, b"eth0\0")]);
        d[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert!(parse_messages(&d, 1, &mut out).is_err());
        // Attribute lengths past the end are ignored.
        let mut d = newlink(1, 2, 1, &[attr(IFLA_IFNAME, b"eth0\0")]);
        let n = d.len();
        d[n - 8..n - 6].copy_from_slice(&200u16.to_ne_bytes());
        let _ = parse_messages(&d, 1, &mut out);
    }

    #[test]
    fn a_fresh_watch_reports_nothing() {
        let mut w = LinkWatch::new().expect("netlink multicast needs no privileges");
        assert!(!w.changed());
    }

    #[test]
    fn lists_this_namespace() {
        let links = list().expect("RTM_GETLINK works without privileges");
        assert!(
            links
                .iter()
                .any(|l| l.name == "lo" && l.hatype == tpacket::arphrd::LOOPBACK)
        );
    }
}
