//! The items of the datasets over raw images (ImageFolderDataset, MultiScaleDataset):
//! the files of one or more folders in DLAS's order, each root's repeated by its weight.

use std::path::PathBuf;
use std::sync::Arc;

use super::folder::FolderIndex;
use super::{check_weights, CacheMode};
use crate::corrupt::{Augment, Key};
use crate::error::{CoreError, Result};

/// The images of one or more folders, in DLAS's ImageFolderDataset order: each root's
/// files (`sorted(os.walk(root))`, DLAS's image extensions, no `ref.jpg`) repeated
/// `weights[k]` times; or, sorted, every listed path in byte order (DLAS's
/// `find_files_of_type` over a list of roots, which MultiScaleDataset uses).
#[derive(Debug)]
pub struct FolderList {
    pub roots: Vec<Arc<FolderIndex>>,
    /// (first item, root) of each root with items, in item order.
    starts: Vec<(usize, usize)>,
    len: usize,
    /// Sorted: item i is `(root, file)` = `order[i]`.
    order: Option<Vec<(u32, u32)>>,
}

impl FolderList {
    /// Lists `roots` (each through its listing cache, as `mode` says); `weights` says
    /// how many times each root's files are listed.
    pub fn new(roots: &[PathBuf], weights: &[usize], mode: CacheMode, sort: bool) -> Result<Self> {
        if weights.len() != roots.len() {
            return Err(CoreError::option(
                "weights",
                format!(
                    "{} weights for {} paths; give one per path",
                    weights.len(),
                    roots.len()
                ),
            ));
        }
        let indexes = roots
            .iter()
            .map(|root| FolderIndex::open(root, mode).map(Arc::new))
            .collect::<Result<Vec<_>>>()?;
        // Sorted, every listed image takes 8 bytes of `order`; unsorted, the weights
        // only count.
        let counts: Vec<usize> = if sort {
            indexes.iter().map(|i| i.len()).collect()
        } else {
            vec![0; indexes.len()]
        };
        check_weights("weights", weights, &counts)?;
        let mut starts = Vec::new();
        let mut len = 0usize;
        for (k, (index, &w)) in indexes.iter().zip(weights).enumerate() {
            if index.len() * w > 0 {
                starts.push((len, k));
                len += index.len() * w;
            }
        }
        let order = sort.then(|| {
            // A root's weight repeats each of its paths in place, so each file is
            // sorted once and then repeated.
            let mut keyed: Vec<(Vec<u8>, (u32, u32))> = Vec::new();
            for (root, index) in indexes.iter().enumerate() {
                if weights[root] == 0 {
                    continue;
                }
                for file in 0..index.len() {
                    let path = index.path(file).into_os_string();
                    keyed.push((path.into_encoded_bytes(), (root as u32, file as u32)));
                }
            }
            keyed.sort();
            let mut order = Vec::with_capacity(len);
            for (_, at) in keyed {
                order.extend(std::iter::repeat_n(at, weights[at.0 as usize]));
            }
            order
        });
        Ok(FolderList {
            roots: indexes,
            starts,
            len,
            order,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// An error naming `items` unless `indices` are a batch of this list's items: at
    /// least one, at most [`crate::load::MAX_BATCH_ITEMS`], each in range.
    pub fn check_batch(&self, indices: &[usize]) -> Result<()> {
        if indices.is_empty() {
            return Err(CoreError::option("items", "no items to load"));
        }
        crate::load::check_batch_len(indices.len())?;
        match indices.iter().find(|&&i| i >= self.len) {
            None => Ok(()),
            Some(i) => Err(CoreError::option(
                "items",
                format!("item {i} of a dataset of {}", self.len),
            )),
        }
    }

    /// Heap bytes of the listings.
    pub fn resident_bytes(&self) -> usize {
        self.roots.iter().map(|r| r.resident_bytes()).sum::<usize>()
            + self.order.as_ref().map_or(0, |o| o.capacity() * 8)
    }

    /// `(root, file)` of item `i` (`i < len`).
    pub fn at(&self, i: usize) -> (usize, usize) {
        if let Some(order) = &self.order {
            let (root, file) = order[i];
            return (root as usize, file as usize);
        }
        let s = self.starts.partition_point(|&(first, _)| first <= i);
        let (first, root) = self.starts[s - 1];
        (root, (i - first) % self.roots[root].len())
    }

    /// The path of item `i` (`os.path.join(dirpath, name)` from the root as given).
    pub fn path(&self, i: usize) -> PathBuf {
        let (root, file) = self.at(i);
        self.roots[root].path(file)
    }

    /// Another listed image of the folder holding item `(root, file)`, drawn by `key`,
    /// skipping names with "ref." (as DLAS); None when there is none.
    pub fn other_tile(&self, root: usize, file: usize, key: Key) -> Option<PathBuf> {
        let index = &self.roots[root];
        let usable = |j: usize| j != file && !index.name(j).windows(4).any(|w| w == b"ref.");
        let range = index.siblings(file);
        let n = range.clone().filter(|&j| usable(j)).count();
        if n == 0 {
            return None;
        }
        let pick = Augment::new(key).below(n);
        range
            .filter(|&j| usable(j))
            .nth(pick)
            .map(|j| index.path(j))
    }
}
