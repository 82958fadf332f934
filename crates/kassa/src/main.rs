//! The `kassa` binary: flags, configuration and wiring; the work happens in the library crates.

mod bench;
mod bench_back_office;
mod bench_shop;
mod bench_sync;
mod catalog_cmd;
mod catalog_report;
mod demo;
mod hq_cmd;
mod licence_cmd;
mod price;
mod store_cmd;
mod terminal_sim_cmd;

/// mimalloc rather than the system's allocator: a catalog import of a million rows builds and
/// drops millions of small texts, and glibc's allocator kept hundreds of megabytes of freed
/// memory out of reach of the next phase (see the README's catalog benchmark).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Start a whole demo chain on this machine: HQ and three stores with two tills each.
    Demo(demo::DemoArgs),
    /// Price a basket file with the tax engine and print the receipt.
    Price(price::PriceArgs),
    /// The store node: a till ledger that never refuses a sale.
    Store(store_cmd::StoreArgs),
    /// Head office: exactly-once ingest, reference data, reports.
    Hq(hq_cmd::HqArgs),
    /// Benchmarks, each beside the raw limit measured in the same run.
    Bench(bench::BenchArgs),
    /// A simulated card terminal (Adyen Terminal API, local, encrypted) for development and tests.
    TerminalSim(terminal_sim_cmd::TerminalSimArgs),
    /// Catalog migration: profile legacy exports, merge them into HQ's catalog, roll back.
    Catalog(catalog_cmd::CatalogArgs),
    /// The vendor's side of licences: its signing key and the licence files it signs.
    Licence(licence_cmd::LicenceArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The demo's console is for people: it sends its log to a file in its data directory.
    if !matches!(cli.command, Command::Demo(_)) {
        init_logging(None);
    }
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Price(args) => price::run(&args),
        Command::Store(args) => store_cmd::run(args),
        Command::Hq(args) => hq_cmd::run(args),
        Command::Bench(args) => bench::run(args),
        Command::TerminalSim(args) => terminal_sim_cmd::run(args),
        Command::Catalog(args) => catalog_cmd::run(args),
        Command::Licence(args) => licence_cmd::run(args),
    }
}

/// Installs the log subscriber: structured JSON, filtered by `RUST_LOG` (default `info`), on
/// standard error or into `file`; `KASSA_LOG=text` switches to human-readable lines, coloured
/// only when they go to a terminal (colour codes in a pipe or a file are noise).
pub(crate) fn init_logging(file: Option<std::fs::File>) {
    use std::io::IsTerminal as _;
    // The last lines are also kept in memory, for a diagnostics bundle support asks for.
    use tracing_subscriber::fmt::writer::MakeWriterExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let text = std::env::var("KASSA_LOG").is_ok_and(|v| v == "text");
    match file {
        Some(file) => {
            let builder = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file).and(store::support::recent_log));
            if text {
                builder.init();
            } else {
                builder.json().init();
            }
        }
        None => {
            let builder = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(std::io::stderr().is_terminal())
                .with_writer(std::io::stderr.and(store::support::recent_log));
            if text {
                builder.init();
            } else {
                builder.json().init();
            }
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
