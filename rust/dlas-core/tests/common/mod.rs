//! Helpers shared by the extraction tests (also included by rust/dlas-cli's tests):
//! source photos made on the spot, and the files a run leaves.
#![allow(dead_code)] // each test file uses some of them

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dlas_core::image::{encode_jpeg, Rgb8};

/// A noisy gradient of `w`×`h` as a JPEG of `quality`, so that tiles do not compress to
/// nothing.
pub fn noisy_jpeg(w: usize, h: usize, seed: u32, quality: u8) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let mut data = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let noise = (state % 24) as usize;
            data.push(((x * 255 / w + noise) % 256) as u8);
            data.push(((y * 255 / h + noise) % 256) as u8);
            data.push((((x + y) * 127 / w + noise) % 256) as u8);
        }
    }
    let mut jpeg = Vec::new();
    encode_jpeg(Rgb8::new(w, h, data).view(), quality, &mut jpeg).unwrap();
    jpeg
}

/// Writes [`noisy_jpeg`] (quality 92) at `path`, creating its folder.
pub fn photo(path: &Path, w: usize, h: usize, seed: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, noisy_jpeg(w, h, seed, 92)).unwrap();
}

/// Three sources in three folders of `src`, a few chunks each.
pub fn three_sources(src: &Path) {
    photo(&src.join("b/x.jpg"), 640, 560, 1);
    photo(&src.join("c/y.jpg"), 660, 560, 2);
    photo(&src.join("d/z.jpg"), 680, 560, 3);
}

/// Every file under `root` but our own dotfiles: relative path -> bytes.
pub fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    walk(root, false)
}

/// Every entry under `root`, our dotfiles included: relative path -> bytes (empty for
/// folders).
pub fn everything(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    walk(root, true)
}

/// The files under `root`; with `all`, also our dotfiles and the folders (as empty).
fn walk(root: &Path, all: bool) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            if !all && rel.to_string_lossy().starts_with(".dlas_fast") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
                if all {
                    out.insert(rel, Vec::new());
                }
            } else {
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}
