//! The `dlas-fast` command: `dlas-fast extract SRC DST [options]`, `dlas-fast verify
//! PATH`, `dlas-fast inspect PATH` (and `preview`, which the Python package runs).
//!
//! [`run`] is the whole command (the binary and `python -m dlas_fast` both call it)
//! and returns the process exit status: 0 success, 2 usage errors (a refused DST, a
//! PATH that is not a folder), 3 when the run finished but found files that cannot be
//! read or decoded, 130 when `extract` was interrupted (Ctrl-C, SIGTERM), 1 for any
//! other failure.

mod interrupt;
mod progress;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use dlas_core::extract::{extract_shard, ExtractOptions, Shard, MAX_THREADS};
use dlas_core::image::MAX_MAX_PIXELS;
use dlas_core::survey::inspect::{
    CacheReport, ChunkedReport, ImagesReport, InspectOptions, LEVELS_DEFINITION,
};
use dlas_core::survey::{inspect, verify, Examples, Inspection, SizeCount, VerifyOptions};
use dlas_core::CoreError;

/// Fast chunked-dataset tools for DL-Art-School.
#[derive(Parser, Debug)]
#[command(name = "dlas-fast", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Turn a folder of photos into a chunked patch dataset (tiles, ref.jpg, centers.pt).
    Extract(Box<ExtractArgs>),
    /// Decode every image and parse every centers.pt under PATH; list the broken ones.
    Verify(VerifyArgs),
    /// Describe a dataset folder: chunks, tiles, sizes, scale levels, disk use, cache.
    Inspect(InspectArgs),
    /// Write a PNG contact sheet of samples from a dataset (needs the Python package:
    /// `python -m dlas_fast preview ...`).
    Preview {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

#[derive(Args, Debug)]
struct ExtractArgs {
    /// Folder of source images (searched recursively).
    src: PathBuf,
    /// Output folder of the chunked dataset.
    dst: PathBuf,
    /// Side of the square crop, per scale level (at most the square root of
    /// --max-pixels).
    #[arg(long, value_delimiter = ',', default_value = "256,512", allow_hyphen_values = true,
          value_parser = whole::<usize, 1, { u64::MAX }>)]
    crop_sz: Vec<usize>,
    /// Stride of the sliding window, per level.
    #[arg(long, value_delimiter = ',', default_value = "128,256", allow_hyphen_values = true,
          value_parser = whole::<usize, 1, { u64::MAX }>)]
    step: Vec<usize>,
    /// A leftover edge strip wider than this earns one extra crop flush with the edge.
    #[arg(long, default_value_t = 128, allow_hyphen_values = true,
          value_parser = whole::<usize, 0, { u64::MAX }>)]
    thres_sz: usize,
    /// Factor each crop is area-resized by before saving, per level.
    #[arg(long, value_delimiter = ',', default_value = "1,0.5")]
    resize_final_img: Vec<f64>,
    /// Per level, `|`-separated substrings: a source whose path contains one skips that
    /// level (e.g. `--exclusions 'thumb|icon,'`).
    #[arg(long, value_delimiter = ',')]
    exclusions: Vec<String>,
    /// JPEG quality of tiles and ref (1-100).
    #[arg(long, default_value_t = 95, allow_hyphen_values = true,
          value_parser = whole::<u8, 1, 100>)]
    compression_level: u8,
    /// Sources whose larger side exceeds this are area-halved first.
    #[arg(long, default_value_t = 5500, allow_hyphen_values = true,
          value_parser = whole::<usize, 0, { u64::MAX }>)]
    input_image_max_size_before_being_halved: usize,
    /// Sources whose smaller side is below this (after halving) are skipped.
    #[arg(long, default_value_t = 512, allow_hyphen_values = true,
          value_parser = whole::<usize, 0, { u64::MAX }>)]
    min_size: usize,
    /// Stereo pairs: left and right halves become two chunks (`_left`, `_right`).
    #[arg(long)]
    vertical_split: bool,
    /// Keep only tiles whose mask `<MASK_PATH>/<file name>.png` is at least half white.
    #[arg(long)]
    mask_path: Option<PathBuf>,
    /// Refuse sources with more pixels than this (decompression bombs).
    #[arg(long, default_value_t = 200_000_000, allow_hyphen_values = true,
          value_parser = whole::<u64, 1, MAX_MAX_PIXELS>)]
    max_pixels: u64,
    /// Worker threads (DLAS: n_thread); default: all cores.
    #[arg(long, allow_hyphen_values = true,
          value_parser = whole::<usize, 1, { MAX_THREADS as u64 }>)]
    threads: Option<usize>,
    /// Finish an interrupted run of the same job: complete chunks are kept.
    #[arg(long, conflicts_with = "overwrite")]
    resume: bool,
    /// Write into a DST that holds earlier output, replacing chunks of the same name.
    #[arg(long)]
    overwrite: bool,
    /// Never draw a progress bar; print plain progress lines.
    #[arg(long)]
    no_progress_bar: bool,
    /// Print nothing but the final summary.
    #[arg(long, short)]
    quiet: bool,
    /// Process only shard K of N: the sources whose 0-based position in the sorted
    /// source list is K-1 mod N. All N shards into one DST (together or one after
    /// another) write exactly one run's chunks; each shard has its own lock.
    #[arg(long, value_name = "K/N", value_parser = parse_shard, conflicts_with = "ray")]
    shard: Option<Shard>,
    /// Run on a Ray cluster, one task per shard (needs the Python package and Ray:
    /// `pip install 'dlas_fast[ray]'`); --threads is then each task's threads (default:
    /// the smallest node's cores, one task per node at a time).
    #[arg(long)]
    ray: bool,
    /// With --ray: the cluster to join (default: RAY_ADDRESS, or a local instance).
    #[arg(long, requires = "ray")]
    ray_address: Option<String>,
    /// With --ray: number of shards (default: four per task slot of the cluster).
    #[arg(long, requires = "ray")]
    ray_tasks: Option<usize>,
}

/// A whole number in `MIN..=MAX` (no upper bound when `MAX` is `u64::MAX`); clap's
/// message names the option, this one the allowed range.
fn whole<T: TryFrom<u64>, const MIN: u64, const MAX: u64>(s: &str) -> Result<T, String> {
    let range = if MAX == u64::MAX {
        format!(">= {MIN}")
    } else {
        format!("in {MIN}..={MAX}")
    };
    s.trim()
        .parse::<u64>()
        .ok()
        .filter(|v| (MIN..=MAX).contains(v))
        .and_then(|v| T::try_from(v).ok())
        .ok_or_else(|| format!("expected a whole number {range}"))
}

/// `K/N` with 1 <= K <= N.
fn parse_shard(s: &str) -> Result<Shard, String> {
    let bad = || format!("expected K/N with 1 <= K <= N (e.g. 2/8), got {s:?}");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let index: usize = k.trim().parse().map_err(|_| bad())?;
    let count: usize = n.trim().parse().map_err(|_| bad())?;
    if index == 0 || index > count {
        return Err(bad());
    }
    Ok(Shard { index, count })
}

#[derive(Args, Debug)]
struct VerifyArgs {
    /// Dataset folder (searched recursively; names starting with `.` are skipped).
    path: PathBuf,
    /// Worker threads; default: all cores.
    #[arg(long)]
    threads: Option<usize>,
    /// Report images with more pixels than this as broken (decompression bombs).
    #[arg(long, default_value_t = 200_000_000, allow_hyphen_values = true,
          value_parser = whole::<u64, 1, MAX_MAX_PIXELS>)]
    max_pixels: u64,
    /// Never draw a progress bar; print plain progress lines.
    #[arg(long)]
    no_progress_bar: bool,
    /// Print nothing but the final summary.
    #[arg(long, short)]
    quiet: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct InspectArgs {
    /// Dataset folder: a chunked dataset, or a folder of images.
    path: PathBuf,
    /// Print the description as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Worker threads for reading image headers; default: all cores.
    #[arg(long)]
    threads: Option<usize>,
}

impl ExtractArgs {
    fn options(&self) -> ExtractOptions {
        let levels = self.crop_sz.len();
        let mut exclusions: Vec<Vec<String>> = self
            .exclusions
            .iter()
            .map(|l| {
                l.split('|')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .collect();
        exclusions.resize(levels.max(exclusions.len()), Vec::new());
        ExtractOptions {
            crop_sz: self.crop_sz.clone(),
            step: self.step.clone(),
            thres_sz: self.thres_sz,
            resize_final_img: self.resize_final_img.clone(),
            exclusions,
            compression_level: self.compression_level,
            input_image_max_size_before_being_halved: self.input_image_max_size_before_being_halved,
            min_size: self.min_size,
            vertical_split: self.vertical_split,
            mask_path: self.mask_path.clone(),
            max_pixels: self.max_pixels,
            n_thread: self
                .threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            resume: self.resume,
            overwrite: self.overwrite,
        }
    }
}

/// What `--version` prints after the program name: the version, then the build's
/// codec, SIMD level, fast paths and optimisation, one per line (`-V` prints the
/// version alone).
pub fn long_version() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        let info = dlas_core::build_info::build_info();
        format!("{}\n{}", info.version, info.details())
    })
}

/// Parses the command line `args` (including the program name).
fn parse<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = Cli::command()
        .long_version(long_version())
        .try_get_matches_from(args)?;
    Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut Cli::command()))
}

/// Runs the command line `args` (including the program name); returns the exit status.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match parse(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match cli.command {
        Command::Extract(a) => run_extract(&a),
        Command::Verify(a) => run_verify(&a),
        Command::Inspect(a) => run_inspect(&a),
        Command::Preview { .. } => {
            eprintln!(
                "dlas-fast preview: needs the Python package (it loads the datasets with \
                 torch): `pip install dlas_fast`, then run `dlas-fast preview ...` from \
                 its console script, or `python -m dlas_fast preview ...`"
            );
            2
        }
    }
}

/// For `dlas-fast extract --ray`, which the Python package runs: parses the command
/// line (`args` includes the program name) and returns the job as JSON (`src`, `dst`,
/// `options`, `resume`, `overwrite`, `threads`, `ray_address`, `ray_tasks`, `quiet`),
/// or the exit status after printing clap's message.
pub fn extract_ray_job<I, T>(args: I) -> Result<String, i32>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = parse(args).map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            2
        } else {
            0
        }
    })?;
    let Command::Extract(a) = cli.command else {
        eprintln!("dlas-fast: --ray belongs to the extract command");
        return Err(2);
    };
    let opts = a.options();
    let job = serde_json::json!({
        "src": a.src,
        "dst": a.dst,
        "options": opts,
        "resume": a.resume,
        "overwrite": a.overwrite,
        "threads": a.threads,
        "ray_address": a.ray_address,
        "ray_tasks": a.ray_tasks,
        "quiet": a.quiet,
    });
    Ok(job.to_string())
}

fn run_extract(a: &ExtractArgs) -> i32 {
    if a.ray {
        eprintln!(
            "dlas-fast extract: --ray needs the Python package and Ray: \
             `pip install 'dlas_fast[ray]'`, then `dlas-fast extract ... --ray` from its \
             console script (or `python -m dlas_fast extract ... --ray`)"
        );
        return 2;
    }
    let opts = a.options();
    let reporter = progress::Reporter::new(a.quiet, a.no_progress_bar);
    let shard = a.shard.unwrap_or(Shard::ALL);
    let result = {
        let _signals = interrupt::Guard::install();
        extract_shard(&a.src, &a.dst, &opts, shard, &reporter)
    };
    reporter.finish();
    match result {
        Ok(summary) => {
            print!("{}", summary.render());
            summary.exit_code()
        }
        Err(CoreError::Interrupted) => {
            eprintln!("dlas-fast extract: interrupted: rerun with --resume to finish");
            130
        }
        Err(e) => {
            eprintln!("dlas-fast extract: error: {e}");
            match e {
                CoreError::InvalidOption { .. } | CoreError::Destination { .. } => 2,
                CoreError::Io { ref path, .. } if path == &a.src => 2,
                _ => 1,
            }
        }
    }
}

/// The exit status of a verify/inspect error: 2 when PATH itself is unusable.
fn path_error_code(e: &CoreError, path: &std::path::Path) -> i32 {
    match e {
        CoreError::InvalidOption { .. } => 2,
        CoreError::Io { path: p, .. } if p == path => 2,
        _ => 1,
    }
}

fn run_verify(a: &VerifyArgs) -> i32 {
    let opts = VerifyOptions {
        threads: a.threads,
        max_pixels: a.max_pixels,
    };
    let reporter = progress::VerifyReporter::new(a.quiet, a.no_progress_bar);
    let result = verify(&a.path, &opts, &reporter);
    reporter.finish();
    match result {
        Ok(report) => {
            if a.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("serialisable")
                );
            } else {
                print!("{}", render_verify(&report));
            }
            report.exit_code()
        }
        Err(e) => {
            eprintln!("dlas-fast verify: error: {e}");
            path_error_code(&e, &a.path)
        }
    }
}

fn render_verify(r: &dlas_core::survey::VerifyReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "verified {}: {} files ({} images, {} centers.pt, {}) in {:.2} s, {:.0} files/s",
        r.root,
        r.files_checked,
        r.images,
        r.centers,
        human_bytes(r.bytes),
        r.elapsed_secs,
        r.files_per_sec
    );
    if r.broken.is_empty() {
        let _ = writeln!(out, "broken: 0");
    } else {
        let _ = writeln!(out, "broken: {}", r.broken.len());
        for b in &r.broken {
            let _ = writeln!(out, "  {}: {}", b.path, b.reason);
        }
    }
    out
}

fn run_inspect(a: &InspectArgs) -> i32 {
    let opts = InspectOptions { threads: a.threads };
    match inspect(&a.path, &opts) {
        Ok(ins) => {
            if a.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&ins).expect("serialisable")
                );
            } else {
                print!("{}", render_inspection(&ins));
            }
            0
        }
        Err(e) => {
            eprintln!("dlas-fast inspect: error: {e}");
            path_error_code(&e, &a.path)
        }
    }
}

/// `12.3 MiB`.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// One `label  value` row of the table.
fn row(out: &mut String, label: &str, value: impl std::fmt::Display) {
    use std::fmt::Write;
    let _ = writeln!(out, "{label:<27}{value}");
}

/// `count`, and up to a few examples: `3 (a, b, c)`.
fn with_examples(e: &Examples) -> String {
    if e.count == 0 {
        return "0".into();
    }
    let more = if e.count > e.examples.len() {
        ", ..."
    } else {
        ""
    };
    format!("{} ({}{more})", e.count, e.examples.join(", "))
}

/// A size histogram under a `title  unit` line: one line per size, the most common
/// first (at most `max`, then the rest summed).
fn sizes(out: &mut String, title: &str, unit: &str, list: &[SizeCount], max: usize) {
    use std::fmt::Write;
    let _ = writeln!(out, "{title:<17}{unit:>10}");
    if list.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for s in list.iter().take(max) {
        let size = format!("{}x{}", s.width, s.height);
        let _ = writeln!(out, "  {size:<15}{:>10}", s.count);
    }
    if list.len() > max {
        let rest: usize = list[max..].iter().map(|s| s.count).sum();
        let more = format!("{} more", list.len() - max);
        let _ = writeln!(out, "  {more:<15}{rest:>10}");
    }
}

fn cache_row(out: &mut String, label: &str, c: &CacheReport) {
    let state = serde_json::to_value(c.state).expect("serialisable");
    let state = state.as_str().unwrap_or("?").to_string();
    match &c.path {
        Some(p) => row(out, label, format!("{state}  {p}")),
        None => row(
            out,
            label,
            format!(
                "{state}  (would be {})",
                c.locations.first().map_or("?", String::as_str)
            ),
        ),
    }
}

/// Size histogram rows shown at most.
const MAX_SIZES: usize = 8;

fn render_inspection(ins: &Inspection) -> String {
    match ins {
        Inspection::Chunked(r) => render_chunked(r),
        Inspection::Images(r) => render_images(r),
    }
}

fn render_chunked(r: &ChunkedReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    row(&mut out, "dataset", &r.root);
    row(&mut out, "kind", "chunked (tiles, ref.jpg, centers.pt)");
    row(&mut out, "chunks", r.chunks);
    row(&mut out, "tiles", r.tiles);
    row(
        &mut out,
        "empty chunk folders",
        with_examples(&r.empty_chunks),
    );
    row(
        &mut out,
        "chunks without ref.jpg",
        with_examples(&r.without_ref),
    );
    row(
        &mut out,
        "chunks without centers.pt",
        with_examples(&r.without_centers),
    );
    row(
        &mut out,
        "unreadable centers.pt",
        with_examples(&r.unreadable_centers),
    );
    row(
        &mut out,
        "unreadable images",
        with_examples(&r.unreadable_images),
    );
    out.push('\n');
    sizes(&mut out, "tile sizes", "tiles", &r.tile_sizes, MAX_SIZES);
    sizes(&mut out, "ref sizes", "refs", &r.ref_sizes, MAX_SIZES);
    out.push('\n');
    let _ = writeln!(
        out,
        "scale levels (*)\n  {:>5}  {:>8}  {:>10}  {:>14}  tile sizes",
        "level", "chunks", "tiles", "centre width"
    );
    for l in &r.levels {
        let width = if l.min_width == l.max_width {
            l.min_width.to_string()
        } else {
            format!("{}..{}", l.min_width, l.max_width)
        };
        let top: Vec<String> = l
            .tile_sizes
            .iter()
            .take(3)
            .map(|s| format!("{}x{} ({})", s.width, s.height, s.count))
            .collect();
        let more = if l.tile_sizes.len() > 3 { ", ..." } else { "" };
        let _ = writeln!(
            out,
            "  {:>5}  {:>8}  {:>10}  {:>14}  {}{more}",
            l.level,
            l.chunks,
            l.tiles,
            width,
            top.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "  {:>5}  {:>8}  {:>10}",
        "none", "", r.tiles_without_centre
    );
    out.push('\n');
    let d = &r.disk;
    row(
        &mut out,
        "disk",
        format!(
            "{} total: tiles {}, refs {}, centers.pt {}, other {}",
            human_bytes(d.total),
            human_bytes(d.tiles),
            human_bytes(d.refs),
            human_bytes(d.centers),
            human_bytes(d.other)
        ),
    );
    cache_row(&mut out, "chunk index cache", &r.cache);
    row(
        &mut out,
        "DLAS cache.pth",
        if r.dlas_cache_pth {
            "present (ignored by dlas_fast)"
        } else {
            "absent"
        },
    );
    let _ = writeln!(out, "\n(*) {LEVELS_DEFINITION}");
    out
}

fn render_images(r: &ImagesReport) -> String {
    let mut out = String::new();
    row(&mut out, "dataset", &r.root);
    row(
        &mut out,
        "kind",
        "images (a folder of raw images, mode imagefolder)",
    );
    row(&mut out, "images", r.images);
    row(&mut out, "folders with images", r.folders);
    row(
        &mut out,
        "unreadable images",
        with_examples(&r.unreadable_images),
    );
    out.push('\n');
    sizes(&mut out, "image sizes", "images", &r.sizes, MAX_SIZES);
    out.push('\n');
    row(
        &mut out,
        "disk",
        format!(
            "{} total: images {}, other {}",
            human_bytes(r.disk.total),
            human_bytes(r.disk.images),
            human_bytes(r.disk.other)
        ),
    );
    cache_row(&mut out, "listing cache", &r.cache);
    if r.dlas_cache_pth {
        row(&mut out, "DLAS cache.pth", "present (ignored by dlas_fast)");
    }
    out
}
