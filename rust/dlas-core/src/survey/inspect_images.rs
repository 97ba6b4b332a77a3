//! Inspecting a folder of raw images, as the `imagefolder` mode lists it: its images
//! and folders, their pixel sizes, its disk use and the state of its listing cache.

use std::path::Path;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use super::{absent_cache_report, disk_total, CacheReport, CacheState};
use crate::error::Result;
use crate::index::folder::{self, FolderIndex};
use crate::survey::{
    image_header, lossy, merge_sizes, reason_of, size_list, Examples, SizeCount, SizeMap,
};

/// Bytes on disk of an image folder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImagesDisk {
    /// Every file under the root (ours and hidden ones included).
    pub total: u64,
    /// The listed images.
    pub images: u64,
    pub other: u64,
}

/// A folder of raw images, as the `imagefolder` mode lists it.
#[derive(Clone, Debug, Serialize)]
pub struct ImagesReport {
    pub root: String,
    /// Images, as the loader lists them.
    pub images: usize,
    /// Folders holding at least one of them.
    pub folders: usize,
    /// Pixel sizes, the most common first.
    pub sizes: Vec<SizeCount>,
    /// Images whose header cannot be read (`path: reason`).
    pub unreadable_images: Examples,
    pub disk: ImagesDisk,
    /// The listing cache (`.dlas_fast-folder/listing.bin`).
    pub cache: CacheReport,
    /// A DLAS `cache.pth` in the root (dlas_fast ignores it).
    pub dlas_cache_pth: bool,
    pub elapsed_secs: f64,
}

/// Images per parallel task when reading an image folder's headers.
const IMAGES_PER_TASK: usize = 256;

pub(super) fn inspect_images(root: &Path, started: Instant) -> Result<ImagesReport> {
    let locations = folder::cache_locations(root);
    let (listing, cache_report) = match folder::load_fresh(root)? {
        Some(listing) => {
            let report = CacheReport {
                state: CacheState::Fresh,
                path: listing.cache_path.as_deref().map(lossy),
                locations: locations.iter().map(|p| lossy(p)).collect(),
            };
            (listing, report)
        }
        None => (FolderIndex::build(root)?, absent_cache_report(&locations)),
    };
    let n = listing.len();
    let parts: Vec<(SizeMap, u64, Examples)> = (0..n.div_ceil(IMAGES_PER_TASK))
        .into_par_iter()
        .map(|task| {
            let mut sizes = SizeMap::new();
            let mut bytes = 0;
            let mut bad = Examples::default();
            for i in task * IMAGES_PER_TASK..((task + 1) * IMAGES_PER_TASK).min(n) {
                let path = listing.path(i);
                let (b, size) = image_header(&path);
                bytes += b;
                match size {
                    Ok(s) => *sizes.entry(s).or_default() += 1,
                    Err(e) => bad.add(|| format!("{}: {}", path.display(), reason_of(&e, &path))),
                }
            }
            (sizes, bytes, bad)
        })
        .collect();
    let mut sizes = SizeMap::new();
    let mut disk = ImagesDisk::default();
    let mut unreadable = Examples::default();
    for (s, b, bad) in parts {
        merge_sizes(&mut sizes, s);
        disk.images += b;
        unreadable.merge(bad);
    }
    let mut folders = 0;
    let mut i = 0;
    while i < n {
        folders += 1;
        i = listing.siblings(i).end;
    }
    disk.total = disk_total(root)?;
    disk.other = disk.total.saturating_sub(disk.images);
    Ok(ImagesReport {
        root: lossy(root),
        images: n,
        folders,
        sizes: size_list(sizes),
        unreadable_images: unreadable,
        disk,
        cache: cache_report,
        dlas_cache_pth: root.join("cache.pth").is_file(),
        elapsed_secs: started.elapsed().as_secs_f64(),
    })
}
