//! The items of a chunked dataset over one or more roots: DLAS's chunk list with
//! `weights` (each root's chunks repeated that many times) and `ignore_first` (the
//! first N tiles of every chunk dropped; chunks left empty are dropped too).

use std::path::PathBuf;
use std::sync::Arc;

use super::RootIndex;
use crate::error::{CoreError, Result};

/// One chunk in item order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub root: u32,
    pub chunk: u32,
    /// Index of the chunk's first item among its tiles (`ignore_first`).
    pub first_tile: u32,
}

/// Where an item lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Item {
    pub root: usize,
    pub chunk: usize,
    pub tile: usize,
}

/// The dataset's items, in DLAS order: roots in the given order, each repeated
/// `weight` times, chunks sorted by name, tiles in listing order.
#[derive(Debug)]
pub struct TileSet {
    pub roots: Vec<Arc<RootIndex>>,
    slots: Vec<Slot>,
    /// `starts[i]`: the item number of `slots[i]`'s first item; one extra at the end.
    starts: Vec<u64>,
}

impl TileSet {
    pub fn new(roots: Vec<Arc<RootIndex>>, weights: &[usize], ignore_first: usize) -> Result<Self> {
        if weights.len() != roots.len() {
            return Err(CoreError::option(
                "weights",
                format!(
                    "{} weights for {} paths: give one per path",
                    weights.len(),
                    roots.len()
                ),
            ));
        }
        let counts: Vec<usize> = roots
            .iter()
            .map(|r| {
                r.chunks
                    .iter()
                    .filter(|c| c.tile_count as usize > ignore_first)
                    .count()
            })
            .collect();
        super::check_weights("weights", weights, &counts)?;
        let mut slots = Vec::new();
        let mut starts = vec![0u64];
        for (ri, (root, &w)) in roots.iter().zip(weights).enumerate() {
            for _ in 0..w {
                for (ci, c) in root.chunks.iter().enumerate() {
                    let n = (c.tile_count as usize).saturating_sub(ignore_first);
                    if n > 0 {
                        slots.push(Slot {
                            root: ri as u32,
                            chunk: ci as u32,
                            first_tile: ignore_first as u32,
                        });
                        starts.push(starts.last().expect("non-empty") + n as u64);
                    }
                }
            }
        }
        Ok(TileSet {
            roots,
            slots,
            starts,
        })
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        *self.starts.last().expect("non-empty") as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of chunks in item order (repeats counted).
    pub fn num_slots(&self) -> usize {
        self.slots.len()
    }

    /// The chunks in item order, with the item number each starts at.
    pub fn slots(&self) -> impl Iterator<Item = (Slot, u64)> + '_ {
        self.slots.iter().copied().zip(self.starts.iter().copied())
    }

    /// Where item `i` lives; `None` past the end.
    pub fn locate(&self, i: usize) -> Option<Item> {
        if i >= self.len() {
            return None;
        }
        let s = self.starts.partition_point(|&st| st <= i as u64) - 1;
        let slot = self.slots[s];
        Some(Item {
            root: slot.root as usize,
            chunk: slot.chunk as usize,
            tile: slot.first_tile as usize + (i as u64 - self.starts[s]) as usize,
        })
    }

    /// The path of item `i` (`os.path.join(root, chunk, tile)`).
    pub fn tile_path(&self, i: usize) -> Option<PathBuf> {
        let it = self.locate(i)?;
        Some(self.roots[it.root].tile_path(it.chunk, it.tile))
    }

    /// Heap bytes of this view (the roots' indexes not included).
    pub fn resident_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>() + self.starts.capacity() * 8
    }
}
