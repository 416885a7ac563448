//! chela's black-box test suite: one binary that `mod`s its topics (fewer
//! link steps than one binary per file).
//!
//! Must not: hold tests itself; each topic is its own module.

mod conformance;
mod deploy;
mod openclaw_docs;
