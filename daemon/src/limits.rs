//! Per-invocation limits: wall time through epoch interruption, linear memory and tables through
//! a store limiter.
//!
//! A guest that runs too long traps with `Trap::Interrupt` at its next epoch check; one that asks
//! for too much memory gets `-1` from `memory.grow` (as Wasm specifies), or fails to instantiate.
//! Nothing here may block the guest's thread or allocate per check.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Engine, ResourceLimiter};

/// How often the epoch advances. A wall-time limit is rounded up to a whole number of ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Default wall-time limit for one invocation.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default linear-memory limit for one instance (all memories together).
pub const DEFAULT_MAX_MEMORY: usize = 1 << 30;
/// Most table elements one instance may hold.
pub const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// Limits for one invocation.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-time limit.
    pub timeout: Duration,
    /// Linear-memory limit in bytes, summed over the instance's memories.
    pub max_memory: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: DEFAULT_TIMEOUT,
            max_memory: DEFAULT_MAX_MEMORY,
        }
    }
}

impl Limits {
    /// The epoch deadline, in ticks, for [`Limits::timeout`].
    pub fn deadline_ticks(&self) -> u64 {
        let tick = EPOCH_TICK.as_nanos().max(1);
        let ticks = self.timeout.as_nanos().div_ceil(tick);
        u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
    }
}

/// Advances an engine's epoch every [`EPOCH_TICK`] until dropped.
#[derive(Debug)]
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts ticking `engine`'s epoch on a background thread.
    pub fn start(engine: &Engine) -> std::io::Result<EpochTicker> {
        let stop = Arc::new(AtomicBool::new(false));
        let engine = engine.clone();
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("tensorwasm-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::park_timeout(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(EpochTicker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// Store limiter that caps linear memory and remembers the first refused request, so that a
/// failed instantiation can be reported as a memory-limit error.
#[derive(Debug)]
pub struct MemoryLimiter {
    max_memory: usize,
    in_use: usize,
    /// The first request that was refused, in bytes.
    pub refused: Option<usize>,
}

impl MemoryLimiter {
    /// A limiter allowing at most `max_memory` bytes of linear memory in total.
    pub fn new(max_memory: usize) -> Self {
        MemoryLimiter {
            max_memory,
            in_use: 0,
            refused: None,
        }
    }

    /// The configured limit in bytes.
    pub fn limit(&self) -> usize {
        self.max_memory
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let others = self.in_use.saturating_sub(current);
        let total = others.saturating_add(desired);
        if total > self.max_memory {
            self.refused.get_or_insert(total);
            return Ok(false);
        }
        self.in_use = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_rounds_up_to_whole_ticks() {
        let limits = |ms| Limits {
            timeout: Duration::from_millis(ms),
            max_memory: 0,
        };
        assert_eq!(limits(0).deadline_ticks(), 1);
        assert_eq!(limits(10).deadline_ticks(), 1);
        assert_eq!(limits(11).deadline_ticks(), 2);
        assert_eq!(limits(1000).deadline_ticks(), 100);
    }

    #[test]
    fn limiter_refuses_past_the_cap_and_remembers_it() {
        let mut limiter = MemoryLimiter::new(1 << 20);
        assert!(limiter.memory_growing(0, 1 << 16, None).unwrap());
        assert!(!limiter.memory_growing(1 << 16, 2 << 20, None).unwrap());
        assert_eq!(limiter.refused, Some(2 << 20));
    }
}
