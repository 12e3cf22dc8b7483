//! The receive ring: one AF_PACKET socket with a TPACKET_V3 ring mapped into
//! our address space, handed out one block at a time.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use memmap2::{MmapOptions, MmapRaw};

use crate::block::Block;
use crate::sys::{self, SockFilter, TpacketReq3, TpacketStatsV3};
use crate::{Error, Result};

/// How the kernel spreads packets over the members of a fanout group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanoutMode {
    /// By flow hash: both directions of a flow land on the same member.
    Hash,
    /// Round robin.
    LoadBalance,
    /// By the CPU that received the packet.
    Cpu,
}

impl FanoutMode {
    fn kernel_type(self) -> u32 {
        match self {
            FanoutMode::Hash => sys::PACKET_FANOUT_HASH,
            FanoutMode::LoadBalance => sys::PACKET_FANOUT_LB,
            FanoutMode::Cpu => sys::PACKET_FANOUT_CPU,
        }
    }
}

/// Which fanout group a ring joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fanout {
    /// Start a new group; the kernel picks an id no other process uses.
    /// Read it back with [`Ring::fanout_group`] and pass it to the others.
    New(FanoutMode),
    /// Join the group with this id.
    Join(FanoutMode, u16),
}

/// Geometry and options of one ring.
#[derive(Debug, Clone)]
pub struct RingConfig {
    /// Bytes per block: a power of two, at least one page.
    pub block_size: u32,
    /// Number of blocks.
    pub block_count: u32,
    /// How long the kernel keeps a partly filled block before handing it
    /// over, in milliseconds (at least 1).
    pub retire_timeout_ms: u32,
    /// Bytes of each packet copied into the ring (the rest is only counted
    /// in the original length).
    pub snaplen: u32,
    /// Ask the kernel not to deliver packets this host sends
    /// (PACKET_IGNORE_OUTGOING, Linux 4.20+, and for a fanout group
    /// PACKET_FANOUT_FLAG_IGNORE_OUTGOING, Linux 6.2+). Whether it does is
    /// [`Ring::ignores_outgoing`]: callers that must not see outgoing
    /// packets check [`Frame::packet_type`](crate::Frame) as well.
    pub ignore_outgoing: bool,
    /// Share the interface with other rings.
    pub fanout: Option<Fanout>,
}

impl RingConfig {
    /// Bytes of memory the ring maps.
    pub fn memory(&self) -> u64 {
        u64::from(self.block_size) * u64::from(self.block_count)
    }

    fn validate(&self) -> Result<()> {
        let page = page_size();
        let bs = self.block_size as usize;
        if bs < page || !bs.is_power_of_two() {
            return Err(Error::Geometry(format!(
                "block size {bs} must be a power of two and at least the page size {page}"
            )));
        }
        // The kernel reads the block size as a C int and refuses anything
        // that is not positive.
        if bs > MAX_BLOCK_SIZE {
            return Err(Error::Geometry(format!(
                "block size {bs} is larger than the kernel takes ({MAX_BLOCK_SIZE})"
            )));
        }
        if self.block_count == 0 {
            return Err(Error::Geometry("block count must be at least 1".into()));
        }
        if self.memory() > (1 << 40) {
            return Err(Error::Geometry(format!(
                "ring of {} bytes is larger than any machine this runs on",
                self.memory()
            )));
        }
        if self.snaplen == 0 {
            return Err(Error::Geometry("snap length must be at least 1".into()));
        }
        let need = sys::frame::META_LEN + 16 + self.snaplen as usize;
        if need + sys::block::HEADER_LEN > bs {
            return Err(Error::Geometry(format!(
                "block size {bs} cannot hold one frame of snap length {}",
                self.snaplen
            )));
        }
        if self.retire_timeout_ms == 0 {
            return Err(Error::Geometry(
                "retire timeout must be at least 1 ms".into(),
            ));
        }
        Ok(())
    }
}

/// The largest block size the kernel accepts: a power of two below 2^31.
pub const MAX_BLOCK_SIZE: usize = 1 << 30;

/// The first kernel whose fanout groups honour
/// PACKET_FANOUT_FLAG_IGNORE_OUTGOING.
const FANOUT_IGNORE_OUTGOING_SINCE: (u32, u32) = (6, 2);

pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf with a valid name has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as usize } else { 4096 }
}

/// Kernel packet counters of one socket (PACKET_STATISTICS).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets that reached the socket, dropped ones included.
    pub packets: u64,
    /// Packets dropped because the ring was full.
    pub drops: u64,
    /// Times the ring was frozen because every block was in user hands.
    pub freezes: u64,
}

impl Stats {
    /// Adds another set of counters.
    pub fn add(&mut self, other: &Stats) {
        self.packets += other.packets;
        self.drops += other.drops;
        self.freezes += other.freezes;
    }
}

/// An AF_PACKET socket with a TPACKET_V3 receive ring on one interface.
#[derive(Debug)]
pub struct Ring {
    // Field order matters: the mapping goes before the socket is closed.
    map: MmapRaw,
    fd: OwnedFd,
    base: NonNull<u8>,
    block_size: usize,
    block_count: usize,
    head: usize,
    ifindex: u32,
    fanout_group: Option<u16>,
    ignores_outgoing: bool,
}

// SAFETY: `base` points into the mapping the Ring owns, which stays valid
// wherever the Ring lives; it is not tied to the thread that made it. The
// only memory reached through it is the kernel-shared ring: status words are
// read and written atomically only (`status_word`, from `&self`), and block
// bytes are lent out only as a `Block` borrowing `&mut self`. Moving the Ring
// moves all of that with it. (Ring is not Sync: `&Ring` on two threads is
// not needed and not offered.)
unsafe impl Send for Ring {}

impl Ring {
    /// Opens a ring on interface `ifindex`.
    ///
    /// The order follows what the kernel allows and what loses or duplicates
    /// the least: the socket is created with protocol 0 so it sees nothing,
    /// the ring is sized and mapped, a drop-everything filter is attached, the
    /// socket is bound (it now sees packets but drops them), it joins the
    /// fanout group (so it never receives a copy of a packet another member
    /// also gets), and only then the snap-length filter opens it. A packet
    /// is thus never counted twice; the price is that the few microseconds
    /// between joining and opening lose this member's share.
    pub fn open(ifindex: u32, cfg: &RingConfig) -> Result<Ring> {
        cfg.validate()?;
        let fd = sys::packet_socket().map_err(|e| Error::sys_open("socket(AF_PACKET)", e))?;
        let bfd = fd.as_fd();
        sys::setsockopt(bfd, sys::SOL_PACKET, sys::PACKET_VERSION, &sys::TPACKET_V3)
            .map_err(|e| Error::sys("setsockopt(PACKET_VERSION, TPACKET_V3)", e))?;

        // V3 ignores the frame geometry, but the kernel still checks it:
        // frames must tile each block exactly.
        let frame_size: u32 = 2048.min(cfg.block_size);
        let req = TpacketReq3 {
            tp_block_size: cfg.block_size,
            tp_block_nr: cfg.block_count,
            tp_frame_size: frame_size,
            tp_frame_nr: (cfg.block_size / frame_size) * cfg.block_count,
            tp_retire_blk_tov: cfg.retire_timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        sys::setsockopt(bfd, sys::SOL_PACKET, sys::PACKET_RX_RING, &req)
            .map_err(|e| Error::sys("setsockopt(PACKET_RX_RING)", e))?;

        let len = cfg.memory() as usize;
        let map = MmapOptions::new()
            .len(len)
            .map_raw(fd.as_raw_fd())
            .map_err(|e| Error::sys("mmap of the ring", e))?;
        let base = NonNull::new(map.as_mut_ptr())
            .ok_or_else(|| Error::sys("mmap of the ring", io::Error::other("null mapping")))?;

        sys::attach_filter(bfd, &drop_all_program())
            .map_err(|e| Error::sys("setsockopt(SO_ATTACH_FILTER)", e))?;
        if cfg.ignore_outgoing {
            sys::setsockopt(bfd, sys::SOL_PACKET, sys::PACKET_IGNORE_OUTGOING, &1i32)
                .map_err(|e| Error::sys(crate::OP_IGNORE_OUTGOING, e))?;
        }
        sys::bind_ll(bfd, ifindex).map_err(|e| Error::sys("bind(AF_PACKET)", e))?;
        // Binding to an interface that is down succeeds but leaves the socket
        // idle with ENETDOWN pending; kernels before 6.13 then refuse to add
        // it to a fanout group, with an EINVAL that says nothing more.
        let down = take_socket_error(bfd).is_some_and(|e| e.raw_os_error() == Some(libc::ENETDOWN));

        let mut fanout_group = None;
        let mut ignores_outgoing = cfg.ignore_outgoing;
        if let Some(fanout) = cfg.fanout {
            let ignore = if cfg.ignore_outgoing {
                sys::PACKET_FANOUT_FLAG_IGNORE_OUTGOING
            } else {
                0
            };
            // Older kernels accept the flag and ignore it: the socket option
            // alone does not reach the group's hook there.
            ignores_outgoing &= crate::kernel_version() >= FANOUT_IGNORE_OUTGOING_SINCE;
            let arg: u32 = match fanout {
                Fanout::New(mode) => {
                    (mode.kernel_type() | ignore | sys::PACKET_FANOUT_FLAG_UNIQUEID) << 16
                }
                Fanout::Join(mode, id) => ((mode.kernel_type() | ignore) << 16) | u32::from(id),
            };
            sys::setsockopt(bfd, sys::SOL_PACKET, sys::PACKET_FANOUT, &arg).map_err(|e| {
                if down && e.raw_os_error() == Some(libc::EINVAL) {
                    Error::FanoutWhileDown { err: e }
                } else {
                    Error::sys("setsockopt(PACKET_FANOUT)", e)
                }
            })?;
            let mut got: u32 = 0;
            sys::getsockopt(bfd, sys::SOL_PACKET, sys::PACKET_FANOUT, &mut got)
                .map_err(|e| Error::sys("getsockopt(PACKET_FANOUT)", e))?;
            fanout_group = Some((got & 0xffff) as u16);
        }

        sys::attach_filter(bfd, &snaplen_program(cfg.snaplen))
            .map_err(|e| Error::sys("setsockopt(SO_ATTACH_FILTER)", e))?;

        Ok(Ring {
            map,
            fd,
            base,
            block_size: cfg.block_size as usize,
            block_count: cfg.block_count as usize,
            head: 0,
            ifindex,
            fanout_group,
            ignores_outgoing,
        })
    }

    /// Checks that this process may open packet sockets at all, so that a
    /// missing privilege is reported once, at start, in plain words.
    pub fn check_access() -> Result<()> {
        sys::packet_socket()
            .map(drop)
            .map_err(|e| Error::sys_open("socket(AF_PACKET)", e))
    }

    /// The interface this ring is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// True if the kernel keeps packets this host sends out of this ring:
    /// asked for, and honoured by this kernel for this kind of socket.
    pub fn ignores_outgoing(&self) -> bool {
        self.ignores_outgoing
    }

    /// False once the interface the ring was bound to has been unregistered
    /// (deleted, or moved to another namespace): the socket lives on but
    /// will never see a packet again, even if an interface with the same
    /// index appears.
    pub fn is_bound(&self) -> bool {
        sys::bound_ifindex(self.fd.as_fd()).is_ok_and(|i| i > 0)
    }

    /// A second descriptor of this ring's socket, for another thread to ask
    /// [`BindProbe::is_bound`] while the ring itself is in use. The socket
    /// (and its ring memory) lives until both are dropped.
    pub fn bind_probe(&self) -> io::Result<BindProbe> {
        Ok(BindProbe(self.fd.try_clone()?))
    }

    /// Stops new packets from entering the ring (a drop-everything filter);
    /// blocks already in it stay readable, and the kernel still hands over
    /// the partly filled one when its retire timeout passes.
    pub fn detach(&self) -> Result<()> {
        sys::attach_filter(self.fd.as_fd(), &drop_all_program())
            .map_err(|e| Error::sys("setsockopt(SO_ATTACH_FILTER)", e))
    }

    /// The id of the fanout group this ring is a member of.
    pub fn fanout_group(&self) -> Option<u16> {
        self.fanout_group
    }

    /// Bytes of memory the ring maps.
    pub fn memory(&self) -> usize {
        self.map.len()
    }

    fn status_word(&self, index: usize) -> &AtomicU32 {
        debug_assert!(index < self.block_count);
        // Blocks start page-aligned and the status word is at byte 8, so the
        // pointer is 4-aligned; the kernel and we access it only atomically.
        // SAFETY: `index < block_count` keeps the offset inside the mapping,
        // which lives as long as `self`; aligned and atomic-only as above.
        unsafe {
            AtomicU32::from_ptr(
                self.base
                    .as_ptr()
                    .add(index * self.block_size + sys::block::STATUS)
                    .cast::<u32>(),
            )
        }
    }

    /// True if the next block is ready, without taking it.
    pub fn is_ready(&self) -> bool {
        self.status_word(self.head).load(Ordering::Acquire) & sys::TP_STATUS_USER != 0
    }

    /// The next block the kernel has handed over, if any. Blocks come in
    /// ring order; dropping the block gives it back to the kernel.
    pub fn next_block(&mut self) -> Option<Block<'_>> {
        let index = self.head;
        let status = self.status_word(index).load(Ordering::Acquire);
        if status & sys::TP_STATUS_USER == 0 {
            return None;
        }
        self.head = (index + 1) % self.block_count;
        // The kernel does not touch a block again until its status is set
        // back to TP_STATUS_KERNEL, which only Block's Drop does. The slice
        // starts after the status word (never aliased by it), ends at the end
        // of this block, and borrows `self` mutably: no second Block exists.
        // SAFETY: the Acquire load above saw TP_STATUS_USER, so the kernel has
        // finished writing this block; no aliasing as explained above.
        let bytes = unsafe {
            let start = self
                .base
                .as_ptr()
                .add(index * self.block_size + sys::block::AFTER_STATUS);
            std::slice::from_raw_parts(start, self.block_size - sys::block::AFTER_STATUS)
        };
        let status_word = self.status_word(index);
        Some(Block::new(bytes, status_word, self.block_size))
    }

    /// Reads the kernel's counters for this socket. The kernel resets them on
    /// every read, so each call returns what happened since the last one.
    pub fn take_stats(&self) -> Result<Stats> {
        let mut st = TpacketStatsV3::default();
        sys::getsockopt(
            self.fd.as_fd(),
            sys::SOL_PACKET,
            sys::PACKET_STATISTICS,
            &mut st,
        )
        .map_err(|e| Error::sys("getsockopt(PACKET_STATISTICS)", e))?;
        Ok(Stats {
            packets: u64::from(st.tp_packets),
            drops: u64::from(st.tp_drops),
            freezes: u64::from(st.tp_freeze_q_cnt),
        })
    }

    /// Takes the pending socket error (SO_ERROR), which also clears it: the
    /// kernel sets ENETDOWN when the interface goes down or away.
    pub fn take_error(&self) -> Option<io::Error> {
        take_socket_error(self.fd.as_fd())
    }
}

/// See [`Ring::bind_probe`].
#[derive(Debug)]
pub struct BindProbe(OwnedFd);

impl BindProbe {
    /// Like [`Ring::is_bound`].
    pub fn is_bound(&self) -> bool {
        sys::bound_ifindex(self.0.as_fd()).is_ok_and(|i| i > 0)
    }
}

fn take_socket_error(fd: BorrowedFd<'_>) -> Option<io::Error> {
    let mut err: libc::c_int = 0;
    match sys::getsockopt(fd, libc::SOL_SOCKET, libc::SO_ERROR, &mut err) {
        Ok(_) if err == 0 => None,
        Ok(_) => Some(io::Error::from_raw_os_error(err)),
        Err(e) => Some(e),
    }
}

impl AsFd for Ring {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Ring {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// `ret #0`: accept nothing.
fn drop_all_program() -> [SockFilter; 1] {
    [SockFilter {
        code: sys::BPF_RET_K,
        jt: 0,
        jf: 0,
        k: 0,
    }]
}

/// `ret #snaplen`: accept every packet, copy at most `snaplen` bytes of it.
fn snaplen_program(snaplen: u32) -> [SockFilter; 1] {
    [SockFilter {
        code: sys::BPF_RET_K,
        jt: 0,
        jf: 0,
        k: snaplen,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> RingConfig {
        RingConfig {
            block_size: 1 << 16,
            block_count: 4,
            retire_timeout_ms: 10,
            snaplen: 128,
            ignore_outgoing: false,
            fanout: None,
        }
    }

    #[test]
    fn geometry_rejects_odd_block_sizes() {
        let mut c = cfg();
        c.block_size = 5000;
        assert!(matches!(c.validate(), Err(Error::Geometry(_))));
        c.block_size = 1024;
        assert!(matches!(c.validate(), Err(Error::Geometry(_))));
    }

    #[test]
    fn geometry_rejects_zero_counts() {
        let mut c = cfg();
        c.block_count = 0;
        assert!(c.validate().is_err());
        let mut c = cfg();
        c.snaplen = 0;
        assert!(c.validate().is_err());
        let mut c = cfg();
        c.retire_timeout_ms = 0;
        assert!(c.validate().is_err());
    }

    #[test]
    fn geometry_rejects_snaplen_larger_than_block() {
        let mut c = cfg();
        c.block_size = 4096;
        c.snaplen = 8192;
        assert!(c.validate().is_err());
    }

    #[test]
    fn geometry_rejects_block_sizes_the_kernel_refuses() {
        // The kernel takes the block size as a C int: 2^31 is negative.
        let mut c = cfg();
        c.block_size = 1 << 31;
        c.block_count = 1;
        assert!(matches!(c.validate(), Err(Error::Geometry(_))));
        c.block_size = 1 << 30;
        assert!(c.validate().is_ok());
    }

    #[test]
    fn geometry_accepts_defaults() {
        assert!(cfg().validate().is_ok());
        assert_eq!(cfg().memory(), 4 << 16);
    }
}
