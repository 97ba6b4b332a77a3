//! The extraction job and the command line, for Python: `extract`,
//! `check_destination`, `cli_main`, `cli_extract_ray_job` and `render_summary`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dlas_core::extract::{
    check_destination as core_check, extract_shard, ExtractOptions, Progress, Shard,
};
use pyo3::prelude::*;

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
///
/// Returns:
///     The run summary, as JSON text.
///
/// Raises:
///     KeyboardInterrupt (or what a signal handler raises): the run was stopped; its
///     finished chunks stay and `resume` completes it.
#[pyfunction]
#[pyo3(signature = (src, dst, options_json, resume=false, overwrite=false, shard=None))]
pub(crate) fn extract(
    py: Python<'_>,
    src: PathBuf,
    dst: PathBuf,
    options_json: &str,
    resume: bool,
    overwrite: bool,
    shard: Option<(usize, usize)>,
) -> PyResult<String> {
    let opts = options_of(options_json, resume, overwrite)?;
    let shard = shard.map_or(Shard::ALL, |(index, count)| Shard { index, count });
    let stop = Stop(AtomicBool::new(false));
    // The run works on its own thread while this one, between waits without the GIL,
    // lets Python handle signals: Ctrl-C stops the run and is raised here.
    let summary = std::thread::scope(|scope| {
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let finished = std::sync::Mutex::new(finished);
        let run = std::thread::Builder::new()
            .name("dlas-extract".into())
            .spawn_scoped(scope, || {
                let _done = done; // hung up when the run returns or panics
                extract_shard(&src, &dst, &opts, shard, &stop)
            })
            .map_err(|e| pyo3::exceptions::PyOSError::new_err(format!("extract: {e}")))?;
        let mut raised = None;
        loop {
            let waited = py.detach(|| {
                let finished = finished.lock().expect("only this thread waits");
                finished.recv_timeout(Duration::from_millis(50))
            });
            if !matches!(waited, Err(std::sync::mpsc::RecvTimeoutError::Timeout)) {
                break;
            }
            if let Err(e) = py.check_signals() {
                stop.0.store(true, Ordering::SeqCst);
                raised = Some(e);
                break;
            }
        }
        let result = py.detach(|| run.join());
        let result = result.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        match raised {
            Some(e) => Err(e),
            None => result.map_err(to_pyerr),
        }
    })?;
    Ok(serde_json::to_string(&summary).expect("summary serialises"))
}

/// Asks a run to stop once set (by a Python signal handler's exception).
struct Stop(AtomicBool);

impl Progress for Stop {
    fn cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
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
