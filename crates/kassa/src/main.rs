//! The `kassa` binary: flags, configuration and wiring; the work happens in the library crates.

mod price;

use clap::{Parser, Subcommand};

/// Kassa, an offline-first point-of-sale platform for retail chains.
#[derive(Debug, Parser)]
#[command(name = "kassa", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Price a basket file with the tax engine and print the receipt.
    Price(price::PriceArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Price(args) => price::run(&args),
    }
}
