//! `hog`: allocates memory until the host refuses, for memory limit tests.
//!
//! Params: `max_mb` (non-negative integer, optional): stop after this many MiB.
//! Result: with `max_mb`, `{"allocated_mb": <max_mb>}` once that much is allocated and touched;
//! without it, none: the action traps when memory runs out.
//! Logs: on the allocation failure, one stderr line `allocation failed after <k> MiB`.
//!
//! It allocates 1 MiB chunks, writes to every page of each (so they are really committed, also
//! natively) and keeps them all. Each chunk is first requested with `try_reserve_exact`, so the
//! failure can be reported; after reporting, it allocates the chunk again with a plain `Vec`,
//! which fails the same way and aborts through the global allocation-error handler. That abort
//! (a trap on wasm) is deliberate: the host's memory limit, not the action, ends the run, exactly
//! as for any action that runs out of memory, so the invoker sees a real memory exhaustion rather
//! than a polite exit.

use std::hint::black_box;

use ow_action::serde_json::{Value, json};

/// Size of each allocation.
const CHUNK: usize = 1 << 20;
/// Number of chunks that fill the whole 32-bit address space of a wasm32 instance.
const CHUNKS_IN_4_GIB: usize = 4096;
/// Distance between writes that commit a chunk's pages (the smallest page size we may run on).
const PAGE: usize = 4096;

fn main() {
    ow_action::run(|params: Value| -> Result<Value, String> {
        let max_mb = match params.get("max_mb") {
            None => None,
            Some(m) => Some(
                m.as_u64()
                    .ok_or("The parameter \"max_mb\" must be a non-negative integer.")?,
            ),
        };
        // Room for a full 4 GiB wasm32 memory up front, so growing this list never is the
        // allocation that fails (that would abort before the failure is logged).
        let mut chunks: Vec<Vec<u8>> = Vec::with_capacity(CHUNKS_IN_4_GIB);
        loop {
            let allocated = chunks.len() as u64;
            if max_mb.is_some_and(|max| allocated >= max) {
                return Ok(json!({ "allocated_mb": allocated }));
            }
            let mut chunk: Vec<u8> = Vec::new();
            if chunk.try_reserve_exact(CHUNK).is_err() {
                ow_action::log_err!("allocation failed after {allocated} MiB");
                // Fails like the reservation did, but through the allocation-error handler,
                // which aborts: see the module comment for why.
                chunk = vec![1u8; CHUNK];
            }
            chunk.resize(CHUNK, 0);
            for i in (0..CHUNK).step_by(PAGE) {
                chunk[i] = 1;
            }
            chunks.push(black_box(chunk));
        }
    });
}
