//! The engine: runs a pipeline's blocks and reports what happens as [`EngineEvent`]s.
//!
//! No terminal or Jupyter types here: the CLI (`wand run`) and the Jupyter kernel are two views
//! of the same event stream.
//!
//! - [`plan`]: which blocks a run considers and whether each runs or reuses its output (pure);
//! - [`freshness`]: code versions, fingerprints, data versions, stale causes (pure);
//! - [`execute`]: the scheduler (threads, retries, timeouts, cancellation, run records);
//! - [`sql`]: SQL blocks on polars; [`postgres`]: SQL blocks and `mage_ai.io` in PostgreSQL
//!   ([`io_config`]: io_config.yaml profiles); [`python`]: the Python worker client;
//! - [`store`]: Mage's variables dir and Wand's provenance sidecars.

pub mod event;
pub mod execute;
pub mod freshness;
pub mod io_config;
pub mod plan;
pub mod postgres;
pub mod python;
pub mod sql;
pub mod store;

pub use event::EngineEvent;
pub use execute::{RunOptions, WorkerSlot, run};
pub use plan::Mode;
