//! The `dlas-fast` command: `dlas-fast extract SRC DST [options]`, `dlas-fast verify
//! PATH`, `dlas-fast inspect PATH`, `dlas-fast pack DATASET OUT` (and `preview`, which
//! the Python package runs).
//!
//! [`run`] is the whole command (the binary and `python -m dlas_fast` both call it)
//! and returns the process exit status: 0 success, 2 usage errors (a refused DST, a
//! PATH that is not a folder), 3 when the run finished but found files that cannot be
//! read or decoded (or, for pack, files it left out), 130 when `extract` or `pack` was
//! interrupted (Ctrl-C, SIGTERM), 1 for any other failure.

mod args;
mod interrupt;
mod progress;
mod render;

use dlas_core::extract::{extract_shard, Shard};
use dlas_core::survey::inspect::InspectOptions;
use dlas_core::survey::{inspect, verify, VerifyOptions};
use dlas_core::CoreError;

use args::{parse, Command, ExtractArgs, InspectArgs, PackArgs, VerifyArgs};
use render::{render_inspection, render_verify};

pub use args::long_version;
pub use progress::{PackReporter, Reporter};

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
        Command::Pack(a) => run_pack(&a),
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
            eprintln!("{}", interrupt::EXTRACT_STOPPED);
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

fn run_pack(a: &PackArgs) -> i32 {
    let opts = dlas_core::pack::PackOptions {
        shard_size: a.shard_size,
        threads: a.threads.unwrap_or(0),
    };
    let reporter = progress::PackReporter::new(a.quiet, a.no_progress_bar);
    let result = {
        let _signals = interrupt::Guard::install_for(true);
        dlas_core::pack::pack(&a.dataset, &a.out, &opts, &reporter)
    };
    reporter.finish();
    match result {
        Ok(summary) => {
            print!("{}", render::render_pack(&summary, &a.out));
            if summary.skipped.is_empty() {
                0
            } else {
                3
            }
        }
        Err(CoreError::Interrupted) => {
            eprintln!("{}", interrupt::PACK_STOPPED);
            130
        }
        Err(e) => {
            eprintln!("dlas-fast pack: error: {e}");
            match e {
                CoreError::InvalidOption { .. } | CoreError::Destination { .. } => 2,
                CoreError::Io { ref path, .. } if path == &a.dataset => 2,
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
