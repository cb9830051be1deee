//! `wasm-invoker`: the command line of the wasm-invoker OpenWhisk invoker.
//!
//! A thin `main` over [`main_exec`]: each subcommand lives in its own file under `commands/`, returns
//! its [`ExitStatus`] or a [`CliError`], and the error becomes an exit status here, once.

mod commands;
mod error;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::{CliError, ExitStatus};

/// Runs Apache OpenWhisk actions: wasm32-wasi in-process in pooled wasmtime instances, everything else
/// in Docker.
#[derive(Debug, Parser)]
#[command(name = "wasm-invoker", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one action file once, as the invoker would, and print its result.
    Run(commands::run::RunArgs),
    /// Serve OpenWhisk's REST API (actions, activations, web actions) on one node, with an
    /// embedded store: a local OpenWhisk for development.
    Standalone(commands::standalone::StandaloneArgs),
    /// Run as an OpenWhisk invoker: consume `invoker{N}` from Kafka, answer the controller, store
    /// activation records.
    Invoker(commands::invoker::InvokerArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    commands::init_tracing();
    let status = match main_exec(cli) {
        Ok(status) => status,
        Err(error) => {
            eprintln!("error: {error}");
            error.exit_status()
        }
    };
    ExitCode::from(status as u8)
}

/// Runs the chosen subcommand on the async runtime.
fn main_exec(cli: Cli) -> Result<ExitStatus, CliError> {
    let runtime = commands::runtime()?;
    match cli.command {
        Command::Run(args) => on_worker(&runtime, commands::run::execute(args)),
        Command::Standalone(args) => on_worker(&runtime, commands::standalone::execute(args)),
        Command::Invoker(args) => on_worker(&runtime, commands::invoker::execute(args)),
    }
}

/// Runs `command` as a task on the runtime's workers and waits for it on the main thread.
///
/// Not `block_on(command)`: the command's loops (the invoker's dispatch of each Kafka message, the
/// servers' accept loops) spawn a task per unit of work. Spawned from a worker, a task goes to that
/// worker's own queue; spawned from the main thread, every one goes through the runtime's shared
/// queue and wakes a worker, and the main thread itself is woken for every message. That is one
/// thread hop (two context switches) per activation saved.
fn on_worker<F>(runtime: &tokio::runtime::Runtime, command: F) -> Result<ExitStatus, CliError>
where
    F: Future<Output = Result<ExitStatus, CliError>> + Send + 'static,
{
    match runtime.block_on(runtime.spawn(command)) {
        Ok(outcome) => outcome,
        // A panic goes on unwinding here, as it would have out of `block_on`.
        Err(error) => match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            // Only a runtime shutting down cancels a task, and this one outlives the call.
            Err(error) => Err(CliError::Internal(anyhow::anyhow!(
                "the command's task was cancelled: {error}"
            ))),
        },
    }
}
