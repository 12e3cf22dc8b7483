//! Tells systemd (`Type=notify`) when the daemon is ready — after the rings
//! are open and the API listens — when it reloads and when it stops. Without
//! `$NOTIFY_SOCKET` (run by hand) it does nothing.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sends one state line (`READY=1`, `STOPPING=1`, …). Failures are logged
/// and otherwise ignored: the daemon works without systemd.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let path = path.to_string_lossy().into_owned();
    if let Err(e) = send(&path, state) {
        log::warn!("cannot tell systemd {state:?} through {path}: {e}");
    }
}

/// Sends `state` to the notification socket `path`.
fn send(path: &str, state: &str) -> std::io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    // A leading '@' names a socket in the abstract namespace.
    let addr = match path.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
        None => SocketAddr::from_pathname(path)?,
    };
    sock.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}

/// `READY=1` with a status line for `systemctl status`.
pub fn ready(status: &str) {
    notify(&format!("READY=1\nSTATUS={status}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_a_path_or_an_abstract_socket() {
        let dir = std::env::temp_dir().join(format!("ta-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path).unwrap();
        send(path.to_str().unwrap(), "READY=1\nSTATUS=watching eth0").unwrap();
        let mut buf = [0u8; 256];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=watching eth0");

        let name = format!("ta-notify-{}", std::process::id());
        let rx = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
            .unwrap();
        send(&format!("@{name}"), "STOPPING=1").unwrap();
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
        assert!(send("/nonexistent/socket", "READY=1").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
