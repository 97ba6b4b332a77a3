//! JPEG, one idea per file. libjpeg-turbo decodes and encodes; around it, the fast
//! paths of the formats tiles use.

pub(super) mod memory;
pub(super) mod turbo;
