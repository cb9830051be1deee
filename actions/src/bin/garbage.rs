//! `garbage`: ends stdout with a line that is not JSON, for the developer-error path.
//!
//! Params: ignored.
//! Logs: one stdout line `about to print garbage`.
//! Result: none: the last stdout line is `this is not json`, so the invoker reports
//! "The action did not return a dictionary or array." and keeps that line in the logs.

fn main() {
    println!("about to print garbage");
    println!("this is not json");
}
