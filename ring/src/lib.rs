//! AF_PACKET receive rings (PACKET_MMAP, TPACKET_V3) for a capture daemon.
//!
//! A [`Ring`] is one packet socket bound to one interface, with its receive
//! ring mapped into memory. The kernel fills blocks of frames and hands each
//! block over by flipping its status word; [`Ring::next_block`] lends the next
//! ready [`Block`], whose [`Frame`]s borrow their bytes straight from the
//! mapping. Dropping the block gives it back to the kernel. Lifetimes carry
//! the rules: a frame cannot outlive its block, a block cannot outlive its
//! ring, and only one block is lent at a time.
//!
//! Several rings on one interface share its packets through a fanout group
//! ([`Fanout`]); a one-instruction classic BPF program limits how much of each
//! packet is copied (the snap length); [`Ring::take_stats`] reads the kernel's
//! per-socket counters. [`Waiter`] sleeps until one of a worker's rings has a
//! block ready, with io_uring or poll(2).
//!
//! This is the only crate of the project with `unsafe` code: the socket
//! options, the mapping, and the status word shared with the kernel (and
//! [`socket_drops`], for the daemon's other sockets).

mod block;
mod hint;
mod ring;
mod sys;
mod wait;

pub use block::{Block, Frame, Frames, PacketType, VlanTag};
pub use hint::prefetch;
pub use ring::{BindProbe, Fanout, FanoutMode, MAX_BLOCK_SIZE, Ring, RingConfig, Stats};
pub use wait::{Event, WaitKind, Waiter};

/// The running kernel's (major, minor) version; (0, 0) if unknown.
pub fn kernel_version() -> (u32, u32) {
    sys::kernel_version()
}

/// Whether generic receive offload is on for the interface called `name`
/// (in this network namespace), asked through `ring`'s socket.
pub fn gro_enabled(ring: &Ring, name: &str) -> io::Result<bool> {
    use std::os::fd::AsFd;
    sys::gro_enabled(ring.as_fd(), name)
}

/// Datagrams (or packets) any socket dropped since it was opened, as the
/// kernel counts them (`SO_MEMINFO`'s drops: a full receive buffer, a
/// filter). Here, though it is no packet-ring matter, because this crate
/// holds the project's `unsafe` system calls.
pub fn socket_drops(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<u32> {
    let mut info = [0u32; libc::SK_MEMINFO_DROPS as usize + 1];
    let len = sys::getsockopt(fd, libc::SOL_SOCKET, libc::SO_MEMINFO, &mut info)?;
    if len < info.len() * 4 {
        return Err(io::Error::other("SO_MEMINFO without a drop count"));
    }
    Ok(info[libc::SK_MEMINFO_DROPS as usize])
}

use std::io;

/// ARPHRD_* hardware types that decide how a frame's bytes begin.
pub mod arphrd {
    pub const ETHER: u16 = 1;
    pub const LOOPBACK: u16 = 772;
    pub const NONE: u16 = 0xfffe;
    pub const RAWIP: u16 = 519;
    pub const PPP: u16 = 512;
    pub const TUNNEL: u16 = 768;
    pub const TUNNEL6: u16 = 769;
    pub const IPGRE: u16 = 778;
    pub const SIT: u16 = 776;
}

/// Entry points for the fuzz targets: the block walker on arbitrary bytes.
#[doc(hidden)]
pub mod fuzzing {
    use std::sync::atomic::AtomicU32;

    /// Walks `image` as if the kernel had handed it over as a block; returns
    /// the frames found and the bytes they cover.
    pub fn walk_block(image: &[u8]) -> (usize, usize) {
        if image.len() < crate::sys::block::HEADER_LEN {
            return (0, 0);
        }
        let status = AtomicU32::new(crate::sys::TP_STATUS_USER);
        let block = crate::block::Block::new(
            &image[crate::sys::block::AFTER_STATUS..],
            &status,
            image.len(),
        );
        let mut n = 0;
        let mut bytes = 0;
        for f in block.frames() {
            n += 1;
            bytes += f.data.len();
        }
        (n, bytes)
    }
}

/// Errors from setting up or reading a ring.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The process may not open packet sockets.
    #[error(
        "{op}: {err} (capturing needs CAP_NET_RAW: run as root, grant it with `setcap cap_net_raw+ep` on the binary, or start the systemd unit, which grants it)"
    )]
    PermissionDenied { op: &'static str, err: io::Error },
    /// A system call failed.
    #[error("{op}: {err}")]
    Sys { op: &'static str, err: io::Error },
    /// The interface is down, and this kernel lets a socket join a fanout
    /// group only while its interface is up (Linux before 6.13): open it
    /// again once it is up.
    #[error(
        "setsockopt(PACKET_FANOUT): {err}: the interface is down, and this kernel (before Linux 6.13) joins fanout groups only on interfaces that are up"
    )]
    FanoutWhileDown { err: io::Error },
    /// The requested ring cannot be built.
    #[error("invalid ring geometry: {0}")]
    Geometry(String),
}

/// The name of the ignore-outgoing socket option in [`Error::Sys`].
pub(crate) const OP_IGNORE_OUTGOING: &str = "setsockopt(PACKET_IGNORE_OUTGOING)";

impl Error {
    pub(crate) fn sys(op: &'static str, err: io::Error) -> Self {
        Error::Sys { op, err }
    }

    /// Like [`Error::sys`], but tells a missing privilege apart.
    pub(crate) fn sys_open(op: &'static str, err: io::Error) -> Self {
        match err.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => Error::PermissionDenied { op, err },
            _ => Error::Sys { op, err },
        }
    }

    /// True if the error says the interface is gone (ENODEV, ENXIO): it
    /// vanished between listing and opening.
    pub fn is_interface_gone(&self) -> bool {
        match self {
            Error::Sys { err, .. } => {
                matches!(err.raw_os_error(), Some(libc::ENODEV | libc::ENXIO))
            }
            _ => false,
        }
    }

    /// True if the interface was down and the kernel could not add the
    /// socket to its fanout group: worth trying again once it is up.
    pub fn is_interface_down(&self) -> bool {
        matches!(self, Error::FanoutWhileDown { .. })
    }

    /// True if this kernel has no PACKET_IGNORE_OUTGOING (before 4.20: it
    /// refuses the option with ENOPROTOOPT). Only that option's refusal
    /// counts: an EINVAL of another option means something else.
    pub fn is_ignore_outgoing_unsupported(&self) -> bool {
        match self {
            Error::Sys { op, err } => {
                *op == OP_IGNORE_OUTGOING
                    && matches!(err.raw_os_error(), Some(libc::ENOPROTOOPT | libc::EINVAL))
            }
            _ => false,
        }
    }

    /// True if the error is a missing privilege.
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, Error::PermissionDenied { .. })
    }
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    #[test]
    fn a_full_receive_buffer_counts_its_drops() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let small: libc::c_int = 4096;
        super::sys::setsockopt(rx.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, &small).unwrap();
        assert_eq!(super::socket_drops(rx.as_fd()).unwrap(), 0);
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        for _ in 0..100 {
            tx.send_to(&[0u8; 1000], to).unwrap();
        }
        let mut buf = [0u8; 2000];
        rx.set_nonblocking(true).unwrap();
        let mut received = 0;
        while rx.recv(&mut buf).is_ok() {
            received += 1;
        }
        let dropped = super::socket_drops(rx.as_fd()).unwrap();
        assert!(received > 0 && received < 100, "{received} received");
        assert_eq!(
            received + dropped,
            100,
            "every datagram is received or counted"
        );
    }
}
