//! Checking every file of a dataset folder: each image is decoded in full and each
//! `centers.pt` parsed, exactly as the loaders would, so that a truncated tile or a
//! damaged centers.pt is found before a training run trips over it.
//!
//! Which files: under the folder, recursively, every file whose name has one of DLAS's
//! image extensions ([`is_image_name`]: `ref.jpg` included) and every file named
//! `centers.pt`. Our own `.dlas_fast*` files and hidden names directly under the
//! folder (never chunks) are skipped; hidden files deeper down are checked, since the
//! loaders read them. Links are followed, each folder entered once (a
//! link loop is harmless).

use std::path::Path;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use super::{in_pool, lossy, reason_of, walk};
use crate::error::Result;
use crate::extract::sources::is_image_name;
use crate::image::{check_max_pixels, decode_file, DecodeOptions, DEFAULT_MAX_PIXELS};
use crate::torchfile::read_centers;

/// How to verify.
#[derive(Clone, Copy, Debug)]
pub struct VerifyOptions {
    /// Worker threads; `None`: one per core.
    pub threads: Option<usize>,
    /// Images declaring more pixels than this are reported as broken.
    pub max_pixels: u64,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            threads: None,
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }
}

/// What a checked file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Image,
    Centers,
    /// A folder that could not be listed (its files could not be checked).
    Folder,
}

/// One file (or folder) that failed, with why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Broken {
    pub path: String,
    pub kind: FileKind,
    pub reason: String,
}

/// The outcome of [`verify`].
#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    /// The folder as given.
    pub root: String,
    /// Files checked (images + centers.pt).
    pub files_checked: usize,
    pub images: usize,
    pub centers: usize,
    /// Bytes read.
    pub bytes: u64,
    /// Every broken file, in path order.
    pub broken: Vec<Broken>,
    /// Wall time, seconds.
    pub elapsed_secs: f64,
    /// Files checked per second.
    pub files_per_sec: f64,
}

impl VerifyReport {
    /// The process exit status the CLI uses: 0 when nothing is broken, 3 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.broken.is_empty() {
            0
        } else {
            3
        }
    }
}

/// Told about the files as they are checked (from worker threads).
pub trait Progress: Sync {
    /// `total` files are about to be checked.
    fn start(&self, _total: usize) {}
    /// One file was checked; `broken` is why it failed, if it did.
    fn file_done(&self, _path: &Path, _bytes: u64, _broken: Option<&str>) {}
}

/// A progress sink that ignores everything.
pub struct Silent;
impl Progress for Silent {}

const CENTERS: &[u8] = b"centers.pt";

/// Checks every image and centers.pt under `root` (see the module docs).
///
/// Errors only when `root` is not a folder that can be listed or `max_pixels` is out of
/// range; every broken file is in the report instead.
pub fn verify(root: &Path, opts: &VerifyOptions, progress: &dyn Progress) -> Result<VerifyReport> {
    let started = Instant::now();
    check_max_pixels("max_pixels", opts.max_pixels)?;
    let walked = walk(root, false, |name| is_image_name(name) || name == CENTERS)?;
    progress.start(walked.files.len());
    let decode = DecodeOptions {
        max_pixels: opts.max_pixels,
    };
    let checked: Vec<(bool, Option<Broken>)> = in_pool(opts.threads, || {
        walked
            .files
            .par_iter()
            .map(|f| {
                let (is_centers, reason) = check_file(&f.path, &decode);
                progress.file_done(&f.path, f.bytes, reason.as_deref());
                let broken = reason.map(|reason| Broken {
                    path: lossy(&f.path),
                    kind: if is_centers {
                        FileKind::Centers
                    } else {
                        FileKind::Image
                    },
                    reason,
                });
                (is_centers, broken)
            })
            .collect()
    });
    let mut report = VerifyReport {
        root: lossy(root),
        files_checked: walked.files.len(),
        bytes: walked.files.iter().map(|f| f.bytes).sum(),
        ..Default::default()
    };
    let mut broken: Vec<Broken> = walked
        .unreadable
        .iter()
        .map(|(path, reason)| Broken {
            path: lossy(path),
            kind: if is_image_name(path.as_os_str().as_encoded_bytes()) {
                FileKind::Image
            } else {
                FileKind::Folder
            },
            reason: reason.clone(),
        })
        .collect();
    for (is_centers, b) in checked {
        if is_centers {
            report.centers += 1;
        } else {
            report.images += 1;
        }
        broken.extend(b);
    }
    broken.sort_by(|a, b| a.path.cmp(&b.path));
    report.broken = broken;
    report.elapsed_secs = started.elapsed().as_secs_f64();
    if report.elapsed_secs > 0.0 {
        report.files_per_sec = report.files_checked as f64 / report.elapsed_secs;
    }
    Ok(report)
}

/// Checks one file: `(is it a centers.pt, why it is broken)`.
fn check_file(path: &Path, decode: &DecodeOptions) -> (bool, Option<String>) {
    let is_centers = path
        .file_name()
        .is_some_and(|n| n.as_encoded_bytes() == CENTERS);
    let reason = if is_centers {
        read_centers(path).err().map(|e| reason_of(&e, path))
    } else {
        decode_file(path, decode).err().map(|e| reason_of(&e, path))
    };
    (is_centers, reason)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::super::tests::{jpeg, png, temp_dir};
    use super::*;
    use crate::torchfile::write_centers;

    fn broken_paths(report: &VerifyReport) -> Vec<PathBuf> {
        report
            .broken
            .iter()
            .map(|b| PathBuf::from(&b.path))
            .collect()
    }

    struct Count(AtomicUsize, AtomicUsize);
    impl Progress for Count {
        fn start(&self, total: usize) {
            self.0.store(total, Ordering::Relaxed);
        }
        fn file_done(&self, _: &Path, _: u64, _: Option<&str>) {
            self.1.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn finds_every_broken_file_and_only_those() {
        let dir = temp_dir("verify");
        let chunk = dir.join("chunk");
        std::fs::create_dir_all(chunk.join("sub")).unwrap();
        std::fs::create_dir_all(dir.join(".dlas_fast-tmp")).unwrap();
        std::fs::write(chunk.join("00000001.jpg"), jpeg(64, 48)).unwrap();
        std::fs::write(chunk.join("sub/00000002.png"), png(20, 30)).unwrap();
        std::fs::write(chunk.join("ref.jpg"), jpeg(32, 32)).unwrap();
        let mut cut = jpeg(64, 48);
        cut.truncate(cut.len() / 2);
        std::fs::write(chunk.join("00000003.jpg"), cut).unwrap();
        let noise: Vec<u8> = (0..500u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        std::fs::write(chunk.join("00000004.png"), noise).unwrap();
        write_centers(&chunk.join("centers.pt"), &[(1, (10, 10), 20)]).unwrap();
        let other = dir.join("other");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("centers.pt"), b"PK\x03\x04 damaged").unwrap();
        std::fs::write(other.join("notes.txt"), b"not checked").unwrap();
        // Skipped: our own files and hidden names at the top (never chunks); a hidden
        // file in a chunk is a tile to the loaders, so it is checked.
        std::fs::write(dir.join(".dlas_fast-tmp/00000009.jpg"), b"junk").unwrap();
        std::fs::write(dir.join(".dlas_fast-index.bin"), b"junk").unwrap();
        std::fs::create_dir_all(dir.join(".trash")).unwrap();
        std::fs::write(dir.join(".trash/1.jpg"), b"junk").unwrap();
        std::fs::write(chunk.join(".hidden.jpg"), b"junk").unwrap();
        std::os::unix::fs::symlink(&dir, chunk.join("loop")).unwrap();

        let count = Count(AtomicUsize::new(0), AtomicUsize::new(0));
        let opts = VerifyOptions {
            threads: Some(2),
            ..Default::default()
        };
        let report = verify(&dir, &opts, &count).unwrap();
        assert_eq!(report.files_checked, 8);
        assert_eq!((report.images, report.centers), (6, 2));
        assert_eq!(count.0.load(Ordering::Relaxed), 8);
        assert_eq!(count.1.load(Ordering::Relaxed), 8);
        let broken = broken_paths(&report);
        assert_eq!(
            broken,
            [
                chunk.join(".hidden.jpg"),
                chunk.join("00000003.jpg"),
                chunk.join("00000004.png"),
                other.join("centers.pt")
            ]
        );
        assert_eq!(report.broken[0].kind, FileKind::Image);
        assert_eq!(report.broken[3].kind, FileKind::Centers);
        for b in &report.broken {
            assert!(!b.reason.is_empty() && !b.reason.contains(&b.path), "{b:?}");
        }
        assert_eq!(report.exit_code(), 3);

        // The pixel limit applies.
        std::fs::remove_dir_all(&other).unwrap();
        let small = VerifyOptions {
            threads: Some(1),
            max_pixels: 1000,
        };
        let report = verify(&chunk, &small, &Silent).unwrap();
        assert!(report
            .broken
            .iter()
            .any(|b| b.path == lossy(&chunk.join("00000001.jpg")) && b.reason.contains("limit")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A FIFO named like a tile and a link from centers.pt to /dev/zero are reported,
    /// not read (reading either would never end).
    #[test]
    fn special_files_are_reported_not_read() {
        let dir = temp_dir("verify-special");
        std::fs::write(dir.join("a.jpg"), jpeg(16, 16)).unwrap();
        let fifo = std::ffi::CString::new(dir.join("x.jpg").into_os_string().into_encoded_bytes())
            .unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        std::os::unix::fs::symlink("/dev/zero", dir.join("centers.pt")).unwrap();
        let report = verify(&dir, &VerifyOptions::default(), &Silent).unwrap();
        assert_eq!(report.files_checked, 3);
        let broken: Vec<_> = report
            .broken
            .iter()
            .map(|b| (b.path.as_str(), b.kind))
            .collect();
        let centers = lossy(&dir.join("centers.pt"));
        let x = lossy(&dir.join("x.jpg"));
        assert_eq!(
            broken,
            [
                (centers.as_str(), FileKind::Centers),
                (x.as_str(), FileKind::Image)
            ]
        );
        for b in &report.broken {
            assert!(b.reason.starts_with("not a regular file"), "{b:?}");
        }
        let bad = VerifyOptions {
            max_pixels: 0,
            ..Default::default()
        };
        assert!(verify(&dir, &bad, &Silent)
            .unwrap_err()
            .to_string()
            .contains("max_pixels"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_clean_folder_passes_and_a_missing_one_is_an_error() {
        let dir = temp_dir("verify-clean");
        std::fs::write(dir.join("a.jpg"), jpeg(16, 16)).unwrap();
        std::fs::write(dir.join("b.PNG"), png(8, 8)).unwrap();
        std::fs::write(dir.join("c.Jpg"), b"not an image extension").unwrap();
        let report = verify(&dir, &VerifyOptions::default(), &Silent).unwrap();
        assert_eq!((report.files_checked, report.exit_code()), (2, 0));
        assert!(verify(&dir.join("nope"), &VerifyOptions::default(), &Silent).is_err());
        assert!(verify(&dir.join("a.jpg"), &VerifyOptions::default(), &Silent).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
