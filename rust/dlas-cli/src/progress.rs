//! Progress for the extract command: a bar with rate and ETA on a terminal, plain
//! lines otherwise.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dlas_core::extract::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Reporter {
    bar: Option<ProgressBar>,
    quiet: bool,
    total: AtomicUsize,
    done: AtomicUsize,
    pixels: AtomicU64,
    started: Mutex<Instant>,
}

impl Reporter {
    pub fn new(quiet: bool, no_bar: bool) -> Self {
        let bar = (!quiet && !no_bar && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} sources  {per_sec}  ETA {eta}  {msg}",
                )
                .expect("valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Reporter {
            bar,
            quiet,
            total: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            pixels: AtomicU64::new(0),
            started: Mutex::new(Instant::now()),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress for Reporter {
    fn start(&self, total: usize) {
        self.total.store(total, Ordering::Relaxed);
        *self.started.lock().expect("lock") = Instant::now();
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
        }
    }

    fn source_done(&self, path: &Path, status: &str, tiles: usize, pixels: u64) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let px = self.pixels.fetch_add(pixels, Ordering::Relaxed) + pixels;
        let secs = self
            .started
            .lock()
            .expect("lock")
            .elapsed()
            .as_secs_f64()
            .max(1e-9);
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{:.1} MP/s", px as f64 / 1e6 / secs));
            bar.inc(1);
            if status == "failed" {
                bar.println(format!("failed: {}", path.display()));
            }
        } else if !self.quiet {
            let total = self.total.load(Ordering::Relaxed);
            let eta = secs / done as f64 * (total - done.min(total)) as f64;
            eprintln!(
                "[{done}/{total}] {status} {} ({tiles} tiles) {:.1} MP/s, ETA {eta:.0}s",
                path.display(),
                px as f64 / 1e6 / secs
            );
        }
    }
}
