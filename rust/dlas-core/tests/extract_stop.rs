//! An extraction stopped part-way (Ctrl-C asks it through `Progress::cancelled`) is
//! completed by `resume` into exactly what one whole run writes, whatever mode the
//! stopped run was in.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use dlas_core::extract::{extract, ExtractOptions, Progress, Silent};
use dlas_core::CoreError;

mod common;
use common::{everything, photo, three_sources, tree};

/// Asks the run to stop once `after` sources are done.
struct StopAfter {
    after: usize,
    done: AtomicUsize,
}

impl Progress for StopAfter {
    fn source_done(&self, _: &Path, _: &str, _: usize, _: u64, _: u64) {
        self.done.fetch_add(1, Ordering::SeqCst);
    }
    fn cancelled(&self) -> bool {
        self.done.load(Ordering::SeqCst) >= self.after
    }
}

fn options(quality: u8) -> ExtractOptions {
    ExtractOptions {
        compression_level: quality,
        n_thread: 1,
        ..ExtractOptions::default()
    }
}

#[test]
fn resume_after_a_stopped_overwrite_writes_what_one_whole_run_writes() {
    let dir = std::env::temp_dir().join(format!("dlas-stop-overwrite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (src, dst, whole) = (dir.join("S"), dir.join("D"), dir.join("whole"));
    three_sources(&src);
    extract(&src, &dst, &options(80), &Silent).unwrap();

    // Other options, and a source that takes the name `x` (b/x.jpg becomes `x_2`).
    photo(&src.join("a/x.jpg"), 700, 560, 4);
    let stop = StopAfter {
        after: 1,
        done: AtomicUsize::new(0),
    };
    let overwrite = ExtractOptions {
        overwrite: true,
        ..options(95)
    };
    let stopped = extract(&src, &dst, &overwrite, &stop);
    assert!(
        matches!(stopped, Err(CoreError::Interrupted)),
        "{stopped:?}"
    );
    let resume = ExtractOptions {
        resume: true,
        ..options(95)
    };
    extract(&src, &dst, &resume, &Silent).unwrap();

    extract(&src, &whole, &options(95), &Silent).unwrap();
    let (got, want) = (tree(&dst), tree(&whole));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (path, bytes) in &want {
        assert!(
            got[path] == *bytes,
            "{} differs from a whole run",
            path.display()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Asks the run to stop from its `after`-th poll on.
struct StopAtPoll {
    after: usize,
    polls: AtomicUsize,
}

impl Progress for StopAtPoll {
    fn cancelled(&self) -> bool {
        self.polls.fetch_add(1, Ordering::SeqCst) + 1 >= self.after
    }
}

#[test]
fn a_stop_while_the_run_looks_at_dst_leaves_dst_as_it_was() {
    // Looking at DST (a million chunks to check when resuming) or removing the chunks an
    // overwrite replaces takes long: a stop then must not wait for it to end.
    let dir = std::env::temp_dir().join(format!("dlas-stop-scan-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (src, dst) = (dir.join("S"), dir.join("D"));
    for (i, name) in ["a.jpg", "b.jpg", "c.jpg"].iter().enumerate() {
        photo(&src.join(name), 640 + 16 * i, 560, i as u32);
    }
    extract(&src, &dst, &options(80), &Silent).unwrap();
    let before = everything(&dst);
    for opts in [
        ExtractOptions {
            resume: true,
            ..options(80)
        },
        ExtractOptions {
            overwrite: true,
            ..options(95)
        },
    ] {
        // The first poll is after SRC is listed, before DST is looked at.
        let stop = StopAtPoll {
            after: 2,
            polls: AtomicUsize::new(0),
        };
        let stopped = extract(&src, &dst, &opts, &stop);
        assert!(
            matches!(stopped, Err(CoreError::Interrupted)),
            "{stopped:?}"
        );
        let after = everything(&dst);
        let lock = Path::new(".dlas_fast-lock-1of1");
        let changed: Vec<_> = after
            .keys()
            .chain(before.keys())
            .filter(|k| *k != lock && before.get(*k) != after.get(*k))
            .collect();
        assert!(changed.is_empty(), "{changed:?} changed ({opts:?})");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
