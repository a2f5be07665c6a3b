//! Keeping the HTTP server's async workers free while guests run.
//!
//! The daemon runs each invocation on the tokio worker that received its request. Most finish
//! in microseconds, and moving them to another thread (`block_in_place` around every call)
//! cost two thread wake-ups per request. Work that may block for long leaves the worker
//! instead:
//! - a guest that is still running at the first epoch tick after it started (ticks are
//!   [`crate::limits::EPOCH_TICK`] apart, so a guest holds its worker for at most one tick):
//!   the store's epoch callback calls [`hand_off`], and the rest of the invocation runs on this
//!   thread while another takes over the worker's other tasks;
//! - a kernel launch (the interpreter or a GPU): [`blocking`] around it.
//!
//! Outside a multi-thread tokio runtime (`tensorwasm run`, the build's oracle, tests) both
//! simply run on the calling thread.

use std::time::Duration;

/// How long [`hand_off`] leaves for another thread to take over the worker's tasks.
pub const HAND_OFF_WAIT: Duration = Duration::from_millis(1);

#[cfg(feature = "server")]
fn on_async_worker() -> bool {
    use tokio::runtime::{Handle, RuntimeFlavor};
    Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread)
}

#[cfg(not(feature = "server"))]
fn on_async_worker() -> bool {
    false
}

/// Runs `f`, which may block for long: on a tokio worker, the worker's other tasks first move
/// to another thread.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    #[cfg(feature = "server")]
    if on_async_worker() {
        return tokio::task::block_in_place(f);
    }
    f()
}

/// Hands this tokio worker's other tasks to another thread for the rest of the current task,
/// which keeps running here. (`block_in_place` starts a thread that takes the worker over; the
/// wait gives it time to do so, else this thread takes the worker back when the call returns,
/// and the next epoch tick tries again.) A no-op off a worker.
pub fn hand_off() {
    if on_async_worker() {
        blocking(|| std::thread::sleep(HAND_OFF_WAIT));
    }
}
