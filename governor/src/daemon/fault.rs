//! Fault injection for the end-to-end tests, through `TB_GOVERNOR_TEST_FAULT`.
//!
//! Only debug builds read the variable; release builds ignore it. Its value is a
//! comma-separated list of `name` or `name:argument`:
//!
//! - `journal-torn-append:<path>`: while `<path>` exists, every journal append writes half of
//!   its line and then fails, as a write that ran out of disk space part-way would;
//! - `ingest-panic`: the ingest thread panics before it reads the chain;
//! - `replay-park:<epoch>`: `tb-governor replay` stops for good between writing the snapshot
//!   and the decision of `<epoch>`, after saying so on stderr, for a test to kill it there.

/// The environment variable naming the faults to inject (debug builds only).
pub const FAULT_VAR: &str = "TB_GOVERNOR_TEST_FAULT";

/// The argument of fault `name` when it is requested (empty for a fault without one); always
/// `None` in release builds.
pub fn requested(name: &str) -> Option<String> {
    if !cfg!(debug_assertions) {
        return None;
    }
    let value = std::env::var(FAULT_VAR).ok()?;
    value.split(',').find_map(|fault| {
        let (n, arg) = fault.split_once(':').unwrap_or((fault, ""));
        (n.trim() == name).then(|| arg.to_owned())
    })
}
