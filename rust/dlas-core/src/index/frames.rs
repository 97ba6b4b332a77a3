//! Frame-counter grouping (docs/spec.md §6): which names are consecutive frames of one video.
//!
//! A name is `<source><counter>` where the counter is its last `width` bytes (12 for
//! MultiFrameDataset's chunk folders). Frames are sorted by (source, counter) and split
//! into runs where the counter is not the previous one plus one. When any counter of a
//! source is not a number, that source's frames form one run in name order.

use std::ops::Range;

/// Runs of consecutive frames: `order[run]` are the name indices of one run, in frame
/// order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameRuns {
    pub order: Vec<u32>,
    pub runs: Vec<Range<u32>>,
}

/// `(name[:-width], name[-width:])` in characters (as Python slices a `str`), or in
/// bytes for a name that is not UTF-8.
fn split(name: &[u8], width: usize) -> (&[u8], &[u8]) {
    let at = match std::str::from_utf8(name) {
        Ok(s) if !s.is_ascii() => s
            .char_indices()
            .rev()
            .nth(width.saturating_sub(1))
            .map_or(0, |(i, _)| i),
        _ => name.len().saturating_sub(width),
    };
    name.split_at(if width == 0 { name.len() } else { at })
}

/// A counter made of ASCII digits only (what Python's `int()` reads for a frame
/// counter in practice), or None.
fn counter_value(counter: &[u8]) -> Option<u64> {
    if counter.is_empty() || counter.len() > 19 || !counter.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        counter
            .iter()
            .fold(0u64, |v, &d| v * 10 + (d - b'0') as u64),
    )
}

/// Groups `names` (any order) into runs of consecutive frames, sources in byte order.
/// Names are bucketed by source (hashing), then each source's frames are sorted by
/// counter: no comparison of whole names across a million-name list.
pub fn frame_runs(names: &[&[u8]], width: usize) -> FrameRuns {
    assert!(names.len() < u32::MAX as usize, "too many names");
    let mut by_source: std::collections::HashMap<&[u8], Vec<u32>> = Default::default();
    let mut counters = Vec::with_capacity(names.len());
    for (i, n) in names.iter().enumerate() {
        let (source, counter) = split(n, width);
        counters.push(counter_value(counter));
        by_source.entry(source).or_default().push(i as u32);
    }
    let mut sources: Vec<(&[u8], Vec<u32>)> = by_source.into_iter().collect();
    sources.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut order = Vec::with_capacity(names.len());
    let mut runs = Vec::new();
    for (_, mut frames) in sources {
        let start = order.len();
        if frames.iter().all(|&i| counters[i as usize].is_some()) {
            // Equal values (counters of different widths) keep a defined order.
            frames.sort_unstable_by_key(|&i| (counters[i as usize], names[i as usize]));
            let mut run = start;
            for (k, &i) in frames.iter().enumerate().skip(1) {
                let prev = counters[frames[k - 1] as usize].unwrap_or(0);
                if counters[i as usize] != prev.checked_add(1) {
                    runs.push(run as u32..(start + k) as u32);
                    run = start + k;
                }
            }
            runs.push(run as u32..(start + frames.len()) as u32);
        } else {
            frames.sort_unstable_by_key(|&i| names[i as usize]);
            runs.push(start as u32..(start + frames.len()) as u32);
        }
        order.extend(frames);
    }
    FrameRuns { order, runs }
}

/// Every window of `frames` consecutive frames: the position in `order` of its first
/// frame, run after run.
pub fn windows_of(runs: &FrameRuns, frames: usize) -> impl Iterator<Item = u32> + '_ {
    let f = frames.max(1) as u32;
    runs.runs
        .iter()
        .filter(move |r| r.end - r.start >= f)
        .flat_map(move |r| r.start..=r.end - f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs_of(names: &[&str]) -> Vec<Vec<&'static str>> {
        let bytes: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
        let r = frame_runs(&bytes, 12);
        r.runs
            .iter()
            .map(|run| {
                r.order[run.start as usize..run.end as usize]
                    .iter()
                    .map(|&i| &*names[i as usize].to_string().leak())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn runs_split_at_gaps_and_sources() {
        let names = [
            "b000000000002",
            "a000000000003",
            "a000000000001",
            "a000000000002",
            "a000000000005",
            "b000000000001",
            "ab000000000001",
        ];
        assert_eq!(
            runs_of(&names),
            vec![
                vec!["a000000000001", "a000000000002", "a000000000003"],
                vec!["a000000000005"],
                vec!["ab000000000001"],
                vec!["b000000000001", "b000000000002"],
            ]
        );
    }

    #[test]
    fn a_non_numeric_counter_makes_its_source_one_run_in_name_order() {
        let names = [
            "v00000000000x",
            "v000000000001",
            "v000000000009",
            "w000000000001",
        ];
        assert_eq!(
            runs_of(&names),
            vec![
                vec!["v000000000001", "v000000000009", "v00000000000x"],
                vec!["w000000000001"],
            ]
        );
        // Names shorter than the counter: the whole name is the counter.
        assert_eq!(runs_of(&["7", "8", "10"]), vec![vec!["7", "8"], vec!["10"]]);
        // Counted in characters, as Python slices names.
        assert_eq!(
            split("é000000000001".as_bytes(), 12),
            ("é".as_bytes(), &b"000000000001"[..])
        );
        assert_eq!(split("aé".as_bytes(), 12), (&b""[..], "aé".as_bytes()));
    }

    #[test]
    fn windows_never_cross_runs() {
        let names: Vec<String> = (1..=5).chain(7..=8).map(|i| format!("s{i:012}")).collect();
        let bytes: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
        let r = frame_runs(&bytes, 12);
        assert_eq!(windows_of(&r, 3).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(windows_of(&r, 2).collect::<Vec<_>>(), [0, 1, 2, 3, 5]);
        assert_eq!(windows_of(&r, 6).count(), 0);
    }
}

/// One MultiFrameDataset item: `frames` chunks of one root (consecutive frames of one
/// source) and the tile number taken from each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameItem {
    pub root: usize,
    pub chunks: Vec<usize>,
    pub tile: usize,
}

/// The items of a MultiFrameDataset over one or more roots: for each root (repeated
/// `weight` times), every window of `frames` consecutive frames of one source, and for
/// each window every tile offset that all of its frames have (after `ignore_first`).
#[derive(Debug)]
pub struct FrameSet {
    pub roots: Vec<std::sync::Arc<super::RootIndex>>,
    frames: usize,
    ignore_first: usize,
    /// Per root: its chunks in frame order (runs back to back).
    orders: Vec<Vec<u32>>,
    /// (root, position of the first frame in that root's order).
    windows: Vec<(u32, u32)>,
    /// `starts[i]`: the item number of `windows[i]`'s first item; one extra at the end.
    starts: Vec<u64>,
}

impl FrameSet {
    pub fn new(
        roots: Vec<std::sync::Arc<super::RootIndex>>,
        weights: &[usize],
        ignore_first: usize,
        frames: usize,
    ) -> crate::Result<Self> {
        use crate::error::CoreError;
        if weights.len() != roots.len() {
            return Err(CoreError::option(
                "weights",
                format!("{} weights for {} paths", weights.len(), roots.len()),
            ));
        }
        let max_frames = crate::load::MAX_BATCH_ITEMS;
        if !(1..=max_frames).contains(&frames) {
            return Err(CoreError::option(
                "num_frames",
                format!("must be an integer from 1 to {max_frames}, got {frames}"),
            ));
        }
        // At most one window per chunk, repeated `weights[k]` times.
        let chunks: Vec<usize> = roots.iter().map(|r| r.chunks.len()).collect();
        super::check_weights("weights", weights, &chunks)?;
        let mut orders = Vec::with_capacity(roots.len());
        let mut windows = Vec::new();
        let mut starts = vec![0u64];
        for (ri, (root, &w)) in roots.iter().zip(weights).enumerate() {
            let names: Vec<&[u8]> = (0..root.chunks.len()).map(|c| root.chunk_name(c)).collect();
            let runs = frame_runs(&names, 12);
            let mut own = Vec::new();
            for at in windows_of(&runs, frames) {
                let offsets = runs.order[at as usize..at as usize + frames]
                    .iter()
                    .map(|&c| {
                        (root.chunks[c as usize].tile_count as usize).saturating_sub(ignore_first)
                    })
                    .min()
                    .unwrap_or(0);
                if offsets > 0 {
                    own.push((at, offsets as u64));
                }
            }
            for _ in 0..w {
                for &(at, offsets) in &own {
                    windows.push((ri as u32, at));
                    starts.push(starts.last().copied().unwrap_or(0) + offsets);
                }
            }
            orders.push(runs.order);
        }
        Ok(FrameSet {
            roots,
            frames,
            ignore_first,
            orders,
            windows,
            starts,
        })
    }

    pub fn len(&self) -> usize {
        *self.starts.last().unwrap_or(&0) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn locate(&self, i: usize) -> Option<FrameItem> {
        if i >= self.len() {
            return None;
        }
        let w = self.starts.partition_point(|&s| s <= i as u64) - 1;
        let (root, at) = self.windows[w];
        let order = &self.orders[root as usize];
        Some(FrameItem {
            root: root as usize,
            chunks: order[at as usize..at as usize + self.frames]
                .iter()
                .map(|&c| c as usize)
                .collect(),
            tile: self.ignore_first + (i as u64 - self.starts[w]) as usize,
        })
    }

    /// Heap bytes of this view (the indexes not included).
    pub fn resident_bytes(&self) -> usize {
        self.orders.iter().map(|o| o.capacity() * 4).sum::<usize>()
            + self.windows.capacity() * 8
            + self.starts.capacity() * 8
    }
}
