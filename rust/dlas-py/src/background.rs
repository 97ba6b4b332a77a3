//! Long native runs called from Python (extract, pack): the work runs on a thread of
//! its own while the calling thread, between waits without the GIL, lets Python handle
//! signals, so Ctrl-C stops the run and is raised in Python.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pyo3::prelude::*;

use crate::errors::to_pyerr;

/// Runs `work` on a thread named `name`. Every 50 ms, and when it ends, the calling
/// thread checks Python's signals and calls `poll` (a progress callback); when either
/// raises, `stop` is set (the work polls it and stops), the work is waited for, and
/// that exception is returned. A panic in the work is resumed here.
pub(crate) fn run_beside_python<T: Send>(
    py: Python<'_>,
    name: &str,
    stop: &AtomicBool,
    work: impl FnOnce() -> dlas_core::Result<T> + Send,
    mut poll: impl FnMut(Python<'_>) -> PyResult<()>,
) -> PyResult<T> {
    std::thread::scope(|scope| {
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let finished = std::sync::Mutex::new(finished);
        let run = std::thread::Builder::new()
            .name(name.into())
            .spawn_scoped(scope, || {
                let _done = done; // hung up when the work returns or panics
                work()
            })
            .map_err(|e| pyo3::exceptions::PyOSError::new_err(format!("{name}: {e}")))?;
        let mut raised = None;
        loop {
            let waited = py.detach(|| {
                let finished = finished.lock().expect("only this thread waits");
                finished.recv_timeout(Duration::from_millis(50))
            });
            let ended = !matches!(waited, Err(std::sync::mpsc::RecvTimeoutError::Timeout));
            if let Err(e) = py.check_signals().and_then(|()| poll(py)) {
                stop.store(true, Ordering::SeqCst);
                raised = Some(e);
                break;
            }
            if ended {
                break;
            }
        }
        let result = py.detach(|| run.join());
        let result = result.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        match raised {
            Some(e) => Err(e),
            None => result.map_err(to_pyerr),
        }
    })
}
