//! One module per family of requests; each handler is a pure function of the session.

pub mod assist;
pub mod nav;
pub mod runs;
