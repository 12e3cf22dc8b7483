//! Reading a file an operator names (the config, a password file, the
//! history): only a regular file of bounded size. A FIFO would block the
//! read (and with it SIGHUP handling or `check-config`) until some writer
//! came; a link to /dev/zero would never end.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Largest config or secret file read.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// Opens `path` without blocking and checks that it is a regular file.
pub fn open_regular(path: &Path, opts: &mut OpenOptions) -> io::Result<File> {
    // O_NONBLOCK: opening a FIFO for reading would wait for a writer.
    let f = opts.custom_flags(nix::libc::O_NONBLOCK).open(path)?;
    let kind = f.metadata()?.file_type();
    if !kind.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file (a {})", describe(kind)),
        ));
    }
    Ok(f)
}

/// Reads a regular file of at most `max` bytes as text.
pub fn read_regular(path: &Path, max: u64) -> io::Result<String> {
    let f = open_regular(path, OpenOptions::new().read(true))?;
    let len = f.metadata()?.len();
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{len} bytes, more than the {max} a config file may have"),
        ));
    }
    let mut text = String::new();
    // The size can change under us: never read past the bound.
    f.take(max + 1).read_to_string(&mut text)?;
    if text.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("more than the {max} bytes a config file may have"),
        ));
    }
    Ok(text)
}

/// Checks, without opening it, that an existing `path` is a regular file
/// (a path that does not exist yet is fine: it will be made).
pub fn regular_or_missing(path: &Path) -> io::Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(m) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file (a {})", describe(m.file_type())),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn describe(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "directory"
    } else if kind.is_fifo() {
        "FIFO"
    } else if kind.is_char_device() {
        "character device"
    } else if kind.is_block_device() {
        "block device"
    } else if kind.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifos_devices_and_huge_files_are_refused_at_once() {
        let d = std::env::temp_dir().join(format!("ta-file-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let fifo = d.join("fifo");
        let st = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(st.success());
        let t = std::time::Instant::now();
        let e = read_regular(&fifo, MAX_CONFIG_BYTES).unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        let zero = d.join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let e = read_regular(&zero, MAX_CONFIG_BYTES).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        let e = read_regular(&d, MAX_CONFIG_BYTES).unwrap_err();
        assert!(e.to_string().contains("directory"), "{e}");
        let big = d.join("big");
        std::fs::write(&big, vec![b'#'; 100]).unwrap();
        assert!(read_regular(&big, 99).is_err());
        assert_eq!(read_regular(&big, 100).unwrap().len(), 100);
        assert!(regular_or_missing(&fifo).is_err());
        assert!(regular_or_missing(&d.join("nope")).is_ok());
        assert!(regular_or_missing(&big).is_ok());
        let _ = std::fs::remove_dir_all(&d);
    }
}
