//! The kernel ABI this crate speaks: constants and structure layouts from
//! `<linux/if_packet.h>` and `<linux/filter.h>`, and the few socket-option
//! syscalls wrapped so that every `unsafe` block sits in one place.
//!
//! Layouts are written as byte offsets rather than `#[repr(C)]` structs that
//! alias the ring: the ring is shared with the kernel, and reading fields out
//! of a byte slice of a block we own keeps every access bounds-checked.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd};

pub const SOL_PACKET: libc::c_int = 263;

pub const PACKET_RX_RING: libc::c_int = 5;
pub const PACKET_STATISTICS: libc::c_int = 6;
pub const PACKET_VERSION: libc::c_int = 10;
pub const PACKET_FANOUT: libc::c_int = 18;
pub const PACKET_IGNORE_OUTGOING: libc::c_int = 23;

pub const TPACKET_V3: libc::c_int = 2;

pub const PACKET_FANOUT_HASH: u32 = 0;
pub const PACKET_FANOUT_LB: u32 = 1;
pub const PACKET_FANOUT_CPU: u32 = 2;
pub const PACKET_FANOUT_FLAG_UNIQUEID: u32 = 0x2000;
/// Linux 6.2+: the group itself ignores outgoing packets; the per-socket
/// PACKET_IGNORE_OUTGOING does not reach a fanout group's hook. Older
/// kernels take the flag without a word and deliver outgoing packets.
pub const PACKET_FANOUT_FLAG_IGNORE_OUTGOING: u32 = 0x4000;

pub const TP_STATUS_KERNEL: u32 = 0;
pub const TP_STATUS_USER: u32 = 1 << 0;
pub const TP_STATUS_COPY: u32 = 1 << 1;
pub const TP_STATUS_LOSING: u32 = 1 << 2;
pub const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
pub const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;
/// Linux 6.3+: the frame is a TCP super-packet that GRO (or GSO) merged
/// from several segments on the wire.
pub const TP_STATUS_GSO_TCP: u32 = 1 << 8;

pub const ETH_P_ALL: u16 = 0x0003;

/// `struct tpacket_block_desc`: version, offset_to_priv, then
/// `struct tpacket_hdr_v1` at offset 8.
pub mod block {
    pub const STATUS: usize = 8;
    pub const NUM_PKTS: usize = 12;
    pub const OFFSET_TO_FIRST_PKT: usize = 16;
    pub const BLK_LEN: usize = 20;
    pub const SEQ_NUM: usize = 24;
    /// Everything after the status word: the part of a block that is ours
    /// to read while the status says TP_STATUS_USER.
    pub const AFTER_STATUS: usize = 12;
    pub const HEADER_LEN: usize = 48;
}

/// `struct tpacket3_hdr` (48 bytes) followed, at TPACKET_ALIGN(48) = 48, by
/// the `struct sockaddr_ll` the kernel fills in for every frame.
pub mod frame {
    pub const NEXT_OFFSET: usize = 0;
    pub const SEC: usize = 4;
    pub const NSEC: usize = 8;
    pub const SNAPLEN: usize = 12;
    pub const LEN: usize = 16;
    pub const STATUS: usize = 20;
    pub const MAC: usize = 24;
    pub const NET: usize = 26;
    pub const RXHASH: usize = 28;
    pub const VLAN_TCI: usize = 32;
    pub const VLAN_TPID: usize = 36;

    pub const SLL: usize = 48;
    pub const SLL_PROTOCOL: usize = SLL + 2;
    pub const SLL_IFINDEX: usize = SLL + 4;
    pub const SLL_HATYPE: usize = SLL + 8;
    pub const SLL_PKTTYPE: usize = SLL + 10;
    /// Frame header plus the link-layer address record.
    pub const META_LEN: usize = SLL + 20;
}

/// `struct tpacket_req3`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct TpacketReq3 {
    pub tp_block_size: u32,
    pub tp_block_nr: u32,
    pub tp_frame_size: u32,
    pub tp_frame_nr: u32,
    pub tp_retire_blk_tov: u32,
    pub tp_sizeof_priv: u32,
    pub tp_feature_req_word: u32,
}

/// `struct tpacket_stats_v3`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct TpacketStatsV3 {
    pub tp_packets: u32,
    pub tp_drops: u32,
    pub tp_freeze_q_cnt: u32,
}

/// `struct sock_filter`, one classic BPF instruction.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

pub const BPF_RET_K: u16 = 0x06;

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `setsockopt` with a plain-old-data value.
///
/// `T` must be a `repr(C)` type or an integer the kernel expects for this
/// option: the callers in this crate pass only such values.
pub fn setsockopt<T: Copy>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` is a live reference to `size_of::<T>()` initialised
    // bytes; the kernel only reads that many bytes from the pointer during the
    // call, and `fd` is a borrowed, open descriptor.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    check(ret)
}

/// `getsockopt` into a plain-old-data value; returns the length written.
pub fn getsockopt<T: Copy>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: &mut T,
) -> io::Result<usize> {
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` is an exclusive reference to `size_of::<T>()` bytes and
    // `len` tells the kernel it may write at most that many; every `T` used
    // here is an integer or a repr(C) struct of integers, valid for any bytes.
    let ret = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *mut T).cast(),
            &mut len,
        )
    };
    check(ret)?;
    Ok(len as usize)
}

/// Attach a classic BPF program (`SO_ATTACH_FILTER`).
pub fn attach_filter(fd: BorrowedFd<'_>, program: &[SockFilter]) -> io::Result<()> {
    let len = u16::try_from(program.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "BPF program too long"))?;
    let prog = SockFprog {
        len,
        filter: program.as_ptr(),
    };
    // SAFETY: `prog` points at `program`, which outlives this call; the kernel
    // copies the instructions during setsockopt and keeps no pointer to them.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&prog as *const SockFprog).cast(),
            size_of::<SockFprog>() as libc::socklen_t,
        )
    };
    check(ret)
}

/// Open an AF_PACKET raw socket that receives nothing until it is bound with
/// a protocol: protocol 0 keeps it silent while the ring is being set up.
pub fn packet_socket() -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain syscall with integer arguments.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2), is open, and is owned by
    // nobody else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Bind a packet socket to one interface for all protocols.
pub fn bind_ll(fd: BorrowedFd<'_>, ifindex: u32) -> io::Result<()> {
    let ifindex = libc::c_int::try_from(ifindex)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "ifindex out of range"))?;
    // SAFETY: sockaddr_ll is a C struct of integers; all-zero is valid.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = ETH_P_ALL.to_be();
    addr.sll_ifindex = ifindex;
    // SAFETY: `addr` is a fully initialised sockaddr_ll and the length given
    // is its size; the kernel reads it during the call only.
    let ret = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    check(ret)
}

/// The interface index a packet socket is bound to (`getsockname`): the
/// kernel sets it to -1 when the interface is unregistered (deleted, or
/// moved to another namespace), which the socket outlives.
pub fn bound_ifindex(fd: BorrowedFd<'_>) -> io::Result<i32> {
    // SAFETY: sockaddr_ll is a C struct of integers; all-zero is valid.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `addr` is an exclusive, live sockaddr_ll and `len` says how
    // many bytes the kernel may write into it.
    let ret = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut addr as *mut libc::sockaddr_ll).cast(),
            &mut len,
        )
    };
    check(ret)?;
    Ok(addr.sll_ifindex)
}

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GGRO: u32 = 0x2b;

/// `struct ethtool_value`.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// `struct ifreq` with the `ifr_data` member of its union.
#[repr(C)]
struct IfreqData {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: *mut EthtoolValue,
    _pad: [u8; 16],
}

/// Whether generic receive offload is on for interface `name`
/// (SIOCETHTOOL, ETHTOOL_GGRO), asked through any socket of the namespace.
pub fn gro_enabled(fd: BorrowedFd<'_>, name: &str) -> io::Result<bool> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not an interface name",
        ));
    }
    let mut value = EthtoolValue {
        cmd: ETHTOOL_GGRO,
        data: 0,
    };
    let mut req = IfreqData {
        name: [0; libc::IFNAMSIZ],
        data: &mut value,
        _pad: [0; 16],
    };
    for (d, &b) in req.name.iter_mut().zip(bytes) {
        *d = b as libc::c_char;
    }
    // SAFETY: `req` is a fully initialised ifreq whose data pointer points at
    // `value`, both live and exclusive through the call; the kernel reads the
    // name and writes one ethtool_value, nothing else.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), SIOCETHTOOL as _, &mut req as *mut IfreqData) };
    check(ret)?;
    Ok(value.data != 0)
}

/// The running kernel's version (major, minor), from uname(2); (0, 0) if it
/// cannot be read.
pub fn kernel_version() -> (u32, u32) {
    // SAFETY: utsname is a C struct of char arrays; all-zero is valid.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is an exclusive, live utsname for uname to fill.
    if unsafe { libc::uname(&mut u) } != 0 {
        return (0, 0);
    }
    let release: Vec<u8> = u
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    parse_version(&String::from_utf8_lossy(&release))
}

/// "6.1.0-57-amd64" → (6, 1).
pub fn parse_version(release: &str) -> (u32, u32) {
    let mut it = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().ok());
    match (it.next().flatten(), it.next().flatten()) {
        (Some(a), Some(b)) => (a, b),
        _ => (0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(parse_version("6.1.0-57-amd64"), (6, 1));
        assert_eq!(parse_version("6.18.44-fc-v857"), (6, 18));
        assert_eq!(parse_version("5.15.0-91-generic"), (5, 15));
        assert_eq!(parse_version("garbage"), (0, 0));
        let (major, _) = kernel_version();
        assert!(major >= 3, "this kernel reads as {:?}", kernel_version());
    }
}
