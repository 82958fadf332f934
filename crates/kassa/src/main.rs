//! The `kassa` binary: flags, configuration and wiring; the work happens in the library crates.

use clap::Parser;

/// Kassa, an offline-first point-of-sale platform for retail chains.
#[derive(Debug, Parser)]
#[command(name = "kassa", version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
