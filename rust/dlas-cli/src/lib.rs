//! The `dlas-fast` command: `dlas-fast extract SRC DST [options]`.
//!
//! [`run`] is the whole command (the binary and `python -m dlas_fast` both call it)
//! and returns the process exit status: 0 success, 2 usage errors and a refused DST,
//! 3 when the run finished but some sources could not be read or decoded, 1 for any
//! other failure.

mod progress;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use dlas_core::extract::{extract, ExtractOptions};
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
    Extract(ExtractArgs),
}

#[derive(Args, Debug)]
struct ExtractArgs {
    /// Folder of source images (searched recursively).
    src: PathBuf,
    /// Output folder of the chunked dataset.
    dst: PathBuf,
    /// Side of the square crop, per scale level.
    #[arg(long, value_delimiter = ',', default_value = "256,512")]
    crop_sz: Vec<usize>,
    /// Stride of the sliding window, per level.
    #[arg(long, value_delimiter = ',', default_value = "128,256")]
    step: Vec<usize>,
    /// A leftover edge strip wider than this earns one extra crop flush with the edge.
    #[arg(long, default_value_t = 128)]
    thres_sz: usize,
    /// Factor each crop is area-resized by before saving, per level.
    #[arg(long, value_delimiter = ',', default_value = "1,0.5")]
    resize_final_img: Vec<f64>,
    /// Per level, `|`-separated substrings: a source whose path contains one skips that
    /// level (e.g. `--exclusions 'thumb|icon,'`).
    #[arg(long, value_delimiter = ',')]
    exclusions: Vec<String>,
    /// JPEG quality of tiles and ref.
    #[arg(long, default_value_t = 95)]
    compression_level: u8,
    /// Sources whose larger side exceeds this are area-halved first.
    #[arg(long, default_value_t = 5500)]
    input_image_max_size_before_being_halved: usize,
    /// Sources whose smaller side is below this (after halving) are skipped.
    #[arg(long, default_value_t = 512)]
    min_size: usize,
    /// Stereo pairs: left and right halves become two chunks (`_left`, `_right`).
    #[arg(long)]
    vertical_split: bool,
    /// Keep only tiles whose mask `<MASK_PATH>/<file name>.png` is at least half white.
    #[arg(long)]
    mask_path: Option<PathBuf>,
    /// Refuse sources with more pixels than this (decompression bombs).
    #[arg(long, default_value_t = 200_000_000)]
    max_pixels: u64,
    /// Worker threads (DLAS: n_thread); default: all cores.
    #[arg(long)]
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

/// Runs the command line `args` (including the program name); returns the exit status.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match cli.command {
        Command::Extract(a) => run_extract(&a),
    }
}

fn run_extract(a: &ExtractArgs) -> i32 {
    let opts = a.options();
    let reporter = progress::Reporter::new(a.quiet, a.no_progress_bar);
    match extract(&a.src, &a.dst, &opts, &reporter) {
        Ok(summary) => {
            reporter.finish();
            print!("{}", summary.render());
            summary.exit_code()
        }
        Err(e) => {
            reporter.finish();
            eprintln!("dlas-fast extract: error: {e}");
            match e {
                CoreError::InvalidOption { .. } | CoreError::Destination { .. } => 2,
                CoreError::Io { ref path, .. } if path == &a.src => 2,
                _ => 1,
            }
        }
    }
}
