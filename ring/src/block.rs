//! A block of the ring handed over by the kernel, and the frames in it.
//!
//! Everything here is safe code reading a byte slice: the kernel wrote the
//! block, but a bad offset in it can only end the iteration early (counted in
//! [`Frames::malformed`]), never read outside the block.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::sys::{self, block, frame};

/// One block of frames, owned by us until dropped.
#[derive(Debug)]
pub struct Block<'r> {
    /// The block from just after its status word to its end.
    bytes: &'r [u8],
    status: &'r AtomicU32,
    block_size: usize,
}

impl<'r> Block<'r> {
    pub(crate) fn new(bytes: &'r [u8], status: &'r AtomicU32, block_size: usize) -> Self {
        Block {
            bytes,
            status,
            block_size,
        }
    }

    /// Reads a u32 at an offset counted from the start of the block.
    fn u32_at(&self, offset: usize) -> u32 {
        read_u32(self.bytes, offset - block::AFTER_STATUS).unwrap_or(0)
    }

    /// Number of frames the kernel put in this block.
    pub fn num_packets(&self) -> u32 {
        self.u32_at(block::NUM_PKTS)
    }

    /// The kernel's sequence number of this block; consecutive blocks count up
    /// by one, so a gap means blocks were skipped.
    pub fn seq(&self) -> u64 {
        let off = block::SEQ_NUM - block::AFTER_STATUS;
        self.bytes
            .get(off..off + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_ne_bytes)
            .unwrap_or(0)
    }

    /// The frames in this block, in arrival order.
    pub fn frames(&self) -> Frames<'_> {
        let first = self.u32_at(block::OFFSET_TO_FIRST_PKT) as usize;
        let blk_len = (self.u32_at(block::BLK_LEN) as usize).min(self.block_size);
        Frames {
            block: self.bytes,
            next: first,
            end: blk_len,
            left: self.num_packets(),
            malformed: false,
        }
    }
}

impl Drop for Block<'_> {
    fn drop(&mut self) {
        // Release: our reads of the block happen before the kernel may
        // overwrite it.
        self.status.store(sys::TP_STATUS_KERNEL, Ordering::Release);
    }
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// What the kernel's link layer said about a frame (`sll_pkttype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    /// Addressed to this host.
    Host,
    Broadcast,
    Multicast,
    /// Addressed to another host (promiscuous mode, bridges, mirror ports).
    OtherHost,
    /// Sent by this host, forwarded packets included.
    Outgoing,
    /// Loopback and other values.
    Other(u8),
}

impl PacketType {
    /// Maps the `sll_pkttype` byte.
    pub fn from_raw(v: u8) -> Self {
        match v {
            0 => PacketType::Host,
            1 => PacketType::Broadcast,
            2 => PacketType::Multicast,
            3 => PacketType::OtherHost,
            4 => PacketType::Outgoing,
            other => PacketType::Other(other),
        }
    }

    /// True for packets leaving through this interface.
    pub fn is_outgoing(self) -> bool {
        self == PacketType::Outgoing
    }
}

/// A VLAN tag the NIC (or the kernel) stripped from the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanTag {
    /// The tag control information: priority, DEI and the 12-bit VLAN id.
    pub tci: u16,
    /// The tag protocol (0x8100 or 0x88a8), when the kernel reported it.
    pub tpid: Option<u16>,
}

impl VlanTag {
    /// The 12-bit VLAN id.
    pub fn id(&self) -> u16 {
        self.tci & 0x0fff
    }
}

/// One captured packet, borrowing its bytes from the block.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'b> {
    /// The captured bytes from the link-layer header on, at most the snap
    /// length.
    pub data: &'b [u8],
    /// The packet's length on the wire (before the snap length cut it).
    pub wire_len: u32,
    /// Kernel receive timestamp, seconds.
    pub ts_sec: u32,
    /// Kernel receive timestamp, nanoseconds.
    pub ts_nsec: u32,
    /// A VLAN tag stripped from the frame into its header, if any.
    pub vlan: Option<VlanTag>,
    /// The link-layer protocol (EtherType) as the kernel saw it.
    pub protocol: u16,
    /// Offset of the network header within `data`, as the kernel found it.
    pub net_offset: u16,
    /// The receiving or sending interface.
    pub ifindex: i32,
    /// The ARPHRD_* hardware type of the interface.
    pub hatype: u16,
    pub packet_type: PacketType,
    /// The kernel's flow hash of the packet.
    pub rxhash: u32,
    /// The kernel's TP_STATUS_* flags for this frame.
    pub status: u32,
}

impl Frame<'_> {
    /// True if this frame arrived while the kernel was dropping packets for
    /// lack of ring space (TP_STATUS_LOSING).
    pub fn losing(&self) -> bool {
        self.status & sys::TP_STATUS_LOSING != 0
    }

    /// True if the kernel could not copy the whole snap length
    /// (TP_STATUS_COPY).
    pub fn copy_truncated(&self) -> bool {
        self.status & sys::TP_STATUS_COPY != 0
    }

    /// True if the frame is a TCP super-packet merged by GRO (or not yet
    /// split by GSO): one frame for several segments on the wire, with one
    /// set of headers. Linux 6.3+ says so; older kernels never set it.
    pub fn gso_tcp(&self) -> bool {
        self.status & sys::TP_STATUS_GSO_TCP != 0
    }
}

/// Iterator over the frames of a block.
#[derive(Debug)]
pub struct Frames<'b> {
    block: &'b [u8],
    /// Offset of the next frame from the start of the block.
    next: usize,
    /// End of the used part of the block, from the start of the block.
    end: usize,
    left: u32,
    malformed: bool,
}

impl Frames<'_> {
    /// True if iteration stopped early on an offset pointing outside the
    /// block; the remaining frames of the block were not read.
    pub fn malformed(&self) -> bool {
        self.malformed
    }

    /// Frames the block announced but iteration did not reach.
    pub fn remaining(&self) -> u32 {
        self.left
    }
}

impl<'b> Iterator for Frames<'b> {
    type Item = Frame<'b>;

    #[inline]
    fn next(&mut self) -> Option<Frame<'b>> {
        if self.left == 0 || self.malformed {
            return None;
        }
        let Some((f, next_offset)) = parse_frame(self.block, self.next, self.end) else {
            self.malformed = true;
            return None;
        };
        self.left -= 1;
        if self.left > 0 {
            if next_offset == 0 {
                self.malformed = true;
            } else {
                self.next += next_offset as usize;
                // The next frame was written by the CPU that received it:
                // start fetching its header while this one is counted.
                if let Some(b) = self
                    .block
                    .get(self.next.saturating_sub(crate::sys::block::AFTER_STATUS)..)
                {
                    prefetch(b);
                }
            }
        }
        Some(f)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left as usize))
    }
}

/// Cache lines of a frame to fetch ahead, as offsets from its start: the
/// frame header and link-layer address (0), the link, IP and first
/// transport bytes (64, 128: the kernel puts the network header at 96 for
/// Ethernet), and the rest of a transport header behind VLAN tags or IPv6
/// extension headers (192).
const PREFETCH_LINES: [usize; 4] = [0, 64, 128, 192];

/// Hints the CPU to load the first cache lines of `b`.
#[inline(always)]
fn prefetch(b: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let p = b.as_ptr().cast::<i8>();
        for off in PREFETCH_LINES {
            // SAFETY: prefetching is a hint that never faults and has no
            // effect on memory; SSE, which it needs, is part of the x86_64
            // baseline.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = b;
}

/// Parses the frame at `at` (from the start of the block). Returns the frame
/// and the kernel's offset to the next one.
#[inline]
fn parse_frame(block: &[u8], at: usize, end: usize) -> Option<(Frame<'_>, u32)> {
    // Offsets in the block are counted from its start; our slice begins after
    // the status word.
    let base = at.checked_sub(block::AFTER_STATUS)?;
    if at + frame::META_LEN > end {
        return None;
    }
    let meta: &[u8; frame::META_LEN] = block.get(base..base + frame::META_LEN)?.try_into().ok()?;
    let next_offset = u32::from_ne_bytes(meta_arr(meta, frame::NEXT_OFFSET));
    let snaplen = u32::from_ne_bytes(meta_arr(meta, frame::SNAPLEN)) as usize;
    let mac = u16::from_ne_bytes(meta_arr2(meta, frame::MAC)) as usize;
    let net = u16::from_ne_bytes(meta_arr2(meta, frame::NET));
    let status = u32::from_ne_bytes(meta_arr(meta, frame::STATUS));
    if at + mac + snaplen > end || mac < frame::META_LEN {
        return None;
    }
    let data = block.get(base + mac..base + mac + snaplen)?;
    let vlan = if status & sys::TP_STATUS_VLAN_VALID != 0 {
        let tci = u32::from_ne_bytes(meta_arr(meta, frame::VLAN_TCI)) as u16;
        let tpid = (status & sys::TP_STATUS_VLAN_TPID_VALID != 0)
            .then(|| u16::from_ne_bytes(meta_arr2(meta, frame::VLAN_TPID)));
        Some(VlanTag { tci, tpid })
    } else {
        None
    };
    let f = Frame {
        data,
        wire_len: u32::from_ne_bytes(meta_arr(meta, frame::LEN)),
        ts_sec: u32::from_ne_bytes(meta_arr(meta, frame::SEC)),
        ts_nsec: u32::from_ne_bytes(meta_arr(meta, frame::NSEC)),
        vlan,
        protocol: u16::from_be_bytes(meta_arr2(meta, frame::SLL_PROTOCOL)),
        net_offset: (net as usize).saturating_sub(mac) as u16,
        ifindex: i32::from_ne_bytes(meta_arr(meta, frame::SLL_IFINDEX)),
        hatype: u16::from_ne_bytes(meta_arr2(meta, frame::SLL_HATYPE)),
        packet_type: PacketType::from_raw(meta[frame::SLL_PKTTYPE]),
        rxhash: u32::from_ne_bytes(meta_arr(meta, frame::RXHASH)),
        status,
    };
    Some((f, next_offset))
}

#[inline(always)]
fn meta_arr(meta: &[u8; frame::META_LEN], at: usize) -> [u8; 4] {
    [meta[at], meta[at + 1], meta[at + 2], meta[at + 3]]
}

#[inline(always)]
fn meta_arr2(meta: &[u8; frame::META_LEN], at: usize) -> [u8; 2] {
    [meta[at], meta[at + 1]]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a block image the way the kernel lays it out, for the reader.
    struct BlockImage {
        bytes: Vec<u8>,
        cursor: usize,
        last_frame: Option<usize>,
        count: u32,
    }

    impl BlockImage {
        fn new(size: usize) -> Self {
            BlockImage {
                bytes: vec![0; size],
                cursor: block::HEADER_LEN,
                last_frame: None,
                count: 0,
            }
        }

        fn put_u32(&mut self, at: usize, v: u32) {
            self.bytes[at..at + 4].copy_from_slice(&v.to_ne_bytes());
        }

        fn put_u16(&mut self, at: usize, v: u16) {
            self.bytes[at..at + 2].copy_from_slice(&v.to_ne_bytes());
        }

        fn push(&mut self, data: &[u8], wire_len: u32, vlan: Option<u16>, pkttype: u8) {
            let at = self.cursor;
            let mac = 80usize; // META_LEN rounded up, as the kernel aligns
            self.put_u32(at + frame::SNAPLEN, data.len() as u32);
            self.put_u32(at + frame::LEN, wire_len);
            self.put_u32(at + frame::SEC, 7);
            self.put_u32(at + frame::NSEC, 9);
            let mut status = sys::TP_STATUS_USER;
            if let Some(tci) = vlan {
                status |= sys::TP_STATUS_VLAN_VALID;
                self.put_u32(at + frame::VLAN_TCI, u32::from(tci));
            }
            self.put_u32(at + frame::STATUS, status);
            self.put_u16(at + frame::MAC, mac as u16);
            self.put_u16(at + frame::NET, (mac + 14) as u16);
            self.bytes[at + frame::SLL_PROTOCOL..at + frame::SLL_PROTOCOL + 2]
                .copy_from_slice(&0x0800u16.to_be_bytes());
            self.put_u32(at + frame::SLL_IFINDEX, 3);
            self.put_u16(at + frame::SLL_HATYPE, 1);
            self.bytes[at + frame::SLL_PKTTYPE] = pkttype;
            self.bytes[at + mac..at + mac + data.len()].copy_from_slice(data);
            if let Some(prev) = self.last_frame {
                self.put_u32(prev + frame::NEXT_OFFSET, (at - prev) as u32);
            }
            self.last_frame = Some(at);
            self.cursor = (at + mac + data.len()).next_multiple_of(16);
            self.count += 1;
        }

        fn finish(mut self) -> Vec<u8> {
            self.put_u32(block::NUM_PKTS, self.count);
            self.put_u32(block::OFFSET_TO_FIRST_PKT, block::HEADER_LEN as u32);
            self.put_u32(block::BLK_LEN, self.cursor as u32);
            self.put_u32(block::STATUS, sys::TP_STATUS_USER);
            self.bytes
        }
    }

    fn with_block<R>(img: &[u8], f: impl FnOnce(&Block<'_>) -> R) -> R {
        let status = AtomicU32::new(sys::TP_STATUS_USER);
        let b = Block::new(&img[block::AFTER_STATUS..], &status, img.len());
        let r = f(&b);
        drop(b);
        assert_eq!(status.load(Ordering::Relaxed), sys::TP_STATUS_KERNEL);
        r
    }

    #[test]
    fn walks_frames_in_order() {
        let mut img = BlockImage::new(4096);
        img.push(&[1u8; 60], 60, None, 0);
        img.push(&[2u8; 100], 1514, Some(0x2064), 4);
        img.push(&[3u8; 20], 20, None, 3);
        let img = img.finish();
        with_block(&img, |b| {
            assert_eq!(b.num_packets(), 3);
            let mut it = b.frames();
            let f: Vec<_> = it.by_ref().collect();
            assert!(!it.malformed());
            assert_eq!(f.len(), 3);
            assert_eq!(f[0].data, &[1u8; 60][..]);
            assert_eq!(f[1].wire_len, 1514);
            assert_eq!(f[1].data.len(), 100);
            assert_eq!(f[1].vlan.map(|v| v.id()), Some(100));
            assert_eq!(f[1].packet_type, PacketType::Outgoing);
            assert_eq!(f[2].packet_type, PacketType::OtherHost);
            assert_eq!(f[0].protocol, 0x0800);
            assert_eq!(f[0].net_offset, 14);
            assert_eq!(f[0].ifindex, 3);
            assert_eq!((f[0].ts_sec, f[0].ts_nsec), (7, 9));
        });
    }

    #[test]
    fn next_offset_out_of_block_stops_iteration() {
        let mut img = BlockImage::new(4096);
        img.push(&[1u8; 60], 60, None, 0);
        img.push(&[2u8; 60], 60, None, 0);
        let mut img = img.finish();
        // Point the first frame's next offset far outside the block.
        let at = block::HEADER_LEN + frame::NEXT_OFFSET;
        img[at..at + 4].copy_from_slice(&100_000u32.to_ne_bytes());
        with_block(&img, |b| {
            let mut it = b.frames();
            assert_eq!(it.by_ref().count(), 1);
            assert!(it.malformed());
        });
    }

    #[test]
    fn snaplen_past_block_end_is_rejected() {
        let mut img = BlockImage::new(4096);
        img.push(&[1u8; 60], 60, None, 0);
        let mut img = img.finish();
        let at = block::HEADER_LEN + frame::SNAPLEN;
        img[at..at + 4].copy_from_slice(&u32::MAX.to_ne_bytes());
        with_block(&img, |b| {
            let mut it = b.frames();
            assert_eq!(it.by_ref().count(), 0);
            assert!(it.malformed());
        });
    }

    #[test]
    fn more_packets_announced_than_chained() {
        let mut img = BlockImage::new(4096);
        img.push(&[1u8; 60], 60, None, 0);
        let mut img = img.finish();
        img[block::NUM_PKTS..block::NUM_PKTS + 4].copy_from_slice(&5u32.to_ne_bytes());
        with_block(&img, |b| {
            let mut it = b.frames();
            assert_eq!(it.by_ref().count(), 1);
            assert!(it.malformed());
        });
    }

    #[test]
    fn prefetch_covers_every_line_up_to_the_transport_header() {
        // Where the kernel puts an Ethernet frame's network header:
        // TPACKET_ALIGN(tp_hdrlen + 16), tp_hdrlen being the frame header
        // plus the sockaddr_ll.
        let net = (frame::META_LEN + 16).next_multiple_of(16);
        // IPv4 or IPv6 header and a TCP header with options, behind a VLAN
        // tag left inline.
        let end = net + 4 + 40 + 60;
        for line in (0..end).step_by(64) {
            assert!(
                PREFETCH_LINES.contains(&(line / 64 * 64)),
                "line at {line} is not fetched ahead: {PREFETCH_LINES:?}"
            );
        }
    }

    #[test]
    fn gso_flag_is_read_from_the_frame_status() {
        let mut img = BlockImage::new(4096);
        img.push(&[1u8; 60], 60, None, 0);
        let mut img = img.finish();
        let at = block::HEADER_LEN + frame::STATUS;
        let st = sys::TP_STATUS_USER | sys::TP_STATUS_GSO_TCP;
        img[at..at + 4].copy_from_slice(&st.to_ne_bytes());
        with_block(&img, |b| {
            let f = b.frames().next().unwrap();
            assert!(f.gso_tcp());
        });
    }

    #[test]
    fn empty_block_has_no_frames() {
        let img = BlockImage::new(4096).finish();
        with_block(&img, |b| assert_eq!(b.frames().count(), 0));
    }
}
