//! Looking at a dataset folder without loading it: [`verify`] decodes every image and
//! parses every `centers.pt` to find broken files; [`inspect`] describes what the
//! folder holds (chunks, tiles, sizes, scale levels, disk use, cache state).
//!
//! Both are read-only: they never write, rebuild or remove a cache or any other file.
//! Their results are plain serde-serialisable structs; the `dlas-fast` command prints
//! them as a table or as JSON.

pub mod inspect;
pub mod verify;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use inspect::{inspect, Inspection};
pub use verify::{verify, VerifyOptions, VerifyReport};

use crate::error::{CoreError, Result};
use crate::image::{decoder_limits, image_error, jpeg_frame_size, DecodeOptions, IMAGE_FILE};
use crate::input::{image_max_bytes, too_large};

/// At most this many example names are kept per problem in a report.
pub const MAX_EXAMPLES: usize = 5;

/// How many things have a property, with the first few of them (in path order).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Examples {
    pub count: usize,
    /// Up to [`MAX_EXAMPLES`] of them (a path or name, with a reason where there is one).
    pub examples: Vec<String>,
}

impl Examples {
    pub(crate) fn add(&mut self, example: impl FnOnce() -> String) {
        self.count += 1;
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(example());
        }
    }

    pub(crate) fn merge(&mut self, other: Examples) {
        self.count += other.count;
        let room = MAX_EXAMPLES.saturating_sub(self.examples.len());
        self.examples.extend(other.examples.into_iter().take(room));
    }
}

/// How many images have one pixel size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SizeCount {
    pub width: u32,
    pub height: u32,
    pub count: usize,
}

/// A histogram of pixel sizes while it is being filled.
pub(crate) type SizeMap = BTreeMap<(u32, u32), usize>;

pub(crate) fn merge_sizes(into: &mut SizeMap, from: SizeMap) {
    for (k, n) in from {
        *into.entry(k).or_default() += n;
    }
}

/// The histogram as a list, the most common size first (ties: smaller size first).
pub(crate) fn size_list(map: SizeMap) -> Vec<SizeCount> {
    let mut out: Vec<SizeCount> = map
        .into_iter()
        .map(|((width, height), count)| SizeCount {
            width,
            height,
            count,
        })
        .collect();
    out.sort_by_key(|s| std::cmp::Reverse(s.count));
    out
}

/// A file found by [`walk`].
#[derive(Clone, Debug)]
pub(crate) struct Found {
    pub path: PathBuf,
    /// Size in bytes (links followed).
    pub bytes: u64,
}

/// What [`walk`] found.
#[derive(Debug, Default)]
pub(crate) struct Walked {
    /// Files, sorted by path bytes.
    pub files: Vec<Found>,
    /// Folders that could not be listed and entries that could not be read, with why.
    pub unreadable: Vec<(PathBuf, String)>,
}

/// Every file under `root` whose name `keep` accepts, recursively.
///
/// Unless `hidden` is set, names starting with `.dlas_fast` (our own files) are skipped
/// everywhere, and names starting with `.` directly under `root` (the loaders never take
/// such a folder for a chunk); deeper hidden names are walked, as the loaders read them. Links are followed
/// (a chunk folder may be a link, as the chunk index allows), but a folder is entered
/// at most once, so a link loop ends the descent instead of recursing forever.
pub(crate) fn walk(root: &Path, hidden: bool, keep: impl Fn(&[u8]) -> bool) -> Result<Walked> {
    let meta = std::fs::metadata(root).map_err(|e| CoreError::io(root, e))?;
    if !meta.is_dir() {
        return Err(not_a_folder(root));
    }
    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    seen.insert((meta.dev(), meta.ino()));
    let mut out = Walked::default();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                out.unreadable
                    .push((dir, format!("cannot list folder: {e}")));
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    out.unreadable
                        .push((dir.clone(), format!("cannot list folder: {e}")));
                    continue;
                }
            };
            let name = entry.file_name();
            let bytes = name.as_bytes();
            if !hidden
                && (bytes.starts_with(b".dlas_fast") || (dir == root && bytes.starts_with(b".")))
            {
                continue;
            }
            let path = entry.path();
            let meta = match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(e) => {
                    // A dangling link, or a file gone since the listing.
                    if keep(name.as_bytes()) {
                        out.unreadable.push((path, e.to_string()));
                    }
                    continue;
                }
            };
            if meta.is_dir() {
                if seen.insert((meta.dev(), meta.ino())) {
                    stack.push(path);
                }
            } else if keep(name.as_bytes()) {
                out.files.push(Found {
                    path,
                    bytes: meta.len(),
                });
            }
        }
    }
    out.files.sort_by(|a, b| {
        a.path
            .as_os_str()
            .as_bytes()
            .cmp(b.path.as_os_str().as_bytes())
    });
    out.unreadable
        .sort_by(|a, b| a.0.as_os_str().as_bytes().cmp(b.0.as_os_str().as_bytes()));
    Ok(out)
}

/// The error for a PATH that exists but is not a folder (it names the path).
pub(crate) fn not_a_folder(path: &Path) -> CoreError {
    CoreError::io(path, std::io::Error::other("not a folder"))
}

/// Runs `f` on a rayon pool of `threads` threads (`None` or 0: one per core) whose
/// threads are joined before this returns; on the calling thread if no pool can be made.
pub(crate) fn in_pool<T: Send>(threads: Option<usize>, f: impl FnOnce() -> T + Send) -> T {
    crate::index::with_pool(threads, "dlas-survey", f)
}

/// The message of `err` without the leading `"<path>: "` (the path is shown apart).
pub(crate) fn reason_of(err: &dyn std::fmt::Display, path: &Path) -> String {
    let text = err.to_string();
    let prefix = format!("{}: ", path.display());
    match text.strip_prefix(&prefix) {
        Some(rest) => rest.to_string(),
        None => text,
    }
}

/// A path as text (bytes that are not UTF-8 replaced).
pub(crate) fn lossy(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Opens `path` and reads only as much of it as it takes to learn the image's pixel
/// size. Returns the file's size in bytes (0 when it cannot be opened) and its
/// `(width, height)`. The format is sniffed from the content, as the decoder does; no
/// pixel is decoded.
pub fn image_header(path: &Path) -> (u64, Result<(u32, u32)>) {
    // Only a regular file is opened (a FIFO would block, /dev/zero never end).
    let (file, meta) = match crate::input::open_regular(path) {
        Ok(f) => f,
        Err(e) => return (0, Err(CoreError::io(path, e))),
    };
    (meta.len(), header_size(path, file, meta.len()))
}

fn header_size(path: &Path, file: std::fs::File, len: u64) -> Result<(u32, u32)> {
    let decode = DecodeOptions::default();
    let max = image_max_bytes(decode.max_pixels);
    if len > max {
        let err = too_large(&len.to_string(), max, IMAGE_FILE, "");
        return Err(CoreError::io(path, err));
    }
    let mut reader = BufReader::new(file);
    let head = reader.fill_buf().map_err(|e| CoreError::io(path, e))?;
    let bad = |reason: String| CoreError::Decode {
        path: path.to_path_buf(),
        reason,
    };
    if head.is_empty() {
        return Err(bad("empty file".into()));
    }
    let (w, h) = if head.starts_with(&[0xFF, 0xD8]) {
        jpeg_dimensions(reader).map_err(|e| bad(format!("JPEG header: {e}")))?
    } else {
        // The decoder's memory limits, as when decoding (a PNG's metadata is read here).
        let limits = match ::image::guess_format(head) {
            Ok(format) => match decoder_limits(head, format, &decode) {
                Ok(limits) => limits,
                // Declared beyond the pixel limit: the loaders refuse it, but its size
                // is what its header says (its metadata is not read).
                Err(CoreError::TooManyPixels { width, height, .. }) => {
                    return Ok((width as u32, height as u32))
                }
                Err(e) => return Err(bad(reason_of(&e, Path::new("")))),
            },
            Err(_) => ::image::Limits::no_limits(),
        };
        let mut reader = ::image::ImageReader::new(reader)
            .with_guessed_format()
            .map_err(|e| CoreError::io(path, e))?;
        reader.limits(limits);
        reader
            .into_dimensions()
            .map_err(|e| bad(image_error("", e)))?
    };
    if w == 0 || h == 0 {
        return Err(bad(format!("image has no pixels ({w}x{h})")));
    }
    Ok((w, h))
}

/// The frame size a JPEG's frame header (SOF marker) declares (see
/// [`jpeg_frame_size`]), reading the file only as far as that header.
fn jpeg_dimensions<R: Read>(mut r: R) -> std::result::Result<(u32, u32), String> {
    let mut head = Vec::new();
    // The first read takes what the caller's buffer holds; the rest grow.
    let mut chunk = 8 << 10;
    loop {
        if let Some(size) = jpeg_frame_size(&head)? {
            return Ok(size);
        }
        let read = (&mut r)
            .take(chunk)
            .read_to_end(&mut head)
            .map_err(|e| e.to_string())?;
        if read == 0 {
            return Err("the file ends before its frame header".into());
        }
        chunk = (2 * chunk).min(1 << 20);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::image::{encode_jpeg, Rgb8};

    /// A fresh, empty temporary folder for one test.
    pub(crate) fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dlas-survey-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A small, busy RGB image.
    pub(crate) fn picture(w: usize, h: usize) -> Rgb8 {
        let px = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
        Rgb8::new(w, h, px)
    }

    pub(crate) fn jpeg(w: usize, h: usize) -> Vec<u8> {
        let mut out = Vec::new();
        encode_jpeg(picture(w, h).view(), 90, &mut out).unwrap();
        out
    }

    pub(crate) fn png(w: usize, h: usize) -> Vec<u8> {
        let img = picture(w, h);
        let mut out = std::io::Cursor::new(Vec::new());
        ::image::RgbImage::from_raw(w as u32, h as u32, img.data)
            .unwrap()
            .write_to(&mut out, ::image::ImageFormat::Png)
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn headers_give_sizes_without_decoding() {
        let dir = temp_dir("headers");
        std::fs::write(dir.join("a.jpg"), jpeg(40, 24)).unwrap();
        std::fs::write(dir.join("b.png"), png(13, 7)).unwrap();
        // A PNG in a file named .jpg: sniffed from the content.
        std::fs::write(dir.join("c.jpg"), png(5, 6)).unwrap();
        std::fs::write(dir.join("d.png"), b"not an image at all").unwrap();
        let mut cut = jpeg(40, 24);
        cut.truncate(10);
        std::fs::write(dir.join("e.jpg"), cut).unwrap();
        let size = |n: &str| image_header(&dir.join(n)).1;
        assert_eq!(size("a.jpg").unwrap(), (40, 24));
        assert_eq!(size("b.png").unwrap(), (13, 7));
        assert_eq!(size("c.jpg").unwrap(), (5, 6));
        assert!(size("d.png").is_err());
        assert!(size("e.jpg").is_err());
        assert!(size("missing.png").is_err());
        let (bytes, _) = image_header(&dir.join("b.png"));
        assert_eq!(bytes, std::fs::metadata(dir.join("b.png")).unwrap().len());
        let (bytes, _) = image_header(&dir.join("d.png"));
        assert_eq!(bytes, 19);
        assert_eq!(image_header(&dir.join("missing.png")).0, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The frame size comes from the SOF marker of any coding (baseline, progressive,
    /// arithmetic), after fill bytes and other segments; a file without one, or cut
    /// inside the headers, is an error.
    #[test]
    fn jpeg_sizes_come_from_any_frame_header() {
        let img = picture(45, 29);
        let make = |set: &dyn Fn(&mut turbojpeg::Compressor)| {
            let mut c = turbojpeg::Compressor::new().unwrap();
            set(&mut c);
            c.compress_to_vec(turbojpeg::Image {
                pixels: &img.data[..],
                width: 45,
                pitch: 45 * 3,
                height: 29,
                format: turbojpeg::PixelFormat::RGB,
            })
            .unwrap()
        };
        let size = |bytes: &[u8]| jpeg_dimensions(bytes);
        let baseline = make(&|_| ());
        let progressive = make(&|c| c.set_progressive(true).unwrap());
        let arithmetic = make(&|c| c.set_arithmetic(true).unwrap());
        let both = make(&|c| {
            c.set_arithmetic(true).unwrap();
            c.set_progressive(true).unwrap()
        });
        for (name, bytes, sof) in [
            ("baseline", &baseline, 0xC0),
            ("progressive", &progressive, 0xC2),
            ("arithmetic", &arithmetic, 0xC9),
            ("arithmetic progressive", &both, 0xCA),
        ] {
            assert!(bytes.windows(2).any(|w| w == [0xFF, sof]), "{name}");
            assert_eq!(size(bytes), Ok((45, 29)), "{name}");
        }
        // Fill bytes before a marker.
        let mut filled = baseline.clone();
        filled.splice(2..2, [0xFF, 0xFF, 0xFF, 0xFE, 0, 4, b'h', b'i']);
        assert_eq!(size(&filled), Ok((45, 29)));
        // Cut before or inside the frame header; no frame header before the scan.
        let sof = baseline.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        for cut in [1, 2, 5, sof, sof + 6] {
            assert!(size(&baseline[..cut]).is_err(), "cut at {cut}");
        }
        let mut no_sof = baseline.clone();
        let len = u16::from_be_bytes([no_sof[sof + 2], no_sof[sof + 3]]) as usize;
        no_sof.drain(sof..sof + 2 + len);
        assert!(size(&no_sof).unwrap_err().contains("no frame header"));
        assert!(size(b"\xFF\xD8\x00").is_err());
    }

    #[test]
    fn walk_is_sorted_skips_hidden_and_survives_link_loops() {
        let dir = temp_dir("walk");
        for d in ["b/.in", "a/x", ".dlas_fast-tmp", ".hidden"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        for f in [
            "b/1.jpg",
            "a/x/2.png",
            "a/3.txt",
            ".dlas_fast-tmp/4.jpg",
            ".hidden/5.jpg",
            "b/.in/6.jpg",
            "b/.dlas_fast-x.jpg",
        ] {
            std::fs::write(dir.join(f), b"x").unwrap();
        }
        std::os::unix::fs::symlink(&dir, dir.join("a/loop")).unwrap();
        let got = walk(&dir, false, crate::extract::sources::is_image_name).unwrap();
        let names: Vec<_> = got
            .files
            .iter()
            .map(|f| f.path.strip_prefix(&dir).unwrap().to_path_buf())
            .collect();
        assert_eq!(
            names,
            [
                PathBuf::from("a/x/2.png"),
                PathBuf::from("b/.in/6.jpg"),
                PathBuf::from("b/1.jpg")
            ]
        );
        let all = walk(&dir, true, |_| true).unwrap();
        assert_eq!(all.files.len(), 7);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
