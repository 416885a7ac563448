//! Tool policy.
