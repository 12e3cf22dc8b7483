//! Sleeping until one of several descriptors is ready: io_uring multishot
//! polls where the kernel allows io_uring, poll(2) where it does not.
//!
//! A capture worker holds one ring per interface plus a wake-up descriptor;
//! it asks this module to sleep until any of them is readable or a deadline
//! passes. With io_uring the interest set is registered once (a multishot
//! poll per descriptor) and each wait is one `io_uring_enter`; with poll(2)
//! the whole set is passed on every call.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use io_uring::{IoUring, cqueue, opcode, types};

/// Which mechanism to wait with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitKind {
    /// io_uring if the kernel allows it, else poll(2).
    Auto,
    /// io_uring multishot poll (Linux 5.13 or later, not disabled by
    /// `kernel.io_uring_disabled` or a seccomp filter).
    IoUring,
    /// Plain poll(2).
    Poll,
}

/// A descriptor that became ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// The token it was registered with.
    pub token: u64,
    /// Data to read (a block is ready).
    pub readable: bool,
    /// An error is pending on the descriptor (ENETDOWN for a ring whose
    /// interface went down or away).
    pub error: bool,
    /// The descriptor was closed or is not valid any more.
    pub invalid: bool,
}

const POLL_MASK: u32 = (libc::POLLIN | libc::POLLERR | libc::POLLHUP) as u32;
/// Marks the user data of removal requests; tokens must stay below it.
const REMOVE_BIT: u64 = 1 << 63;

/// Waits for readiness of a set of descriptors.
#[derive(Debug)]
pub struct Waiter {
    imp: Imp,
}

#[derive(Debug)]
enum Imp {
    Uring(Box<UringWait>),
    Poll(PollWait),
}

impl Waiter {
    /// Creates a waiter of the given kind. With [`WaitKind::Auto`], an
    /// io_uring that cannot be set up falls back to poll(2); the error that
    /// caused the fallback is returned alongside so it can be logged once.
    pub fn new(kind: WaitKind) -> io::Result<(Waiter, Option<io::Error>)> {
        match kind {
            WaitKind::Poll => Ok((Waiter::poll(), None)),
            WaitKind::IoUring => Ok((
                Waiter {
                    imp: Imp::Uring(Box::new(UringWait::new()?)),
                },
                None,
            )),
            WaitKind::Auto => match UringWait::new() {
                Ok(u) => Ok((
                    Waiter {
                        imp: Imp::Uring(Box::new(u)),
                    },
                    None,
                )),
                Err(e) => Ok((Waiter::poll(), Some(e))),
            },
        }
    }

    fn poll() -> Waiter {
        Waiter {
            imp: Imp::Poll(PollWait::default()),
        }
    }

    /// The mechanism in use: [`WaitKind::IoUring`] or [`WaitKind::Poll`].
    pub fn kind(&self) -> WaitKind {
        match self.imp {
            Imp::Uring(_) => WaitKind::IoUring,
            Imp::Poll(_) => WaitKind::Poll,
        }
    }

    /// Adds a descriptor. The caller must [`deregister`](Self::deregister)
    /// it before closing it: an io_uring poll holds a reference to the file
    /// and would otherwise keep the socket (and its ring memory) alive.
    pub fn register(&mut self, fd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        if token & REMOVE_BIT != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "token too large",
            ));
        }
        match &mut self.imp {
            Imp::Uring(u) => u.register(fd.as_raw_fd(), token),
            Imp::Poll(p) => {
                p.register(fd.as_raw_fd(), token);
                Ok(())
            }
        }
    }

    /// Removes a descriptor registered under `token`.
    pub fn deregister(&mut self, token: u64) -> io::Result<()> {
        match &mut self.imp {
            Imp::Uring(u) => u.deregister(token),
            Imp::Poll(p) => {
                p.deregister(token);
                Ok(())
            }
        }
    }

    /// Sleeps until a registered descriptor is ready or `timeout` passes, and
    /// appends what became ready to `out` (which it does not clear). A signal
    /// or a timeout returns with nothing added.
    pub fn wait(&mut self, timeout: Duration, out: &mut Vec<Event>) -> io::Result<()> {
        match &mut self.imp {
            Imp::Uring(u) => u.wait(timeout, out),
            Imp::Poll(p) => p.wait(timeout, out),
        }
    }
}

struct UringWait {
    ring: IoUring,
    /// Registered descriptors, to re-arm a poll the kernel ended.
    fds: Vec<(u64, RawFd)>,
    /// Completions of other tokens reaped while waiting for a removal,
    /// kept whole (flags included: one may be the last of its poll) for the
    /// next wait to handle like fresh ones.
    stash: Vec<Completion>,
}

/// What the next wait needs of a completion queue entry.
#[derive(Debug, Clone, Copy)]
struct Completion {
    user_data: u64,
    result: i32,
    more: bool,
}

impl From<&cqueue::Entry> for Completion {
    fn from(cqe: &cqueue::Entry) -> Self {
        Completion {
            user_data: cqe.user_data(),
            result: cqe.result(),
            more: cqueue::more(cqe.flags()),
        }
    }
}

impl UringWait {
    fn new() -> io::Result<Self> {
        let ring = IoUring::new(64)?;
        if !ring.params().is_feature_ext_arg() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "io_uring without IORING_FEAT_EXT_ARG (Linux < 5.11) cannot wait with a timeout",
            ));
        }
        let mut u = UringWait {
            ring,
            fds: Vec::new(),
            stash: Vec::new(),
        };
        // Prove that multishot poll works here (Linux 5.13+) before relying
        // on it: arm it on a pipe, then remove it.
        let (r, w) = pipe()?;
        u.register(r.as_raw_fd(), 0)?;
        u.deregister(0)?;
        drop((r, w));
        u.stash.clear();
        Ok(u)
    }

    fn push(&mut self, entry: io_uring::squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: the entries pushed here are POLL_ADD and POLL_REMOVE,
            // which reference no user memory: nothing must outlive the call.
            let pushed = unsafe { self.ring.submission().push(&entry) };
            if pushed.is_ok() {
                return Ok(());
            }
            self.ring.submit()?;
        }
    }

    fn arm(&mut self, fd: RawFd, token: u64) -> io::Result<()> {
        let e = opcode::PollAdd::new(types::Fd(fd), POLL_MASK)
            .multi(true)
            .build()
            .user_data(token);
        self.push(e)?;
        self.ring.submit()?;
        Ok(())
    }

    fn register(&mut self, fd: RawFd, token: u64) -> io::Result<()> {
        self.arm(fd, token)?;
        self.fds.push((token, fd));
        Ok(())
    }

    fn deregister(&mut self, token: u64) -> io::Result<()> {
        let Some(pos) = self.fds.iter().position(|&(t, _)| t == token) else {
            return Ok(());
        };
        self.fds.swap_remove(pos);
        let e = opcode::PollRemove::new(token)
            .build()
            .user_data(token | REMOVE_BIT);
        self.push(e)?;
        // Wait until the kernel confirms the removal, so the descriptor may be
        // closed right after we return.
        let mut removed = false;
        let mut poll_ended = false;
        let mut rounds = 0;
        while !(removed && poll_ended) {
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => return Err(e),
            }
            let mut stash = std::mem::take(&mut self.stash);
            for cqe in self.ring.completion() {
                let ud = cqe.user_data();
                if ud == token | REMOVE_BIT {
                    removed = true;
                    // ENOENT: the poll had already ended on its own.
                    if cqe.result() == -libc::ENOENT {
                        poll_ended = true;
                    }
                } else if ud == token {
                    if !cqueue::more(cqe.flags()) {
                        poll_ended = true;
                    }
                } else if ud & REMOVE_BIT == 0 {
                    stash.push(Completion::from(&cqe));
                }
            }
            self.stash = stash;
            rounds += 1;
            if rounds > 1000 {
                return Err(io::Error::other("io_uring poll removal never completed"));
            }
        }
        Ok(())
    }

    fn wait(&mut self, timeout: Duration, out: &mut Vec<Event>) -> io::Result<()> {
        let mut done = std::mem::take(&mut self.stash);
        if done.is_empty() && self.ring.completion().is_empty() {
            let ts = types::Timespec::from(timeout);
            let args = types::SubmitArgs::new().timespec(&ts);
            match self.ring.submitter().submit_with_args(1, &args) {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR)) => {}
                Err(e) => return Err(e),
            }
        }
        done.extend(self.ring.completion().map(|c| Completion::from(&c)));
        let mut rearm = Vec::new();
        for c in &done {
            if c.user_data & REMOVE_BIT != 0 {
                continue;
            }
            // A multishot poll without IORING_CQE_F_MORE has ended (the kernel
            // does that on overflow, on error, or when it cancels it); arm it
            // again while it is registered.
            if !c.more {
                if let Some(&(t, fd)) = self.fds.iter().find(|&&(t, _)| t == c.user_data) {
                    if c.result != -libc::EBADF {
                        rearm.push((fd, t));
                    }
                }
            }
            // A cancellation is ours to know about, not an event.
            if c.result == -libc::ECANCELED {
                continue;
            }
            let ev = event_from(c.user_data, c.result);
            out.push(ev);
        }
        self.stash = done;
        self.stash.clear();
        for (fd, token) in rearm {
            self.arm(fd, token)?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for UringWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringWait").field("fds", &self.fds).finish()
    }
}

fn event_from(token: u64, res: i32) -> Event {
    if res < 0 {
        return Event {
            token,
            readable: false,
            error: true,
            invalid: res == -libc::EBADF,
        };
    }
    let r = res as u32;
    Event {
        token,
        readable: r & libc::POLLIN as u32 != 0,
        error: r & (libc::POLLERR | libc::POLLHUP) as u32 != 0,
        invalid: r & libc::POLLNVAL as u32 != 0,
    }
}

fn pipe() -> io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let ret = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created by pipe2 and are owned by no
    // one else.
    Ok(unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    })
}

#[derive(Debug, Default)]
struct PollWait {
    fds: Vec<libc::pollfd>,
    tokens: Vec<u64>,
}

impl PollWait {
    fn register(&mut self, fd: RawFd, token: u64) {
        self.fds.push(libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
        self.tokens.push(token);
    }

    fn deregister(&mut self, token: u64) {
        if let Some(pos) = self.tokens.iter().position(|&t| t == token) {
            self.fds.swap_remove(pos);
            self.tokens.swap_remove(pos);
        }
    }

    fn wait(&mut self, timeout: Duration, out: &mut Vec<Event>) -> io::Result<()> {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
        };
        // SAFETY: `fds` is a live, exclusive slice of pollfd of the length
        // passed; `ts` lives through the call; a null sigmask is allowed.
        let n = unsafe {
            libc::ppoll(
                self.fds.as_mut_ptr(),
                self.fds.len() as libc::nfds_t,
                &ts,
                std::ptr::null(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                return Ok(());
            }
            return Err(e);
        }
        for (p, &token) in self.fds.iter_mut().zip(&self.tokens) {
            if p.revents != 0 {
                out.push(event_from(token, i32::from(p.revents)));
                p.revents = 0;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn write_byte(fd: &std::os::fd::OwnedFd) {
        let b = [1u8];
        // SAFETY: writes one byte from a live buffer to an open pipe.
        let n = unsafe { libc::write(fd.as_raw_fd(), b.as_ptr().cast(), 1) };
        assert_eq!(n, 1);
    }

    fn exercise(kind: WaitKind) {
        let (mut w, _) = Waiter::new(kind).expect("waiter");
        let (r1, w1) = pipe().unwrap();
        let (r2, w2) = pipe().unwrap();
        w.register(r1.as_fd(), 1).unwrap();
        w.register(r2.as_fd(), 2).unwrap();
        let mut out = Vec::new();
        w.wait(Duration::from_millis(20), &mut out).unwrap();
        assert!(out.is_empty(), "nothing ready yet: {out:?}");

        write_byte(&w2);
        w.wait(Duration::from_secs(5), &mut out).unwrap();
        assert!(out.iter().any(|e| e.token == 2 && e.readable), "{out:?}");
        assert!(!out.iter().any(|e| e.token == 1));

        w.deregister(2).unwrap();
        out.clear();
        write_byte(&w1);
        w.wait(Duration::from_secs(5), &mut out).unwrap();
        assert!(out.iter().any(|e| e.token == 1 && e.readable), "{out:?}");
        assert!(!out.iter().any(|e| e.token == 2));
        drop((r1, w1, r2, w2));
    }

    #[test]
    fn poll_reports_ready_descriptors() {
        exercise(WaitKind::Poll);
    }

    #[test]
    fn io_uring_reports_ready_descriptors() {
        let (w, fell_back) = Waiter::new(WaitKind::Auto).unwrap();
        assert!(
            fell_back.is_none(),
            "io_uring is expected to work on the build machines: {fell_back:?}"
        );
        assert_eq!(w.kind(), WaitKind::IoUring);
        exercise(WaitKind::IoUring);
    }

    /// A multishot poll that the kernel ended while another token was being
    /// removed (here: the completion queue overflowed) is armed again.
    #[test]
    fn a_poll_ended_during_another_removal_is_armed_again() {
        let (mut w, _) = Waiter::new(WaitKind::IoUring).expect("io_uring");
        let (ra, wa) = pipe().unwrap();
        let (rb, wb) = pipe().unwrap();
        w.register(ra.as_fd(), 1).unwrap();
        w.register(rb.as_fd(), 2).unwrap();
        // Far more readiness events for A than the 128-entry completion
        // queue holds, none reaped: the kernel ends A's multishot poll.
        for _ in 0..400 {
            write_byte(&wa);
        }
        w.deregister(2).unwrap();
        drop((rb, wb));
        let mut out = Vec::new();
        w.wait(Duration::from_millis(50), &mut out).unwrap();
        assert!(out.iter().all(|e| e.token == 1), "{out:?}");
        assert!(
            !out.iter().any(|e| e.error),
            "no other token's cancellation may show up as an error: {out:?}"
        );
        // Empty the pipe; A must still wake on new data.
        let mut buf = [0u8; 1024];
        // SAFETY: reads into a live buffer of the length given from an open
        // non-blocking pipe.
        while unsafe { libc::read(ra.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
        for _ in 0..3 {
            out.clear();
            w.wait(Duration::from_millis(20), &mut out).unwrap();
        }
        out.clear();
        write_byte(&wa);
        w.wait(Duration::from_secs(2), &mut out).unwrap();
        assert!(
            out.iter().any(|e| e.token == 1 && e.readable),
            "A stopped waking after its poll ended: {out:?}"
        );
        drop((ra, wa));
    }

    #[test]
    fn timeout_returns_without_events() {
        for kind in [WaitKind::Poll, WaitKind::IoUring] {
            let (mut w, _) = Waiter::new(kind).unwrap();
            let mut out = Vec::new();
            let t = std::time::Instant::now();
            w.wait(Duration::from_millis(30), &mut out).unwrap();
            assert!(out.is_empty());
            assert!(
                t.elapsed() >= Duration::from_millis(25),
                "{kind:?} returned early"
            );
        }
    }
}
