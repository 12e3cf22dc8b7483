//! The workers' side of attack capture: frames to (or from) the subjects
//! the aggregator names are copied out of the ring into the shard, and
//! handed over with it at the end of the tick.
//!
//! Nothing here locks, calls the kernel or allocates once the shard's
//! buffers have grown: a frame is one comparison per wanted subject and a
//! copy into a buffer kept across ticks; a shard holds at most
//! [`MAX_FRAMES`] frames and [`MAX_BYTES`] bytes, and says where it had to
//! stop.

use std::sync::Arc;

use crate::wire::{Addr, LinkType, Summary};

/// Most frames one shard carries per tick.
pub const MAX_FRAMES: usize = 8192;
/// Most bytes of frames one shard carries per tick.
pub const MAX_BYTES: usize = 16 << 20;

/// One subject whose packets are wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    /// The alert.
    pub id: u64,
    pub subject: Addr,
    /// Packets toward the subject (a victim); else from it.
    pub toward: bool,
}

/// What the workers capture now, as the aggregator pinned it.
pub type List = Arc<Vec<Wanted>>;

/// A frame copied out of the ring: its bytes are `bytes[start..start+len]`
/// of the shard's [`Captured`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub id: u64,
    /// Kernel receive time, ns since the Unix epoch.
    pub ts_ns: u64,
    pub wire_len: u32,
    pub link: LinkType,
    pub start: u32,
    pub len: u32,
}

/// What one shard carries of the captures for one tick.
#[derive(Debug, Default)]
pub struct Captured {
    pub frames: Vec<Copied>,
    pub bytes: Vec<u8>,
    /// Per wanted alert, the latest receive time (ns, the frames' own
    /// clock) of the frames this worker had read before it started copying
    /// for it: every frame it reads received later than that, it copies.
    pub since: Vec<(u64, u64)>,
    /// The shard filled up: frames received from this time on (ns) are
    /// missing from it.
    pub full_at: Option<u64>,
    /// Every frame this worker reads after the handover was received after
    /// this (ns): frames up to it from all workers can be put in order.
    pub read_to: u64,
}

impl Captured {
    /// Empties it, keeping the buffers.
    pub fn clear(&mut self) {
        self.frames.clear();
        self.bytes.clear();
        self.since.clear();
        self.full_at = None;
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty() && self.since.is_empty() && self.full_at.is_none()
    }

    /// A frame's bytes.
    pub fn data(&self, c: &Copied) -> &[u8] {
        &self.bytes[c.start as usize..(c.start + c.len) as usize]
    }
}

/// A worker's capture state, kept across ticks.
#[derive(Debug, Default)]
pub struct Taker {
    list: Option<List>,
    since: Vec<(u64, u64)>,
    /// The latest receive time of the frames read so far.
    seen_ns: u64,
}

/// What of a ring frame a copy needs.
#[derive(Debug, Clone, Copy)]
pub struct RawFrame<'a> {
    pub data: &'a [u8],
    pub wire_len: u32,
    pub ts_ns: u64,
    /// A VLAN tag the kernel took out of the frame: put back, as libpcap
    /// does, so the copy is the frame as it was on the wire.
    pub vlan: Option<(u16, u16)>,
}

impl Taker {
    /// True while some subject is wanted: the only test a frame pays
    /// otherwise.
    #[inline]
    pub fn active(&self) -> bool {
        self.list.is_some()
    }

    /// Notes the receive time of the last frame of a block read: the
    /// frames' own clock (the kernel's, which need not be the wall clock:
    /// a forwarded packet can carry its sender's delivery time).
    #[inline]
    pub fn seen(&mut self, ts_ns: u64) {
        self.seen_ns = self.seen_ns.max(ts_ns);
    }

    /// Takes the aggregator's new list: subjects already wanted keep their
    /// start, new ones start after the frames read so far.
    pub fn set(&mut self, list: Option<List>) {
        let now_ns = self.seen_ns;
        let list = list.filter(|l| !l.is_empty());
        let same = match (&self.list, &list) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        if same {
            return;
        }
        let mut since = Vec::new();
        if let Some(l) = &list {
            for w in l.iter() {
                let s = self
                    .since
                    .iter()
                    .find(|(id, _)| *id == w.id)
                    .map_or(now_ns, |&(_, s)| s);
                since.push((w.id, s));
            }
        }
        self.since = since;
        self.list = list;
    }

    /// Says in the shard since when each wanted subject is copied, and
    /// `read_to`: see [`Captured::read_to`].
    pub fn report(&self, out: &mut Captured, read_to: u64) {
        out.since.clear();
        out.since.extend_from_slice(&self.since);
        out.read_to = read_to;
    }

    /// Copies the frame if it is to or from a wanted subject.
    #[inline]
    pub fn take(&self, s: &Summary, f: &RawFrame<'_>, link: LinkType, out: &mut Captured) {
        let Some(list) = &self.list else { return };
        let Some(w) = list.iter().find(|w| {
            if w.toward {
                s.dst == w.subject
            } else {
                s.src == w.subject
            }
        }) else {
            return;
        };
        if out.full_at.is_some() {
            return;
        }
        let vlan = match (link, f.vlan) {
            (LinkType::Ethernet, Some(v)) if f.data.len() >= 12 => Some(v),
            _ => None,
        };
        let len = f.data.len() + if vlan.is_some() { 4 } else { 0 };
        if out.frames.len() >= MAX_FRAMES || out.bytes.len() + len > MAX_BYTES {
            out.full_at = Some(f.ts_ns);
            return;
        }
        let start = out.bytes.len();
        match vlan {
            Some((tpid, tci)) => {
                out.bytes.extend_from_slice(&f.data[..12]);
                out.bytes.extend_from_slice(&tpid.to_be_bytes());
                out.bytes.extend_from_slice(&tci.to_be_bytes());
                out.bytes.extend_from_slice(&f.data[12..]);
            }
            None => out.bytes.extend_from_slice(f.data),
        }
        out.frames.push(Copied {
            id: w.id,
            ts_ns: f.ts_ns,
            wire_len: f.wire_len.max(len as u32),
            link,
            start: start as u32,
            len: len as u32,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Decap, Meta};

    fn frame(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let mut ip = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0];
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        ip.extend_from_slice(&[0x9c, 0x40, 0, 53, 0, 8, 0, 0]);
        f.extend_from_slice(&ip);
        f
    }

    fn summary(f: &[u8]) -> Summary {
        crate::wire::parse_with(
            LinkType::Ethernet,
            f,
            Meta {
                wire_len: f.len() as u32,
                ..Meta::default()
            },
            &Decap::default(),
        )
        .unwrap()
    }

    #[test]
    fn frames_to_a_victim_are_copied_with_their_vlan_tag_and_the_start_is_kept() {
        let mut t = Taker::default();
        let mut out = Captured::default();
        let victim = Addr::from_v4([10, 2, 0, 2]);
        t.seen(100);
        t.set(Some(Arc::new(vec![Wanted {
            id: 7,
            subject: victim,
            toward: true,
        }])));
        assert!(t.active());
        let to = frame([198, 51, 100, 1], [10, 2, 0, 2]);
        let from = frame([10, 2, 0, 2], [198, 51, 100, 1]);
        for (f, vlan) in [(&to, None), (&from, None), (&to, Some((0x8100, 5)))] {
            t.take(
                &summary(f),
                &RawFrame {
                    data: f,
                    wire_len: f.len() as u32,
                    ts_ns: 200,
                    vlan,
                },
                LinkType::Ethernet,
                &mut out,
            );
        }
        assert_eq!(out.frames.len(), 2, "only the frames toward the victim");
        assert_eq!(out.data(&out.frames[0]), &to[..]);
        let tagged = out.data(&out.frames[1]);
        assert_eq!(&tagged[12..16], &[0x81, 0x00, 0, 5]);
        assert_eq!(&tagged[16..], &to[12..]);
        // A new list keeps the start of a subject still in it.
        t.seen(300);
        t.set(Some(Arc::new(vec![
            Wanted {
                id: 7,
                subject: victim,
                toward: true,
            },
            Wanted {
                id: 8,
                subject: victim,
                toward: false,
            },
        ])));
        t.report(&mut out, 300);
        assert_eq!(out.since, [(7, 100), (8, 300)]);
        t.set(None);
        assert!(!t.active());
    }

    #[test]
    fn a_full_shard_says_from_when_frames_are_missing() {
        let mut t = Taker::default();
        let mut out = Captured::default();
        t.set(Some(Arc::new(vec![Wanted {
            id: 1,
            subject: Addr::from_v4([10, 2, 0, 2]),
            toward: true,
        }])));
        let f = frame([1, 1, 1, 1], [10, 2, 0, 2]);
        let s = summary(&f);
        for ts in 0..(MAX_FRAMES as u64 + 10) {
            t.take(
                &s,
                &RawFrame {
                    data: &f,
                    wire_len: f.len() as u32,
                    ts_ns: ts,
                    vlan: None,
                },
                LinkType::Ethernet,
                &mut out,
            );
        }
        assert_eq!(out.frames.len(), MAX_FRAMES);
        assert_eq!(out.full_at, Some(MAX_FRAMES as u64));
    }
}
