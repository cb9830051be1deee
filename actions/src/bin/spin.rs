//! `spin`: never returns, for timeout and fuel tests.
//!
//! Params: ignored. Result: none, ever.
//! Logs: one stdout line, `spinning`, then loops forever doing arithmetic. `black_box` keeps the
//! compiler from proving the loop has no effect (an effect-free infinite loop is otherwise fair
//! game for the optimiser), so only the host's deadline or fuel budget can stop it.

use std::hint::black_box;

fn main() {
    println!("spinning");
    let mut counter: u64 = 0;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}
