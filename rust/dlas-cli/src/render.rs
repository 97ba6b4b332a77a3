//! The text summaries of `verify` and `inspect`: the tables printed when `--json` is
//! not given.

use dlas_core::survey::inspect::{CacheReport, ChunkedReport, ImagesReport, LEVELS_DEFINITION};
use dlas_core::survey::{Examples, Inspection, SizeCount, VerifyReport};

/// The summary `verify` prints: the counts, then each broken file with why.
pub fn render_verify(r: &VerifyReport) -> String {
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

/// The table `inspect` prints for either kind of dataset.
pub fn render_inspection(ins: &Inspection) -> String {
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

/// The summary `pack` prints.
pub fn render_pack(s: &dlas_core::pack::PackSummary, out: &std::path::Path) -> String {
    use std::fmt::Write;
    let mut text = String::new();
    row(
        &mut text,
        "shards",
        format!("{} in {}", s.shards.len(), out.display()),
    );
    row(&mut text, "  written", s.written);
    row(&mut text, "  kept from a run before", s.kept);
    row(&mut text, "chunks", s.chunks);
    row(&mut text, "files", s.files);
    row(&mut text, "size", human_bytes(s.bytes));
    row(&mut text, "time", format!("{:.2} s", s.elapsed_secs));
    row(&mut text, "manifest", dlas_core::pack::MANIFEST_NAME);
    if !s.skipped.is_empty() {
        let _ = writeln!(text, "files not packed ({}):", s.skipped.len());
        for k in &s.skipped {
            let _ = writeln!(text, "  {}: {}", k.path.display(), k.reason);
        }
    }
    if !s.left_over.is_empty() {
        let _ = writeln!(
            text,
            "shards of an earlier pack, not part of this one (left as they are; delete \
             them before reading the folder with other tools): {}",
            s.left_over.join(", ")
        );
    }
    text
}
