//! The command line's grammar: the clap definitions of `dlas-fast` and its commands,
//! the checks on their values, and the extract options they make.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use dlas_core::extract::{ExtractOptions, Shard, MAX_THREADS};
use dlas_core::image::MAX_MAX_PIXELS;

/// Fast chunked-dataset tools for DL-Art-School.
#[derive(Parser, Debug)]
#[command(name = "dlas-fast", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Turn a folder of photos into a chunked patch dataset (tiles, ref.jpg, centers.pt).
    Extract(Box<ExtractArgs>),
    /// Decode every image and parse every centers.pt under PATH; list the broken ones.
    Verify(VerifyArgs),
    /// Describe a dataset folder: chunks, tiles, sizes, scale levels, disk use, cache.
    Inspect(InspectArgs),
    /// Pack a chunked dataset into uncompressed tar shards with a sidecar index each
    /// (whole chunks per shard; `tar -x` of every shard gives the chunk folders back).
    Pack(PackArgs),
    /// Write a PNG contact sheet of samples from a dataset (needs the Python package:
    /// `python -m dlas_fast preview ...`).
    Preview {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

#[derive(Args, Debug)]
pub struct ExtractArgs {
    /// Folder of source images (searched recursively).
    pub src: PathBuf,
    /// Output folder of the chunked dataset.
    pub dst: PathBuf,
    /// Side of the square crop, per scale level (at most the square root of
    /// --max-pixels).
    #[arg(long, value_delimiter = ',', default_value = "256,512", allow_hyphen_values = true,
          value_parser = whole::<usize, 1, { u64::MAX }>)]
    pub crop_sz: Vec<usize>,
    /// Stride of the sliding window, per level.
    #[arg(long, value_delimiter = ',', default_value = "128,256", allow_hyphen_values = true,
          value_parser = whole::<usize, 1, { u64::MAX }>)]
    pub step: Vec<usize>,
    /// A leftover edge strip wider than this earns one extra crop flush with the edge.
    #[arg(long, default_value_t = 128, allow_hyphen_values = true,
          value_parser = whole::<usize, 0, { u64::MAX }>)]
    pub thres_sz: usize,
    /// Factor each crop is area-resized by before saving, per level.
    #[arg(long, value_delimiter = ',', default_value = "1,0.5")]
    pub resize_final_img: Vec<f64>,
    /// Per level, `|`-separated substrings: a source whose path contains one skips that
    /// level (e.g. `--exclusions 'thumb|icon,'`).
    #[arg(long, value_delimiter = ',')]
    pub exclusions: Vec<String>,
    /// JPEG quality of tiles and ref (1-100).
    #[arg(long, default_value_t = 95, allow_hyphen_values = true,
          value_parser = whole::<u8, 1, 100>)]
    pub compression_level: u8,
    /// Sources whose larger side exceeds this are area-halved first.
    #[arg(long, default_value_t = 5500, allow_hyphen_values = true,
          value_parser = whole::<usize, 0, { u64::MAX }>)]
    pub input_image_max_size_before_being_halved: usize,
    /// Sources whose smaller side is below this (after halving) are skipped.
    #[arg(long, default_value_t = 512, allow_hyphen_values = true,
          value_parser = whole::<usize, 0, { u64::MAX }>)]
    pub min_size: usize,
    /// Stereo pairs: left and right halves become two chunks (`_left`, `_right`).
    #[arg(long)]
    pub vertical_split: bool,
    /// Keep only tiles whose mask `<MASK_PATH>/<file name>.png` is at least half white.
    #[arg(long)]
    pub mask_path: Option<PathBuf>,
    /// Refuse sources with more pixels than this (decompression bombs).
    #[arg(long, default_value_t = 200_000_000, allow_hyphen_values = true,
          value_parser = whole::<u64, 1, MAX_MAX_PIXELS>)]
    pub max_pixels: u64,
    /// Worker threads (DLAS: n_thread); default: all cores.
    #[arg(long, allow_hyphen_values = true,
          value_parser = whole::<usize, 1, { MAX_THREADS as u64 }>)]
    pub threads: Option<usize>,
    /// Finish an interrupted run of the same job: complete chunks are kept.
    #[arg(long, conflicts_with = "overwrite")]
    pub resume: bool,
    /// Write into a DST that holds earlier output, replacing chunks of the same name.
    #[arg(long)]
    pub overwrite: bool,
    /// Never draw a progress bar; print plain progress lines.
    #[arg(long)]
    pub no_progress_bar: bool,
    /// Print nothing but the final summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// Process only shard K of N: the sources whose 0-based position in the sorted
    /// source list is K-1 mod N. All N shards into one DST (together or one after
    /// another) write exactly one run's chunks; each shard has its own lock.
    #[arg(long, value_name = "K/N", value_parser = parse_shard, conflicts_with = "ray")]
    pub shard: Option<Shard>,
    /// Run on a Ray cluster, one task per shard (needs the Python package and Ray:
    /// `pip install 'dlas_fast[ray]'`); --threads is then each task's threads (default:
    /// the smallest node's cores, one task per node at a time).
    #[arg(long)]
    pub ray: bool,
    /// With --ray: the cluster to join (default: RAY_ADDRESS, or a local instance).
    #[arg(long, requires = "ray")]
    pub ray_address: Option<String>,
    /// With --ray: number of shards (default: four per task slot of the cluster).
    #[arg(long, requires = "ray")]
    pub ray_tasks: Option<usize>,
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
pub struct VerifyArgs {
    /// Dataset folder (searched recursively; names starting with `.` are skipped).
    pub path: PathBuf,
    /// Worker threads; default: all cores.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Report images with more pixels than this as broken (decompression bombs).
    #[arg(long, default_value_t = 200_000_000, allow_hyphen_values = true,
          value_parser = whole::<u64, 1, MAX_MAX_PIXELS>)]
    pub max_pixels: u64,
    /// Never draw a progress bar; print plain progress lines.
    #[arg(long)]
    pub no_progress_bar: bool,
    /// Print nothing but the final summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct PackArgs {
    /// The chunked dataset's folder.
    pub dataset: PathBuf,
    /// The folder of the shards (made if missing; apart from DATASET).
    pub out: PathBuf,
    /// About how large a shard is: bytes, or with a unit (`512MiB`, `1GiB`, `2GB`).
    #[arg(long, default_value = "1GiB", allow_hyphen_values = true, value_parser = byte_size)]
    pub shard_size: u64,
    /// Worker threads; default: all cores.
    #[arg(long, value_parser = whole::<usize, 1, { dlas_core::pack::MAX_THREADS as u64 }>)]
    pub threads: Option<usize>,
    /// Never draw a progress bar; print plain progress lines.
    #[arg(long)]
    pub no_progress_bar: bool,
    /// Print nothing but the final summary.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `--shard-size`: [`dlas_core::pack::parse_size`].
fn byte_size(s: &str) -> Result<u64, String> {
    dlas_core::pack::parse_size(s)
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Dataset folder: a chunked dataset, or a folder of images.
    pub path: PathBuf,
    /// Print the description as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Worker threads for reading image headers; default: all cores.
    #[arg(long)]
    pub threads: Option<usize>,
}

impl ExtractArgs {
    /// The extract options these arguments ask for (`--exclusions` split at `|` and
    /// padded to one list per level).
    pub fn options(&self) -> ExtractOptions {
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
pub fn parse<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = Cli::command()
        .long_version(long_version())
        .try_get_matches_from(args)?;
    Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut Cli::command()))
}
