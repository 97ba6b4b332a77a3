//! The extraction run: list sources, guard DST, process sources in parallel, write
//! chunks, and report.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::Instant;

use super::dest::{job_chunk_names, prepare, Plan, Shard};
use super::options::ExtractOptions;
use super::overlap::check_overlap;
use super::own_files::write_atomic;
use super::ownership::remove_own_folder;
use super::record::SourceRecord;
use super::source::{process_source_until, Chunk, Outcome};
use super::sources::list_sources;
use super::summary::{SourceIssue, Summary};
use super::writer::{write_chunk, WriteError, Written};
use crate::error::{CoreError, Result};
use crate::image::JPEG_ENCODER;

/// Hears about progress; called from worker threads.
pub trait Progress: Sync {
    /// The run is about to process `total` sources of `bytes` bytes together (their
    /// file sizes: known before any is opened, and close to proportional to the work).
    fn start(&self, _total: usize, _bytes: u64) {}
    /// One source (of `bytes` bytes) is done; `status` is "extracted", "kept", "skipped"
    /// or "failed".
    fn source_done(&self, _path: &Path, _status: &str, _tiles: usize, _pixels: u64, _bytes: u64) {}
    /// Polled between sources and between the tiles of a source: true asks the run to
    /// stop. It then finishes no more chunks and returns [`CoreError::Interrupted`],
    /// leaving DST as a killed run would (its manifest "running", for `resume`).
    fn cancelled(&self) -> bool {
        false
    }
}

/// A progress sink that ignores everything.
pub struct Silent;
impl Progress for Silent {}

/// A source's chunks, on their way from a worker to the writer thread.
struct Finished<'a> {
    /// The source's number in the job's list.
    index: usize,
    path: &'a Path,
    names: &'a [String],
    chunks: Vec<Chunk>,
    pixels: u64,
}

/// Extracts the chunked dataset of docs/spec.md §2 from `src` into `dst`.
///
/// Bad sources (and chunk names DST's file system refuses) are reported in the summary
/// (and the report file), never abort the run. Errors: invalid options, an unusable
/// SRC, a refused DST, a write failure, or [`CoreError::Interrupted`] when `progress`
/// asked the run to stop.
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
    // SRC and DST must not overlap; checked before SRC is even listed.
    check_overlap(src, dst)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.n_thread)
        .thread_name(|i| format!("dlas-extract-{i}"))
        .build()
        .map_err(|e| CoreError::option("n_thread", e.to_string()))?;
    let listed = list_sources(src)?;
    let record = pool.install(|| SourceRecord::of(src, &listed.files));
    let (names, per) = job_chunk_names(&listed.files, opts.vertical_split);
    let mut mine: Vec<usize> = (0..listed.files.len())
        .filter(|i| i % shard.count == shard.index - 1)
        .collect();
    // Largest files first, so no thread is left decoding a big source alone at the end.
    // The output does not depend on this order (names and ids are fixed above).
    mine.sort_by_key(|&i| std::cmp::Reverse(record.entries[i].size));
    let plan = Plan {
        record: &record,
        files: &listed.files,
        names: &names,
        per,
        mine: &mine,
        stop: &|| progress.cancelled(),
    };
    if progress.cancelled() {
        // Asked to stop while SRC was being listed: DST is not touched.
        return Err(CoreError::Interrupted);
    }
    let (dest, found) = pool.install(|| prepare(dst, opts, shard, &plan))?;

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
    // Set when a source was left unfinished because the run was asked to stop.
    let stopped = AtomicBool::new(false);
    let stop = || {
        let asked = progress.cancelled();
        if asked {
            stopped.store(true, Ordering::Relaxed);
        }
        asked
    };
    let bytes_of = |i: usize| record.entries[i].size;
    progress.start(mine.len(), mine.iter().map(|&i| bytes_of(i)).sum());
    // Workers decode and encode; one writer thread creates the files, so a worker
    // never waits on the file system (creating thousands of small files can block on
    // the journal) and a slow disk throttles the workers through the bounded queue.
    let (to_writer, finished) = mpsc::sync_channel::<Finished<'_>>(2 * opts.n_thread);
    let fail = |path: &Path, bytes: u64, reason: String| {
        summary
            .lock()
            .expect("summary lock")
            .failed
            .push(SourceIssue {
                path: path.to_string_lossy().into_owned(),
                reason,
            });
        progress.source_done(path, "failed", 0, 0, bytes);
    };
    let write_one = |f: Finished<'_>| {
        let mut tiles = 0;
        let mut written = Vec::new();
        for chunk in &f.chunks {
            if abort.load(Ordering::Relaxed) || stop() {
                return;
            }
            let name = &f.names[chunk.part];
            match write_chunk(&dest, f.index, name, chunk) {
                Ok(Written::New) => {
                    tiles += chunk.tiles.len();
                    written.push(name);
                }
                Ok(Written::Kept) => {}
                Err(WriteError::Source(reason)) => {
                    // A source is extracted whole or not at all: the chunks of it this
                    // run already placed go again.
                    for name in written {
                        if let Err(e) = remove_own_folder(&dest.root.join(name)) {
                            abort.store(true, Ordering::Relaxed);
                            fatal.lock().expect("fatal lock").get_or_insert(e);
                            return;
                        }
                    }
                    fail(f.path, bytes_of(f.index), reason);
                    return;
                }
                Err(WriteError::Fatal(e)) => {
                    abort.store(true, Ordering::Relaxed);
                    fatal.lock().expect("fatal lock").get_or_insert(e);
                    return;
                }
            }
        }
        {
            let mut s = summary.lock().expect("summary lock");
            s.sources_extracted += 1;
            s.chunks_written += written.len();
            s.tiles_written += tiles;
            s.input_pixels += f.pixels;
        }
        progress.source_done(f.path, "extracted", tiles, f.pixels, bytes_of(f.index));
    };
    let process_one = |i: usize, to_writer: &mpsc::SyncSender<_>| {
        if abort.load(Ordering::Relaxed) || stop() {
            return;
        }
        let path = &listed.files[i];
        let my_names = &names[i * per..(i + 1) * per];
        let shown = path.to_string_lossy().into_owned();
        if found.kept.contains(&i) {
            summary.lock().expect("summary lock").sources_kept += 1;
            progress.source_done(path, "kept", 0, 0, bytes_of(i));
            return;
        }
        if let Some(reason) = found.refused.get(&i) {
            fail(path, bytes_of(i), reason.clone());
            return;
        }
        let outcome = process_source_until(path, opts, &levels, &stop);
        if stop() {
            // Whatever it became, it was cut short: `resume` does it again.
            return;
        }
        let (status, pixels) = match outcome {
            Outcome::Extracted { chunks, pixels } => {
                let f = Finished {
                    index: i,
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
        progress.source_done(path, status, 0, pixels, bytes_of(i));
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
    if stopped.load(Ordering::Relaxed) {
        // The manifest stays "running": `resume` keeps the finished chunks.
        return Err(CoreError::Interrupted);
    }
    dest.confirm_sources(opts)?;
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
