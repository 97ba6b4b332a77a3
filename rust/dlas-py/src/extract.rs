//! The extraction job and the command line, for Python: `extract`,
//! `check_destination`, `cli_main`, `cli_extract_ray_job` and `render_summary`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use dlas_core::extract::{
    check_destination as core_check, extract_shard, ExtractOptions, Progress, Shard,
};
use pyo3::prelude::*;

use crate::background::run_beside_python;
use crate::errors::to_pyerr;

/// Runs the extraction job (docs/spec.md §2) and returns its summary as a JSON string.
///
/// Args:
///     src: folder of source images.
///     dst: output folder.
///     options_json: JSON object of DLAS option names (unknown names are an error).
///     resume: keep complete chunks of an interrupted run of the same job.
///     overwrite: replace chunks of an earlier run.
///     shard: (K, N): only the sources at positions = K-1 mod N of the sorted list.
///     bar: a progress bar on stderr when it is a terminal (the command line's).
///     callback: None, or called on this thread with a dict for each source done:
///         `path`, `status` ("extracted", "kept", "skipped" or "failed"), `tiles`,
///         `pixels`, `done` and `total` (sources). What it raises stops the run and is
///         raised here.
///
/// Returns:
///     The run summary, as JSON text.
///
/// Raises:
///     KeyboardInterrupt (or what a signal handler raises): the run was stopped; its
///     finished chunks stay and `resume` completes it.
#[pyfunction]
#[pyo3(signature = (src, dst, options_json, resume=false, overwrite=false, shard=None,
                    bar=false, callback=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn extract(
    py: Python<'_>,
    src: PathBuf,
    dst: PathBuf,
    options_json: &str,
    resume: bool,
    overwrite: bool,
    shard: Option<(usize, usize)>,
    bar: bool,
    callback: Option<Bound<'_, PyAny>>,
) -> PyResult<String> {
    let opts = options_of(options_json, resume, overwrite)?;
    let shard = shard.map_or(Shard::ALL, |(index, count)| Shard { index, count });
    let stop = Watch {
        stop: AtomicBool::new(false),
        bar: bar
            .then(|| dlas_cli::Reporter::new(false, false))
            .filter(|_| {
                use std::io::IsTerminal;
                std::io::stderr().is_terminal()
            }),
        events: callback.as_ref().map(|_| Mutex::new(Vec::new())),
        total: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
    };
    let summary = run_beside_python(
        py,
        "dlas-extract",
        &stop.stop,
        || extract_shard(&src, &dst, &opts, shard, &stop),
        |py| stop.report(py, &callback),
    );
    if let Some(bar) = &stop.bar {
        bar.finish();
    }
    let summary = summary?;
    Ok(serde_json::to_string(&summary).expect("summary serialises"))
}

/// A source done, for the caller's callback.
struct Done {
    path: PathBuf,
    status: String,
    tiles: usize,
    pixels: u64,
    done: usize,
}

/// A Python run's progress: a stop asked for (by a Python signal handler's exception,
/// or a callback's), the command line's bar, and the sources done since the callback
/// last saw them.
struct Watch {
    stop: AtomicBool,
    bar: Option<dlas_cli::Reporter>,
    events: Option<Mutex<Vec<Done>>>,
    total: AtomicUsize,
    done: AtomicUsize,
}

impl Watch {
    /// Hands the sources done so far to `callback`, on the calling (Python) thread.
    fn report(&self, py: Python<'_>, callback: &Option<Bound<'_, PyAny>>) -> PyResult<()> {
        let (Some(events), Some(callback)) = (&self.events, callback) else {
            return Ok(());
        };
        let done = std::mem::take(&mut *events.lock().expect("events lock"));
        let total = self.total.load(Ordering::Relaxed);
        for d in done {
            let info = pyo3::types::PyDict::new(py);
            info.set_item("path", d.path.into_os_string())?;
            info.set_item("status", d.status)?;
            info.set_item("tiles", d.tiles)?;
            info.set_item("pixels", d.pixels)?;
            info.set_item("done", d.done)?;
            info.set_item("total", total)?;
            callback.call1((info,))?;
        }
        Ok(())
    }
}

impl Progress for Watch {
    fn cancelled(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn start(&self, total: usize, bytes: u64) {
        self.total.store(total, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.start(total, bytes);
        }
    }

    fn source_done(&self, path: &Path, status: &str, tiles: usize, pixels: u64, bytes: u64) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(bar) = &self.bar {
            bar.source_done(path, status, tiles, pixels, bytes);
        }
        if let Some(events) = &self.events {
            events.lock().expect("events lock").push(Done {
                path: path.to_path_buf(),
                status: status.to_string(),
                tiles,
                pixels,
                done,
            });
        }
    }
}

fn options_of(options_json: &str, resume: bool, overwrite: bool) -> PyResult<ExtractOptions> {
    let mut opts: ExtractOptions = serde_json::from_str(options_json)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("extraction options: {e}")))?;
    opts.resume = resume;
    opts.overwrite = overwrite;
    opts.levels().map_err(to_pyerr)?;
    Ok(opts)
}

/// Checks the extraction options and that a run of that job (every shard) from `src`
/// may write into `dst` (the rules of `extract`: no overlap with SRC, nothing of
/// anyone else's in the way, the same source list as DST's output), without locking
/// or writing anything.
///
/// Raises:
///     ValueError: an invalid option. DestinationError: DST would be refused.
#[pyfunction]
#[pyo3(signature = (src, dst, options_json, resume=false, overwrite=false))]
pub(crate) fn check_destination(
    py: Python<'_>,
    src: PathBuf,
    dst: PathBuf,
    options_json: &str,
    resume: bool,
    overwrite: bool,
) -> PyResult<()> {
    let opts = options_of(options_json, resume, overwrite)?;
    py.detach(|| core_check(&src, &dst, &opts))
        .map_err(to_pyerr)
}

/// Runs the `dlas-fast` command line (`argv` includes the program name).
///
/// Returns:
///     The exit status: 0 ok, 2 usage error or refused DST, 3 some sources failed,
///     130 interrupted (`extract` handles SIGINT and SIGTERM while it runs).
#[pyfunction]
pub(crate) fn cli_main(py: Python<'_>, argv: Vec<String>) -> i32 {
    py.detach(|| dlas_cli::run(argv))
}

/// Parses a `dlas-fast extract ... --ray` command line (`argv` includes the program
/// name) for the Python side.
///
/// Returns:
///     The job as a JSON string, or the exit status (clap printed why).
#[pyfunction]
pub(crate) fn cli_extract_ray_job(py: Python<'_>, argv: Vec<String>) -> PyResult<Py<PyAny>> {
    Ok(match dlas_cli::extract_ray_job(argv) {
        Ok(job) => job.into_pyobject(py)?.into_any().unbind(),
        Err(code) => code.into_pyobject(py)?.into_any().unbind(),
    })
}

/// The extraction summary (JSON, as `extract` returns it) as the CLI prints it.
#[pyfunction]
pub(crate) fn render_summary(summary_json: &str) -> PyResult<String> {
    let summary: dlas_core::extract::Summary = serde_json::from_str(summary_json)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("summary: {e}")))?;
    Ok(summary.render())
}
