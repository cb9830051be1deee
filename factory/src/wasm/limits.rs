//! An activation's memory and table limits, as a wasmtime [`ResourceLimiter`] on its store.
//!
//! The pool's slots are sized for the largest memory any action may have
//! ([`WasmConfig::max_memory_mb`](super::WasmConfig::max_memory_mb)); this limiter enforces the
//! action's own `limits.memory` below that. A refused `memory.grow` returns -1 to the guest (what
//! the wasm spec and every allocator expect) and is remembered: if the activation then fails, it
//! failed because it ran out of memory, and the user is told so
//! ([`messages::MEMORY_EXHAUSTED`](crate::outcome::messages::MEMORY_EXHAUSTED)). An instance whose
//! initial memory is over the limit fails to instantiate, with the same message.

use wasmtime::ResourceLimiter;

use super::engine::MAX_TABLE_ELEMENTS;

/// Instances, tables and memories one store may create: a WASI command is one instance with one
/// memory and one table. Threat: none beyond the pool's own caps; this keeps the store honest.
const MAX_PER_STORE: usize = 1;

/// The limits of one activation's store.
#[derive(Debug)]
pub(crate) struct ActivationLimiter {
    memory_bytes: usize,
    memory_denied: bool,
    /// The size of the linear memory, as last granted (at instantiation, then each `memory.grow`).
    memory_size: usize,
}

impl ActivationLimiter {
    /// A limiter allowing `memory_bytes` of linear memory.
    pub(crate) fn new(memory_bytes: usize) -> Self {
        Self {
            memory_bytes,
            memory_denied: false,
            memory_size: 0,
        }
    }

    /// The instance's linear memory size in bytes, as last granted; 0 before instantiation.
    pub(crate) fn memory_size(&self) -> usize {
        self.memory_size
    }

    /// Whether a memory allocation (at instantiation or a `memory.grow`) was refused.
    pub(crate) fn memory_denied(&self) -> bool {
        self.memory_denied
    }
}

impl ResourceLimiter for ActivationLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|max| desired > max) {
            // The module's own declared maximum: its choice, not our limit.
            return Ok(false);
        }
        if desired > self.memory_bytes {
            self.memory_denied = true;
            return Ok(false);
        }
        self.memory_size = desired;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS && maximum.is_none_or(|max| desired <= max))
    }

    fn instances(&self) -> usize {
        MAX_PER_STORE
    }

    fn tables(&self) -> usize {
        MAX_PER_STORE
    }

    fn memories(&self) -> usize {
        MAX_PER_STORE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_memory_within_the_limit_grows_and_beyond_is_refused_and_remembered() {
        let mut limiter = ActivationLimiter::new(128 << 20);
        assert!(limiter.memory_growing(0, 64 << 20, None).unwrap());
        assert!(limiter.memory_growing(64 << 20, 128 << 20, None).unwrap());
        assert!(!limiter.memory_denied());
        assert_eq!(limiter.memory_size(), 128 << 20);
        assert!(
            !limiter
                .memory_growing(128 << 20, (128 << 20) + 65536, None)
                .unwrap()
        );
        assert!(limiter.memory_denied());
        assert_eq!(
            limiter.memory_size(),
            128 << 20,
            "a refused grow changes nothing"
        );
    }

    #[test]
    fn test_the_module_maximum_also_applies() {
        let mut limiter = ActivationLimiter::new(128 << 20);
        assert!(!limiter.memory_growing(0, 2 << 20, Some(1 << 20)).unwrap());
        assert!(!limiter.memory_denied());
    }
}
