//! Opening the files we read (images, centers.pt, caches, manifests): regular files
//! only, and never more of one into memory than a bound.
//!
//! A FIFO, socket or device named like an image (or a link to one, such as a link to
//! `/dev/zero`) would otherwise block the open or the read forever, or be read until
//! memory runs out. So a file is opened read-only and non-blocking (a FIFO opens at
//! once), never as a controlling terminal, and the open descriptor is checked with
//! `fstat`: anything but a regular file (links followed) is refused with "not a regular
//! file", and nothing is read from it. There is no check-then-open race: what is checked
//! is what was opened. A file larger than the bound of its kind is refused from its
//! size alone, and the read stops at the bound should the file grow meanwhile.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The most a `centers.pt` may hold (a chunk's is a few kilobytes).
pub const CENTERS_MAX_BYTES: u64 = 64 << 20;
/// The most an index or listing cache may hold (tens of millions of tiles fit).
pub const CACHE_MAX_BYTES: u64 = 2 << 30;
/// The most a job manifest may hold.
pub const MANIFEST_MAX_BYTES: u64 = 64 << 20;
/// Bytes an image file may hold beyond eight per pixel of the pixel limit (headers and
/// metadata of small images).
pub const IMAGE_SLACK_BYTES: u64 = 64 << 20;

/// The most an image file may hold under a pixel limit of `max_pixels`: eight bytes per
/// pixel (16-bit RGBA stored uncompressed) plus [`IMAGE_SLACK_BYTES`].
pub fn image_max_bytes(max_pixels: u64) -> u64 {
    max_pixels
        .saturating_mul(8)
        .saturating_add(IMAGE_SLACK_BYTES)
}

/// What a file that is not regular is, for the message.
fn kind_of(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "a special file"
    }
}

fn not_regular(meta: &Metadata) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "not a regular file ({}); only regular files are read",
            kind_of(meta)
        ),
    )
}

/// Opens `path` for reading if it is a regular file (links followed), without blocking;
/// returns the file and its metadata. Errors carry no path (callers add it).
pub fn open_regular(path: &Path) -> io::Result<(File, Metadata)> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => f,
        Err(e) => {
            // A socket cannot be opened at all (ENXIO): say what it is instead.
            return Err(match std::fs::metadata(path) {
                Ok(meta) if !meta.is_file() => not_regular(&meta),
                _ => e,
            });
        }
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    Ok((file, meta))
}

/// Reads the whole regular file at `path`, refusing it when it holds more than
/// `max_bytes`; that message ends "over the limit of N for {what}; {hint}" (`what`:
/// e.g. "a centers.pt"; `hint`, what to do, may be empty).
/// Errors carry no path (callers add it).
pub fn read_regular(path: &Path, max_bytes: u64, what: &str, hint: &str) -> io::Result<Vec<u8>> {
    // A file of an open pack is a slice of its shard's map (crate::pack::reader).
    if let Some(bytes) = crate::pack::reader::read_member(path, max_bytes) {
        return bytes;
    }
    let (file, meta) = open_regular(path)?;
    if meta.len() > max_bytes {
        return Err(too_large(&meta.len().to_string(), max_bytes, what, hint));
    }
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(meta.len() as usize).map_err(|_| {
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!("not enough memory to read its {} bytes", meta.len()),
        )
    })?;
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(
            &format!("over {max_bytes}"),
            max_bytes,
            what,
            hint,
        ));
    }
    Ok(bytes)
}

/// The error for a file of `size` bytes over `max_bytes` (see [`read_regular`]).
pub fn too_large(size: &str, max_bytes: u64, what: &str, hint: &str) -> io::Error {
    let hint = if hint.is_empty() {
        String::new()
    } else {
        format!("; {hint}")
    };
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("too large: {size} bytes, over the limit of {max_bytes} for {what}{hint}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("dlas-input-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn mkfifo(path: &Path) {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    #[test]
    fn special_files_are_refused_without_blocking() {
        let dir = temp_dir("special");
        mkfifo(&dir.join("x.jpg"));
        std::os::unix::fs::symlink("/dev/zero", dir.join("y.jpg")).unwrap();
        std::os::unix::fs::symlink(dir.join("x.jpg"), dir.join("z.jpg")).unwrap();
        std::fs::create_dir(dir.join("d.jpg")).unwrap();
        let sock = std::os::unix::net::UnixListener::bind(dir.join("s.jpg")).unwrap();
        for (name, kind) in [
            ("x.jpg", "a FIFO"),
            ("y.jpg", "a character device"),
            ("z.jpg", "a FIFO"),
            ("d.jpg", "a folder"),
            ("s.jpg", "a socket"),
        ] {
            let err = read_regular(&dir.join(name), 1 << 20, "file", "").unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with("not a regular file") && text.contains(kind),
                "{name}: {text}"
            );
        }
        drop(sock);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn regular_files_are_read_up_to_the_bound() {
        let dir = temp_dir("bound");
        std::fs::write(dir.join("a"), b"0123456789").unwrap();
        std::os::unix::fs::symlink(dir.join("a"), dir.join("link")).unwrap();
        assert_eq!(
            read_regular(&dir.join("a"), 10, "file", "").unwrap(),
            b"0123456789"
        );
        assert_eq!(
            read_regular(&dir.join("link"), 10, "file", "").unwrap(),
            b"0123456789"
        );
        let err = read_regular(&dir.join("a"), 9, "a centers.pt", "remove it").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            err.to_string(),
            "too large: 10 bytes, over the limit of 9 for a centers.pt; remove it"
        );
        let missing = read_regular(&dir.join("nope"), 9, "file", "").unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
