//! The loaders' threads: one rayon pool per process, kept between batches so that each
//! thread's allocator caches stay warm (threads started per batch begin with empty
//! ones), created on first use and created again in a forked child, whose copy of the
//! pool has no threads.

use std::sync::{Arc, Mutex};

use rayon::ThreadPool;

/// (owning process, threads, pool).
static POOL: Mutex<Option<(u32, usize, Arc<ThreadPool>)>> = Mutex::new(None);

fn pool(threads: usize) -> Option<Arc<ThreadPool>> {
    let pid = std::process::id();
    {
        let mut slot = POOL.lock().unwrap_or_else(|e| e.into_inner());
        match slot.take() {
            Some((owner, n, p)) if owner == pid && n == threads => {
                *slot = Some((owner, n, p.clone()));
                return Some(p);
            }
            // Inherited through fork: its threads do not exist here, so it must not
            // be joined or dropped; leaking it is the only safe thing to do.
            Some((owner, _, old)) if owner != pid => std::mem::forget(old),
            _ => {}
        }
    }
    // Built outside the lock, which is then held only for moments (a fork while
    // another thread holds it would leave the child's copy locked).
    let p = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("dlas-load-{i}"))
        .build()
        .ok()?;
    let p = Arc::new(p);
    *POOL.lock().unwrap_or_else(|e| e.into_inner()) = Some((pid, threads, p.clone()));
    Some(p)
}

/// Runs `f` on the loader pool of `threads` threads (inline when `threads <= 1`, or
/// when no thread can be started). Code inside uses rayon's parallel iterators.
pub fn run<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    match (threads > 1).then(|| pool(threads)).flatten() {
        Some(p) => p.install(f),
        None => f(),
    }
}
