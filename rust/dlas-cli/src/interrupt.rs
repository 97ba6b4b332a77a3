//! Ctrl-C (SIGINT) and SIGTERM while `extract` or `pack` runs: the first asks the run
//! to stop (extract finishes no more chunks and leaves DST for `--resume`; pack
//! finishes no more shards, and a second pack keeps the finished ones), a second ends
//! the process at once. The handlers are installed for the run only; the ones they replace
//! (e.g. Python's, under `python -m dlas_fast`) are put back afterwards.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Signals received since [`Guard::install`].
static RECEIVED: AtomicUsize = AtomicUsize::new(0);

const SIGNALS: [libc::c_int; 2] = [libc::SIGINT, libc::SIGTERM];

/// Whether the run is a pack (else an extract): which words a second signal prints.
static PACKING: AtomicBool = AtomicBool::new(false);

/// What a stopped extract prints.
pub const EXTRACT_STOPPED: &str = "dlas-fast extract: interrupted: rerun with --resume to finish";
/// What a stopped pack prints.
pub const PACK_STOPPED: &str =
    "dlas-fast pack: interrupted: run the same command again to finish (finished shards are kept)";

extern "C" fn on_signal(_: libc::c_int) {
    if RECEIVED.fetch_add(1, Ordering::SeqCst) > 0 {
        // The same words as after a stop, for whichever comes first.
        let msg = if PACKING.load(Ordering::SeqCst) {
            PACK_STOPPED
        } else {
            EXTRACT_STOPPED
        };
        // SAFETY: write and _exit are async-signal-safe; the bytes are static.
        unsafe {
            libc::write(2, b"\n".as_ptr().cast(), 1);
            libc::write(2, msg.as_ptr().cast(), msg.len());
            libc::write(2, b"\n".as_ptr().cast(), 1);
            libc::_exit(130);
        }
    }
}

/// The installed handlers; dropping it restores the previous ones.
pub struct Guard {
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

impl Guard {
    pub fn install() -> Guard {
        Guard::install_for(false)
    }

    /// [`Guard::install`] for a pack (`packing`) or an extract.
    pub fn install_for(packing: bool) -> Guard {
        PACKING.store(packing, Ordering::SeqCst);
        RECEIVED.store(0, Ordering::SeqCst);
        let mut previous = Vec::new();
        for sig in SIGNALS {
            // SAFETY: plain C structs, zeroed then filled; the handler only touches an
            // atomic and async-signal-safe calls.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &action, &mut old) == 0 {
                    previous.push((sig, old));
                }
            }
        }
        Guard { previous }
    }

    /// True once a signal has asked the run to stop.
    pub fn interrupted() -> bool {
        RECEIVED.load(Ordering::SeqCst) > 0
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for (sig, old) in &self.previous {
            // SAFETY: restores the action saved by `install`.
            unsafe {
                libc::sigaction(*sig, old, std::ptr::null_mut());
            }
        }
    }
}
