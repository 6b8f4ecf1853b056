//! The `wand` Jupyter kernel: notebook cells are the blocks of one Mage pipeline.
//!
//! The protocol half (`kernel.rs` sockets and loop, `wire.rs` messages and HMAC, `install.rs`
//! kernelspec) is apart from the evaluation half (`session.rs`, which drives the engine and a
//! scratch Python worker), as evcxr keeps its Jupyter crate apart from its engine:
//!
//! - [`cells`]: what a cell is (block cell, magics, SQL, Python); pure;
//! - [`pipeline_yaml`]: minimal edits of a pipeline's metadata.yaml; pure;
//! - [`display`]: outputs, tests and errors as MIME bundles; pure;
//! - [`session`]: runs cells, with dependency-aware re-execution through the engine;
//! - [`scratch`]: the worker client for scratch cells, completion and `input()`;
//! - [`notebook`]: a pipeline as an `.ipynb`.

pub mod cells;
pub mod display;
pub mod install;
pub mod kernel;
pub mod notebook;
pub mod pipeline_yaml;
pub mod scratch;
pub mod session;
pub mod wire;
