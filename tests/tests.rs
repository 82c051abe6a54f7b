//! The one integration test binary: real SQLite files, real child
//! processes, the real `linemark` binary. See `helper/` for the fixtures.

mod helper;
mod suite;
