//! Progress for the extract and verify commands: a bar with rate and ETA on a
//! terminal, plain lines otherwise.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dlas_core::extract::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar counting `unit` with rate and ETA, on stderr when it is a terminal (and
/// neither `quiet` nor `no_bar`); None otherwise, for plain lines instead.
fn terminal_bar(quiet: bool, no_bar: bool, unit: &str) -> Option<ProgressBar> {
    (!quiet && !no_bar && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        let template =
            format!("{{bar:30}} {{pos}}/{{len}} {unit}  {{per_sec}}  ETA {{eta}}  {{msg}}");
        bar.set_style(ProgressStyle::with_template(&template).expect("valid template"));
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    })
}

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
        let bar = terminal_bar(quiet, no_bar, "sources");
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
    fn cancelled(&self) -> bool {
        crate::interrupt::Guard::interrupted()
    }

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
        let secs = secs_since(&self.started);
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

/// Plain progress lines come every this often...
const LINE_EVERY: Duration = Duration::from_secs(2);
/// ...or when another 5 % of the files are done...
const LINE_STEPS: usize = 20;
/// ...but not more often than this (a small folder gets a line or two, not twenty).
const LINE_GAP: Duration = Duration::from_millis(500);

/// Progress of the verify command.
pub struct VerifyReporter {
    bar: Option<ProgressBar>,
    quiet: bool,
    total: AtomicUsize,
    done: AtomicUsize,
    broken: AtomicUsize,
    started: Mutex<Instant>,
    /// When the last plain line was printed, and how many files it reported.
    last_line: Mutex<(Instant, usize)>,
}

impl VerifyReporter {
    pub fn new(quiet: bool, no_bar: bool) -> Self {
        let bar = terminal_bar(quiet, no_bar, "files");
        VerifyReporter {
            bar,
            quiet,
            total: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            broken: AtomicUsize::new(0),
            started: Mutex::new(Instant::now()),
            last_line: Mutex::new((Instant::now(), 0)),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl dlas_core::survey::verify::Progress for VerifyReporter {
    fn start(&self, total: usize) {
        self.total.store(total, Ordering::Relaxed);
        let now = Instant::now();
        *self.started.lock().expect("lock") = now;
        *self.last_line.lock().expect("lock") = (now, 0);
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
        } else if !self.quiet {
            eprintln!("verifying {total} files");
        }
    }

    fn file_done(&self, _path: &Path, _bytes: u64, broken: Option<&str>) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let broken = if broken.is_some() {
            self.broken.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.broken.load(Ordering::Relaxed)
        };
        if let Some(bar) = &self.bar {
            if broken > 0 {
                bar.set_message(format!("{broken} broken"));
            }
            bar.inc(1);
            return;
        }
        if self.quiet {
            return;
        }
        let total = self.total.load(Ordering::Relaxed);
        let step = total.div_ceil(LINE_STEPS).max(1);
        let mut last = self.last_line.lock().expect("lock");
        let since = last.0.elapsed();
        let due = since >= LINE_EVERY
            || (done / step > last.1 / step && since >= LINE_GAP)
            || done == total;
        if !due || done <= last.1 {
            return;
        }
        *last = (Instant::now(), done);
        drop(last);
        let secs = secs_since(&self.started);
        let rate = done as f64 / secs;
        let eta = (total - done.min(total)) as f64 / rate.max(1e-9);
        eprintln!(
            "[{done}/{total}] {:.0}% {rate:.0} files/s, {broken} broken, ETA {eta:.0}s",
            done as f64 * 100.0 / total.max(1) as f64
        );
    }
}

/// Seconds since the instant in `started` (never zero, to divide by).
fn secs_since(started: &Mutex<Instant>) -> f64 {
    started
        .lock()
        .expect("lock")
        .elapsed()
        .as_secs_f64()
        .max(1e-9)
}
