//! chela's black-box test suite: one binary that `mod`s its topics (fewer
//! link steps than one binary per file).

mod conformance;
mod deploy;
