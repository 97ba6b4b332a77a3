//! Loading the tiles of chunked datasets with their chunk's ref: [`RefCache`] keeps,
//! per dataset and process, the last decoded ref.jpg images and what is derived from
//! them alone (the ref's HQ and LQ planes, and the mask planes of a centre), so that a
//! chunk's ref is decoded and resized once, not once per tile.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::{pool, Geometry, Loaded, PreparedMask, PreparedRef, Shape};
use crate::error::Result;
use crate::image::{decode_file, DecodeOptions, Rgb8};

/// A tile's chunk ref: its path, the tile's `(row, col)` centre and width in it.
pub type TileRef = (PathBuf, (i64, i64), i64);

/// One tile to load: its path, and its ref when the dataset reads refs.
pub type TileSpec = (PathBuf, Option<TileRef>);

/// A small most-recently-used map.
struct Lru<K, V> {
    slots: Mutex<Vec<(K, Arc<V>)>>,
    capacity: usize,
}

impl<K: PartialEq + Clone, V> Lru<K, V> {
    fn new(capacity: usize) -> Self {
        Lru {
            slots: Mutex::new(Vec::new()),
            capacity: capacity.max(1),
        }
    }

    fn get_or(&self, key: &K, make: impl FnOnce() -> Result<V>) -> Result<Arc<V>> {
        {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = slots.iter().position(|(k, _)| k == key) {
                let hit = slots.remove(i);
                let v = hit.1.clone();
                slots.push(hit);
                return Ok(v);
            }
        }
        let v = Arc::new(make()?);
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slots.len() >= self.capacity {
            slots.remove(0);
        }
        slots.push((key.clone(), v.clone()));
        Ok(v)
    }
}

/// The recently used refs of one dataset: decoded images, their prepared planes, and
/// prepared masks.
pub struct RefCache {
    images: Lru<PathBuf, Rgb8>,
    prepared: Lru<(PathBuf, Geometry), PreparedRef>,
    masks: Lru<(Geometry, (i64, i64), i64), PreparedMask>,
}

impl RefCache {
    /// A cache of the last `capacity` refs (and 64 masks).
    pub fn new(capacity: usize) -> RefCache {
        RefCache {
            images: Lru::new(capacity),
            prepared: Lru::new(capacity),
            masks: Lru::new(64),
        }
    }

    /// Decodes one tile, and takes its ref from the cache (decoding it on a miss).
    pub fn load(&self, (tile, reference): &TileSpec, shape: &Shape) -> Result<Loaded> {
        let opts = DecodeOptions::default();
        let img = decode_file(tile, &opts)?;
        let geo = Geometry::new((img.height, img.width), shape);
        geo.check(tile)?;
        let reference = match reference {
            None => None,
            Some((path, centre, width)) => {
                let key = (path.clone(), geo);
                let prepared = self.prepared.get_or(&key, || {
                    let image = self.images.get_or(path, || decode_file(path, &opts))?;
                    Ok(PreparedRef::new(&image, &geo))
                })?;
                let mask = self.masks.get_or(&(geo, *centre, *width), || {
                    Ok(PreparedMask::new(&geo, *centre, *width))
                })?;
                Some((prepared, mask))
            }
        };
        Ok(Loaded {
            reference,
            ..Loaded::new(geo, img)
        })
    }

    /// Loads `items` (in order): on this thread when `threads` is 1 or there is one
    /// item, else on the loader pool's `threads` threads.
    pub fn load_all(
        &self,
        items: &[TileSpec],
        shape: &Shape,
        threads: usize,
    ) -> Result<Vec<Loaded>> {
        if threads <= 1 || items.len() <= 1 {
            return items.iter().map(|it| self.load(it, shape)).collect();
        }
        use rayon::prelude::*;
        pool::run(threads, || {
            items
                .par_iter()
                .with_min_len(items.len().div_ceil(threads))
                .map(|it| self.load(it, shape))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_entry_goes_first() {
        let lru: Lru<u32, u32> = Lru::new(2);
        let made = std::cell::Cell::new(0);
        let get = |k: u32| {
            lru.get_or(&k, || {
                made.set(made.get() + 1);
                Ok(k * 10)
            })
            .unwrap()
        };
        assert_eq!(*get(1), 10);
        assert_eq!(*get(2), 20);
        assert_eq!(*get(1), 10, "a hit");
        assert_eq!(made.get(), 2);
        get(3); // evicts 2, the least recently used
        get(1);
        assert_eq!(made.get(), 3, "1 was kept");
        get(2);
        assert_eq!(made.get(), 4, "2 was evicted");
    }
}
