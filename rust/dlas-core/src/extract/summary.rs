//! The result of an extraction run, as returned to callers and written to the report.

use serde::{Deserialize, Serialize};

/// One source that was skipped or failed, with why.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SourceIssue {
    pub path: String,
    pub reason: String,
}

/// Totals of one run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Source images found (in this shard).
    pub sources_seen: usize,
    /// Sources whose chunks were written by this run.
    pub sources_extracted: usize,
    /// Sources whose chunks were already complete in DST (`resume`).
    pub sources_kept: usize,
    /// Sources skipped by a rule (too small, excluded, masked out): not failures.
    pub skipped: Vec<SourceIssue>,
    /// Sources (or folders) that could not be read or decoded.
    pub failed: Vec<SourceIssue>,
    /// Chunk folders written by this run.
    pub chunks_written: usize,
    /// Tile files written by this run.
    pub tiles_written: usize,
    /// Pixels of the sources decoded by this run (before halving).
    pub input_pixels: u64,
    /// Wall time of the run, seconds.
    pub elapsed_secs: f64,
    /// The JPEG encoder of this build.
    pub encoder: String,
    /// Where the report was written.
    pub report_path: String,
}

impl Summary {
    /// Input megapixels per second.
    pub fn input_mp_per_sec(&self) -> f64 {
        if self.elapsed_secs > 0.0 {
            self.input_pixels as f64 / 1e6 / self.elapsed_secs
        } else {
            0.0
        }
    }

    /// The process exit status the CLI uses: 0 when every source was extracted, kept or
    /// skipped by rule, 3 when some could not be read or decoded.
    pub fn exit_code(&self) -> i32 {
        if self.failed.is_empty() {
            0
        } else {
            3
        }
    }

    /// A human-readable multi-line summary.
    pub fn render(&self) -> String {
        let mut s = format!(
            "sources: {} seen, {} extracted, {} kept from an earlier run, {} skipped by rule, {} failed\n\
             written: {} chunks, {} tiles\n\
             input: {:.1} MP in {:.2} s ({:.1} MP/s), encoder {}\n",
            self.sources_seen,
            self.sources_extracted,
            self.sources_kept,
            self.skipped.len(),
            self.failed.len(),
            self.chunks_written,
            self.tiles_written,
            self.input_pixels as f64 / 1e6,
            self.elapsed_secs,
            self.input_mp_per_sec(),
            self.encoder,
        );
        for (label, list) in [("skipped", &self.skipped), ("FAILED", &self.failed)] {
            for issue in list {
                if issue.reason.starts_with(&issue.path) {
                    s.push_str(&format!("  {label}: {}\n", issue.reason));
                } else {
                    s.push_str(&format!("  {label}: {}: {}\n", issue.path, issue.reason));
                }
            }
        }
        if !self.report_path.is_empty() {
            s.push_str(&format!("report: {}\n", self.report_path));
        }
        s
    }
}
