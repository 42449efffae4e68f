//! Reading the files an operator names (configuration, CA keys and certificates, trusted
//! Digital ID keys, PIN files, CRLs to import): regular files only, and never more than a
//! stated number of bytes.
//!
//! Owns: [`read_bounded`] and the size limit of each kind of file. Must never: open a device,
//! a FIFO or a directory (a path linked to `/dev/zero` would be read forever, a FIFO would
//! block), or read a file whole before knowing it fits its limit.

use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// A TOML configuration file.
pub const CONFIG_LIMIT: u64 = 1024 * 1024;
/// A PEM file: a certificate (with its chain), a private or public key, a CA bundle.
pub const PEM_LIMIT: u64 = 1024 * 1024;
/// A JWKS document of trusted Digital ID keys.
pub const JWKS_LIMIT: u64 = 1024 * 1024;
/// A file holding a PIN or a password.
pub const SECRET_LIMIT: u64 = 4096;
/// A consent token in a file (the server takes at most 8 KiB).
pub const TOKEN_LIMIT: u64 = 64 * 1024;
/// A CRL to import (DER or PEM).
pub const CRL_LIMIT: u64 = 16 * 1024 * 1024;

/// Read `path` (symbolic links followed) if it is a regular file of at most `limit` bytes.
///
/// A device, FIFO, socket or directory is refused with [`io::ErrorKind::InvalidInput`]
/// before it is opened; a larger file with [`io::ErrorKind::FileTooLarge`] after reading at
/// most `limit + 1` bytes. The messages name neither the path (callers do) nor any content.
pub fn read_bounded(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    // metadata() follows symbolic links: a link to /dev/zero is judged by its target.
    if !std::fs::metadata(path)?.is_file() {
        return Err(not_regular());
    }
    // Non-blocking, so that a FIFO swapped in after the check cannot hang the open (a regular
    // file reads the same either way); never the controlling terminal.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    // The path may have been replaced between the two calls: check what was opened.
    if !file.metadata()?.is_file() {
        return Err(not_regular());
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("larger than the limit of {limit} bytes"),
        ));
    }
    Ok(bytes)
}

/// [`read_bounded`] for a text file: UTF-8 is required.
pub fn read_bounded_text(path: &Path, limit: u64) -> io::Result<String> {
    String::from_utf8(read_bounded(path, limit)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// A secret kept in a file (a password, a PIN): its first line, without the line ending, read
/// with [`SECRET_LIMIT`].
pub fn read_secret_line(path: &Path) -> io::Result<String> {
    let text = read_bounded_text(path, SECRET_LIMIT)?;
    Ok(text.lines().next().unwrap_or("").to_owned())
}

fn not_regular() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "not a regular file (a device, FIFO, socket or directory)",
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn devices_and_directories_are_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("zero.pem");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        for path in [link.as_path(), Path::new("/dev/zero"), dir.path()] {
            let e = read_bounded(path, 10).err().unwrap();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{}", path.display());
            assert!(e.to_string().contains("not a regular file"), "{e}");
        }
    }

    #[test]
    fn the_limit_is_inclusive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        assert_eq!(read_bounded(&path, 10).unwrap(), b"0123456789");
        let e = read_bounded(&path, 9).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        assert!(e.to_string().contains("limit of 9 bytes"), "{e}");
        let e = read_bounded(&dir.path().join("absent"), 9).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(read_bounded_text(&path, 10).is_err());
    }
}
