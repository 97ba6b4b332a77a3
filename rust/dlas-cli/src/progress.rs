//! Progress for the extract and verify commands: a bar with rate and ETA on a
//! terminal, plain lines otherwise.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dlas_core::extract::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar counting `unit` (its rate, ETA and anything else in its message, which the
/// reporter writes), for stderr when it is a terminal (and neither `quiet` nor
/// `no_bar`); None otherwise, for plain lines instead. It is drawn from [`show`] on,
/// once its length is known: never as a full bar at "0/0".
fn terminal_bar(quiet: bool, no_bar: bool, unit: &str) -> Option<ProgressBar> {
    (!quiet && !no_bar && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        let template = format!("{{bar:30}} {{pos}}/{{len}} {unit}  {{msg}}");
        bar.set_style(ProgressStyle::with_template(&template).expect("valid template"));
        bar
    })
}

/// Sets the bar's length and starts drawing it.
fn show(bar: &ProgressBar, len: usize) {
    bar.set_length(len as u64);
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar.enable_steady_tick(Duration::from_millis(200));
}

/// A rate as people read it: "0.4/s", "12/s", "1.2k/s".
pub fn rate(per_sec: f64) -> String {
    if per_sec >= 1000.0 {
        format!("{:.1}k/s", per_sec / 1000.0)
    } else if per_sec >= 10.0 {
        format!("{per_sec:.0}/s")
    } else {
        format!("{per_sec:.1}/s")
    }
}

/// A duration as people read it: "45s", "3m05s", "2h07m".
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s / 60 % 60),
    }
}

/// Seconds left when `done` of `total` units took `secs`: by the work done so far, not
/// counting units that took no time (sources kept by a resumed run); None until some
/// work is done.
fn eta(secs: f64, done: u64, total: u64) -> Option<f64> {
    (done > 0).then(|| secs / done as f64 * total.saturating_sub(done) as f64)
}

pub struct Reporter {
    bar: Option<ProgressBar>,
    quiet: bool,
    total: AtomicUsize,
    done: AtomicUsize,
    pixels: AtomicU64,
    /// Bytes of all the sources to do, and of those done (kept sources, which take no
    /// time, are taken off the total instead).
    bytes: AtomicU64,
    bytes_done: AtomicU64,
    started: Mutex<Instant>,
}

impl Reporter {
    pub fn new(quiet: bool, no_bar: bool) -> Self {
        Reporter::counting(quiet, no_bar, "sources")
    }

    /// A reporter whose bar counts `unit`.
    fn counting(quiet: bool, no_bar: bool, unit: &str) -> Self {
        let bar = terminal_bar(quiet, no_bar, unit);
        Reporter {
            bar,
            quiet,
            total: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            pixels: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            bytes_done: AtomicU64::new(0),
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

    fn start(&self, total: usize, bytes: u64) {
        self.total.store(total, Ordering::Relaxed);
        self.bytes.store(bytes, Ordering::Relaxed);
        *self.started.lock().expect("lock") = Instant::now();
        if let Some(bar) = &self.bar {
            show(bar, total);
        }
    }

    fn source_done(&self, path: &Path, status: &str, tiles: usize, pixels: u64, bytes: u64) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let px = self.pixels.fetch_add(pixels, Ordering::Relaxed) + pixels;
        let (bytes_done, bytes_total) = if status == "kept" {
            let total = self.bytes.fetch_sub(bytes, Ordering::Relaxed) - bytes;
            (self.bytes_done.load(Ordering::Relaxed), total)
        } else {
            let done = self.bytes_done.fetch_add(bytes, Ordering::Relaxed) + bytes;
            (done, self.bytes.load(Ordering::Relaxed))
        };
        let secs = secs_since(&self.started);
        let left = eta(secs, bytes_done, bytes_total).map_or("-".into(), duration);
        let mp = format!("{:.1} MP/s", px as f64 / 1e6 / secs);
        let files = rate(done as f64 / secs);
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{files}  {mp}  ETA {left}"));
            bar.inc(1);
            if status == "failed" {
                bar.println(format!("failed: {}", path.display()));
            }
        } else if !self.quiet {
            let total = self.total.load(Ordering::Relaxed);
            eprintln!(
                "[{done}/{total}] {status} {} ({tiles} tiles) {files}, {mp}, ETA {left}",
                path.display()
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
            show(bar, total);
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
            let secs = secs_since(&self.started);
            let total = self.total.load(Ordering::Relaxed) as u64;
            let left = eta(secs, done as u64, total).map_or("-".into(), duration);
            let mut msg = format!("{}  ETA {left}", rate(done as f64 / secs));
            if broken > 0 {
                msg += &format!("  {broken} broken");
            }
            bar.set_message(msg);
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
        let left = eta(secs, done as u64, total as u64).map_or("-".into(), duration);
        eprintln!(
            "[{done}/{total}] {:.0}% {} files, {broken} broken, ETA {left}",
            done as f64 * 100.0 / total.max(1) as f64,
            rate(done as f64 / secs)
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

/// Progress of `pack`: a bar over the shards to write, with the rate in bytes (the
/// extract reporter's counters, over shards).
pub struct PackReporter(Reporter);

impl PackReporter {
    pub fn new(quiet: bool, no_bar: bool) -> Self {
        PackReporter(Reporter::counting(quiet, no_bar, "shards"))
    }

    pub fn finish(&self) {
        self.0.finish();
    }
}

impl dlas_core::pack::PackProgress for PackReporter {
    fn cancelled(&self) -> bool {
        crate::interrupt::Guard::interrupted()
    }

    fn start(&self, shards: usize, bytes: u64, kept: usize, kept_bytes: u64) {
        let to_write = shards - kept;
        self.0.total.store(to_write, Ordering::Relaxed);
        self.0.bytes.store(bytes - kept_bytes, Ordering::Relaxed);
        *self.0.started.lock().expect("lock") = Instant::now();
        if kept > 0 && !self.0.quiet {
            let line = format!("{kept} of {shards} shards are there already and kept");
            match &self.0.bar {
                Some(bar) => bar.println(line),
                None => eprintln!("{line}"),
            }
        }
        if let Some(bar) = &self.0.bar {
            show(bar, to_write);
        }
    }

    fn shard_done(&self, name: &str, bytes: u64) {
        let done = self.0.done.fetch_add(1, Ordering::Relaxed) + 1;
        let bytes_done = self.0.bytes_done.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let secs = secs_since(&self.0.started);
        let total_bytes = self.0.bytes.load(Ordering::Relaxed);
        let left = eta(secs, bytes_done, total_bytes).map_or("-".into(), duration);
        let speed = format!("{:.0} MB/s", bytes_done as f64 / 1e6 / secs);
        if let Some(bar) = &self.0.bar {
            bar.set_message(format!("{speed}  ETA {left}"));
            bar.inc(1);
        } else if !self.0.quiet {
            let total = self.0.total.load(Ordering::Relaxed);
            eprintln!("[{done}/{total}] {name} {speed}, ETA {left}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_durations_read_as_people_write_them() {
        assert_eq!(rate(1.234), "1.2/s");
        assert_eq!(rate(0.04), "0.0/s");
        assert_eq!(rate(37.6), "38/s");
        assert_eq!(rate(1520.0), "1.5k/s");
        assert_eq!(duration(4.4), "4s");
        assert_eq!(duration(185.0), "3m05s");
        assert_eq!(duration(7620.0), "2h07m");
    }

    #[test]
    fn the_eta_follows_the_work_not_the_file_count() {
        assert_eq!(eta(10.0, 0, 100), None);
        // A quarter of the bytes took 10 s: 30 s left, whatever the files' count.
        assert_eq!(eta(10.0, 25, 100), Some(30.0));
        assert_eq!(eta(10.0, 120, 100), Some(0.0));
    }

    #[test]
    fn a_bar_is_not_drawn_before_it_has_a_length() {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        assert!(bar.is_hidden() && bar.length().is_none());
        show(&bar, 7);
        assert_eq!(bar.length(), Some(7));
    }
}
