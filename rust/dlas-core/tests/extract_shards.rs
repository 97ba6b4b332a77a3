//! Shards of one job started together must have listed the same sources: chunk names
//! depend on the whole list, so two lists would give duplicated and missing chunks.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use dlas_core::extract::{extract_shard, ExtractOptions, Progress, Shard};
use dlas_core::CoreError;

mod common;
use common::{photo, three_sources};

/// While shard 1/2 looks at DST (it has listed SRC, its manifest is not written yet), a
/// source is added and shard 2/2 starts from the longer list (it gets as far as writing
/// its manifest, as two shards started together do).
struct OtherShardMeanwhile<'a> {
    src: &'a Path,
    dst: &'a Path,
    polls: AtomicUsize,
    done: AtomicBool,
}

impl Progress for OtherShardMeanwhile<'_> {
    fn cancelled(&self) -> bool {
        // The first poll is before DST is looked at; the next ones while it is.
        if self.polls.fetch_add(1, Ordering::SeqCst) == 0 {
            return false;
        }
        if !self.done.swap(true, Ordering::SeqCst) {
            photo(&self.src.join("a/x.jpg"), 620, 540, 9);
            let shard = Shard { index: 2, count: 2 };
            let started = StopOnceStarted(AtomicBool::new(false));
            let second = extract_shard(self.src, self.dst, &options(), shard, &started);
            assert!(matches!(second, Err(CoreError::Interrupted)), "{second:?}");
        }
        false
    }
}

/// Stops a run as soon as it has prepared DST.
struct StopOnceStarted(AtomicBool);

impl Progress for StopOnceStarted {
    fn start(&self, _: usize, _: u64) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

fn options() -> ExtractOptions {
    ExtractOptions {
        n_thread: 1,
        ..ExtractOptions::default()
    }
}

#[test]
fn shards_that_listed_different_sources_do_not_both_finish() {
    let dir = std::env::temp_dir().join(format!("dlas-shards-lists-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (src, dst) = (dir.join("S"), dir.join("D"));
    three_sources(&src);
    let meanwhile = OtherShardMeanwhile {
        src: &src,
        dst: &dst,
        polls: AtomicUsize::new(0),
        done: AtomicBool::new(false),
    };
    let first = extract_shard(
        &src,
        &dst,
        &options(),
        Shard { index: 1, count: 2 },
        &meanwhile,
    );
    let Err(CoreError::Destination { reason, .. }) = &first else {
        panic!("shard 1/2 finished from another list than shard 2/2: {first:?}");
    };
    assert!(
        reason.contains("2of2") && reason.contains("--overwrite"),
        "{reason}"
    );
    let manifest = std::fs::read_to_string(dst.join(".dlas_fast-job-1of2.json")).unwrap();
    assert!(manifest.contains("\"running\""), "{manifest}");
    let _ = std::fs::remove_dir_all(&dir);
}
