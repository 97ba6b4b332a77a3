//! Packing a chunked dataset into tar shards, for Python: `pack`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use dlas_core::pack::{pack as core_pack, PackOptions, PackProgress};
use pyo3::prelude::*;

use crate::background::run_beside_python;

/// A Python run's progress: a stop asked for (a Python signal handler's exception),
/// and the command line's bar.
struct Watch {
    stop: AtomicBool,
    bar: Option<dlas_cli::PackReporter>,
}

impl PackProgress for Watch {
    fn cancelled(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
    fn start(&self, shards: usize, bytes: u64, kept: usize, kept_bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.start(shards, bytes, kept, kept_bytes);
        }
    }
    fn shard_done(&self, name: &str, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.shard_done(name, bytes);
        }
    }
}

/// Packs the chunked dataset `dataset` into tar shards in `out` (docs/shards.md), in
/// shards of about `shard_size` (the command line's `--shard-size` text), and
/// returns the summary as JSON text: `chunks`, `files`, `bytes`, `shards` (names),
/// `written`, `kept`, `skipped` ([path, reason] pairs), `left_over`, `elapsed_secs`.
///
/// Raises:
///     DestinationError: OUT is, holds or lies in the dataset, holds files under the
///     pack's names that it did not write, or another pack holds its lock.
///     ValueError: a shard size or thread count out of range.
///     KeyboardInterrupt (or what a signal handler raises): the run was stopped; the
///     shards it finished stay, and running it again completes it.
#[pyfunction]
#[pyo3(signature = (dataset, out, shard_size, threads=0, bar=false))]
pub(crate) fn pack(
    py: Python<'_>,
    dataset: PathBuf,
    out: PathBuf,
    shard_size: &str,
    threads: usize,
    bar: bool,
) -> PyResult<String> {
    let shard_size = dlas_core::pack::parse_size(shard_size)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("shard_size: {e}")))?;
    let opts = PackOptions {
        shard_size,
        threads,
    };
    let watch = Watch {
        stop: AtomicBool::new(false),
        bar: bar
            .then(|| dlas_cli::PackReporter::new(false, false))
            .filter(|_| {
                use std::io::IsTerminal;
                std::io::stderr().is_terminal()
            }),
    };
    let summary = run_beside_python(
        py,
        "dlas-pack",
        &watch.stop,
        || core_pack(&dataset, &out, &opts, &watch),
        |_| Ok(()),
    );
    if let Some(bar) = &watch.bar {
        bar.finish();
    }
    let summary = summary?;
    let skipped: Vec<_> = summary
        .skipped
        .iter()
        .map(|s| (s.path.to_string_lossy().into_owned(), s.reason.clone()))
        .collect();
    Ok(serde_json::json!({
        "chunks": summary.chunks,
        "files": summary.files,
        "bytes": summary.bytes,
        "shards": summary.shards,
        "written": summary.written,
        "kept": summary.kept,
        "skipped": skipped,
        "left_over": summary.left_over,
        "elapsed_secs": summary.elapsed_secs,
    })
    .to_string())
}
