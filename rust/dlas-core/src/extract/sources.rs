//! Finding the source images (docs/spec.md §2 input rules) and naming their chunks.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{CoreError, Result};

/// The extensions DLAS accepts, case as written (so `.Jpg` is not an image).
pub const IMAGE_EXTENSIONS: [&str; 12] = [
    ".jpg", ".JPG", ".jpeg", ".JPEG", ".png", ".PNG", ".ppm", ".PPM", ".bmp", ".BMP", ".webp",
    ".WEBP",
];

/// True when `name` ends with one of [`IMAGE_EXTENSIONS`].
pub fn is_image_name(name: &[u8]) -> bool {
    IMAGE_EXTENSIONS
        .iter()
        .any(|ext| name.ends_with(ext.as_bytes()))
}

/// True for a file name a walk lists as an image: an image extension, and not a
/// chunk's reference (names containing `ref.jpg` are left out, as DLAS does).
pub fn is_source_name(name: &[u8]) -> bool {
    is_image_name(name) && !contains(name, b"ref.jpg")
}

/// What walking the input folder found.
#[derive(Debug, Default)]
pub struct SourceList {
    /// Image files in DLAS order: folders sorted by path, names sorted within each.
    pub files: Vec<PathBuf>,
    /// Folders that could not be listed, with the reason.
    pub unreadable: Vec<(PathBuf, String)>,
}

/// Lists the source images under `root` as DLAS does (`sorted(os.walk(root))`, then
/// sorted names; names containing `ref.jpg` ignored). Symbolic links to folders are
/// not followed (so a link loop is harmless); links to files are listed.
pub fn list_sources(root: &Path) -> Result<SourceList> {
    let meta = std::fs::metadata(root).map_err(|e| CoreError::io(root, e))?;
    if !meta.is_dir() {
        return Err(CoreError::option(
            "src",
            format!("{} is not a folder", root.display()),
        ));
    }
    let mut dirs: Vec<(PathBuf, Vec<PathBuf>)> = Vec::new();
    let mut list = SourceList::default();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                list.unreadable.push((dir, e.to_string()));
                continue;
            }
        };
        let mut files = Vec::new();
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    list.unreadable.push((dir.clone(), e.to_string()));
                    continue;
                }
            };
            let path = entry.path();
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if is_dir {
                stack.push(path);
                continue;
            }
            // A symlink to a folder is a "dir" for os.walk, never descended into.
            let is_link_to_dir = entry.file_type().map(|t| t.is_symlink()).unwrap_or(false)
                && std::fs::metadata(&path)
                    .map(|m| m.is_dir())
                    .unwrap_or(false);
            let name = entry.file_name();
            let name = name.as_bytes();
            if !is_link_to_dir && is_source_name(name) {
                files.push(path);
            }
        }
        files.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
        dirs.push((dir, files));
    }
    dirs.sort_by(|a, b| a.0.as_os_str().as_bytes().cmp(b.0.as_os_str().as_bytes()));
    list.files = dirs.into_iter().flat_map(|(_, f)| f).collect();
    Ok(list)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The chunk folder names of `sources`, in order: the file name without its extension
/// (bytes that are not UTF-8 replaced), with `_2`, `_3`... added to later sources whose
/// name is already taken. `suffixes` (e.g. `["_left", "_right"]`) gives several chunks
/// per source; the result has `sources.len() * max(1, suffixes.len())` names.
pub fn chunk_names(sources: &[PathBuf], suffixes: &[&str]) -> Vec<String> {
    let suffixes: &[&str] = if suffixes.is_empty() { &[""] } else { suffixes };
    let mut used = HashSet::new();
    let mut out = Vec::with_capacity(sources.len() * suffixes.len());
    for src in sources {
        let stem = stem_of(src);
        for suffix in suffixes {
            let mut base = format!("{stem}{suffix}");
            if base.starts_with('.') {
                // Loaders skip names starting with '.', and so do our own temporary files.
                base.insert(0, '_');
            }
            let mut name = base.clone();
            let mut k = 2;
            while !used.insert(name.clone()) {
                name = format!("{base}_{k}");
                k += 1;
            }
            out.push(name);
        }
    }
    out
}

/// The file name without its (last) extension, lossily decoded.
fn stem_of(path: &Path) -> String {
    let name = path.file_name().unwrap_or(OsStr::new("source"));
    let bytes = name.as_bytes();
    let stem = match bytes.iter().rposition(|&b| b == b'.') {
        Some(0) | None => bytes,
        Some(i) => &bytes[..i],
    };
    String::from_utf8_lossy(stem).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_are_case_exact() {
        assert!(is_image_name(b"a.jpg"));
        assert!(is_image_name(b"a.WEBP"));
        assert!(!is_image_name(b"a.Jpg"));
        assert!(!is_image_name(b"a.gif"));
    }

    #[test]
    fn names_are_stems_made_unique_in_order() {
        let srcs: Vec<PathBuf> = ["a/x.jpg", "b/x.png", "c/y.jpg", "d/x_2.jpg"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(chunk_names(&srcs, &[]), vec!["x", "x_2", "y", "x_2_2"]);
        assert_eq!(
            chunk_names(&srcs[..1], &["_left", "_right"]),
            vec!["x_left", "x_right"]
        );
    }

    #[test]
    fn frame_counters_stay_at_the_end() {
        let srcs = vec![PathBuf::from("v/clip000000000001.png")];
        assert_eq!(chunk_names(&srcs, &[]), vec!["clip000000000001"]);
    }

    #[test]
    fn hidden_names_are_made_visible() {
        let srcs = vec![PathBuf::from(".hidden.jpg")];
        let names = chunk_names(&srcs, &[]);
        assert!(!names[0].starts_with('.'), "{names:?}");
    }
}
