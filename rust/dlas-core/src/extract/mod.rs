//! The `extract_subimages_with_ref` job (docs/spec.md §2): a folder of photos → a chunked
//! patch dataset.

mod dest;
pub mod grid;
mod job;
mod options;
pub mod overlap;
mod own_files;
mod ownership;
pub mod record;
mod source;
pub mod sources;
mod summary;
mod writer;

pub use dest::{check as check_destination, Mode, Shard, OWN_PREFIX};
pub use job::{extract, extract_shard, Progress, Silent};
pub use options::{ExtractOptions, Level, MAX_THREADS};
pub use source::{process_source, process_source_until, Chunk, Outcome, Tile};
pub use summary::{SourceIssue, Summary};
