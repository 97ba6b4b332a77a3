//! The extraction run: list sources, guard DST, process sources in parallel, write
//! chunks, and report.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::Instant;

use super::dest::{prepare, write_atomic, Shard};
use super::options::ExtractOptions;
use super::source::{process_source, Chunk, Outcome};
use super::sources::{chunk_names, list_sources};
use super::summary::{SourceIssue, Summary};
use super::writer::{write_chunk, Written};
use crate::error::{CoreError, Result};
use crate::image::JPEG_ENCODER;

/// Hears about progress; called from worker threads.
pub trait Progress: Sync {
    /// The run is about to process `total` sources.
    fn start(&self, _total: usize) {}
    /// One source is done; `status` is "extracted", "kept", "skipped" or "failed".
    fn source_done(&self, _path: &Path, _status: &str, _tiles: usize, _pixels: u64) {}
}

/// A progress sink that ignores everything.
pub struct Silent;
impl Progress for Silent {}

/// A source's chunks, on their way from a worker to the writer thread.
struct Finished<'a> {
    path: &'a Path,
    names: &'a [String],
    chunks: Vec<Chunk>,
    pixels: u64,
}

/// Extracts the chunked dataset of SPEC §2 from `src` into `dst`.
///
/// Bad sources are reported in the summary (and the report file), never abort the
/// run. Errors: invalid options, an unusable SRC, a refused DST, or a write failure.
pub fn extract(
    src: &Path,
    dst: &Path,
    opts: &ExtractOptions,
    progress: &dyn Progress,
) -> Result<Summary> {
    extract_shard(src, dst, opts, Shard::ALL, progress)
}

/// [`extract`] restricted to one shard of the sorted source list.
pub fn extract_shard(
    src: &Path,
    dst: &Path,
    opts: &ExtractOptions,
    shard: Shard,
    progress: &dyn Progress,
) -> Result<Summary> {
    let started = Instant::now();
    let levels = opts.levels()?;
    if shard.index == 0 || shard.index > shard.count {
        return Err(CoreError::option("shard", "must be K/N with 1 <= K <= N"));
    }
    let listed = list_sources(src)?;
    let suffixes: &[&str] = if opts.vertical_split {
        &["_left", "_right"]
    } else {
        &[]
    };
    let names = chunk_names(&listed.files, suffixes);
    let per = suffixes.len().max(1);
    let mut mine: Vec<usize> = (0..listed.files.len())
        .filter(|i| i % shard.count == shard.index - 1)
        .collect();
    // Largest files first, so no thread is left decoding a big source alone at the end.
    // The output does not depend on this order (names and ids are fixed above).
    let size = |i: &usize| std::fs::metadata(&listed.files[*i]).map_or(0, |m| m.len());
    mine.sort_by_cached_key(|i| std::cmp::Reverse(size(i)));
    let dest = prepare(dst, opts, shard)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.n_thread)
        .thread_name(|i| format!("dlas-extract-{i}"))
        .build()
        .map_err(|e| CoreError::option("n_thread", e.to_string()))?;

    // Folders that could not be listed belong to no shard: the first one reports them,
    // so that a merged summary lists each once.
    let failed = listed
        .unreadable
        .iter()
        .filter(|_| shard.index == 1)
        .map(|(dir, reason)| SourceIssue {
            path: dir.to_string_lossy().into_owned(),
            reason: format!("cannot list folder: {reason}"),
        })
        .collect();
    let summary = Mutex::new(Summary {
        encoder: JPEG_ENCODER.to_string(),
        sources_seen: mine.len(),
        failed,
        ..Default::default()
    });
    let fatal: Mutex<Option<CoreError>> = Mutex::new(None);
    let abort = AtomicBool::new(false);
    progress.start(mine.len());
    // Workers decode and encode; one writer thread creates the files, so a worker
    // never waits on the file system (creating thousands of small files can block on
    // the journal) and a slow disk throttles the workers through the bounded queue.
    let (to_writer, finished) = mpsc::sync_channel::<Finished<'_>>(2 * opts.n_thread);
    let write_one = |f: Finished<'_>| {
        let mut tiles = 0;
        let mut written = 0;
        for chunk in &f.chunks {
            match write_chunk(&dest, &f.names[chunk.part], chunk) {
                Ok(Written::New) => {
                    tiles += chunk.tiles.len();
                    written += 1;
                }
                Ok(Written::Kept) => {}
                Err(e) => {
                    abort.store(true, Ordering::Relaxed);
                    fatal.lock().expect("fatal lock").get_or_insert(e);
                    return;
                }
            }
        }
        {
            let mut s = summary.lock().expect("summary lock");
            s.sources_extracted += 1;
            s.chunks_written += written;
            s.tiles_written += tiles;
            s.input_pixels += f.pixels;
        }
        progress.source_done(f.path, "extracted", tiles, f.pixels);
    };
    let process_one = |i: usize, to_writer: &mpsc::SyncSender<_>| {
        if abort.load(Ordering::Relaxed) {
            return;
        }
        let path = &listed.files[i];
        let my_names = &names[i * per..(i + 1) * per];
        let shown = path.to_string_lossy().into_owned();
        if dest.mode == super::dest::Mode::Resume
            && my_names.iter().all(|n| dest.root.join(n).is_dir())
        {
            summary.lock().expect("summary lock").sources_kept += 1;
            progress.source_done(path, "kept", 0, 0);
            return;
        }
        let (status, pixels) = match process_source(path, opts, &levels) {
            Outcome::Extracted { chunks, pixels } => {
                let f = Finished {
                    path,
                    names: my_names,
                    chunks,
                    pixels,
                };
                // The writer only hangs up after every worker is done.
                to_writer.send(f).expect("writer thread alive");
                return;
            }
            Outcome::Skipped { reason, pixels } => {
                let mut s = summary.lock().expect("summary lock");
                s.input_pixels += pixels;
                s.skipped.push(SourceIssue {
                    path: shown,
                    reason,
                });
                ("skipped", pixels)
            }
            Outcome::Failed { reason } => {
                summary
                    .lock()
                    .expect("summary lock")
                    .failed
                    .push(SourceIssue {
                        path: shown,
                        reason,
                    });
                ("failed", 0)
            }
        };
        progress.source_done(path, status, 0, pixels);
    };
    // A shared queue over the sources (largest first): each worker takes the next one.
    // Tiles within a source are parallel too, so the last big source is not left alone.
    let next = AtomicUsize::new(0);
    std::thread::scope(|threads| {
        let writer = std::thread::Builder::new()
            .name("dlas-extract-writer".into())
            .spawn_scoped(threads, || finished.into_iter().for_each(write_one))
            .map_err(|e| CoreError::io(dst, e))?;
        pool.scope(|scope| {
            for _ in 0..opts.n_thread {
                let to_writer = to_writer.clone();
                let (mine, next, process_one) = (&mine, &next, &process_one);
                scope.spawn(move |_| {
                    while let Some(&i) = mine.get(next.fetch_add(1, Ordering::Relaxed)) {
                        process_one(i, &to_writer);
                    }
                });
            }
        });
        drop(to_writer);
        writer.join().expect("writer thread panicked");
        Ok::<(), CoreError>(())
    })?;
    if let Some(e) = fatal.into_inner().expect("fatal lock") {
        return Err(e);
    }
    let mut summary = summary.into_inner().expect("summary lock");
    summary.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    summary.failed.sort_by(|a, b| a.path.cmp(&b.path));
    summary.elapsed_secs = started.elapsed().as_secs_f64();
    let report = dest.report_path();
    summary.report_path = report.to_string_lossy().into_owned();
    let text = serde_json::to_string_pretty(&summary).expect("summary serialises");
    write_atomic(&report, text.as_bytes())?;
    dest.write_manifest(opts, "finished")?;
    Ok(summary)
}
