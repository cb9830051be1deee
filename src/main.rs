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
        Command::Run(args) => runtime.block_on(commands::run::execute(args)),
        Command::Standalone(args) => runtime.block_on(commands::standalone::execute(args)),
        Command::Invoker(args) => runtime.block_on(commands::invoker::execute(args)),
    }
}
