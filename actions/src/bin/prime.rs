//! `prime`: counts the primes below `n`, a CPU-bound action for timeout, fuel and benchmark tests.
//!
//! Params: `n` (non-negative integer, default 100000).
//! Result: `{"n": <n>, "primes": <count of primes p < n>}` (`n` = 100000 gives 9592); an
//! application error when `n` is not a non-negative integer.
//!
//! Trial division by odd numbers up to the square root: plain arithmetic in a loop, almost no
//! memory, so its cost is CPU time (and fuel) only. No sieve, which would make it memory-bound.

use ow_action::serde_json::{Value, json};

/// `n` when the params do not say.
const DEFAULT_N: u64 = 100_000;

fn is_prime(k: u64) -> bool {
    if k < 2 {
        return false;
    }
    if k.is_multiple_of(2) {
        return k == 2;
    }
    let mut d = 3;
    while d * d <= k {
        if k.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}

fn main() {
    ow_action::run(|params: Value| -> Result<Value, String> {
        let n = match params.get("n") {
            None => DEFAULT_N,
            Some(n) => n
                .as_u64()
                .ok_or("The parameter \"n\" must be a non-negative integer.")?,
        };
        let primes = (0..n).filter(|&k| is_prime(k)).count();
        Ok(json!({ "n": n, "primes": primes }))
    });
}
