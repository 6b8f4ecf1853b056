//! `wand-pipeline`: the Mage project model that every part of Wand stands on.
//!
//! It reads a project exactly as Mage reads it (`../shared/mage-format.md` is the spec) and
//! knows where every block, edge and mistake is in the files. No async runtime, no polars, no
//! protocol code: the kernel and the language server both build on it.
//!
//! - [`vfs`]: the only IO; [`load`]: files into the [`model`]; [`check`]: diagnostics;
//! - [`yaml`], [`python`], [`sql`]: the three readers, all keeping byte ranges;
//! - [`dag`]: the pipeline graph; [`draw`]: the graph as Mermaid, DOT or SVG;
//! - [`render`]: diagnostics for terminals and tools.

pub mod check;
pub mod cursor;
pub mod dag;
pub mod diagnostic;
pub mod draw;
pub mod load;
pub mod model;
pub mod python;
pub mod render;
pub mod runrecord;
pub mod sql;
pub mod text;
pub mod vfs;
pub mod yaml;

pub use crate::dag::Dag;
pub use crate::diagnostic::{Code, Diagnostic, Severity};
pub use crate::model::{Block, BlockType, Language, Pipeline, Project};
pub use crate::text::{LineIndex, TextRange};

#[cfg(test)]
mod tests;
