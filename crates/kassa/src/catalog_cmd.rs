//! `kassa catalog profile|import|rollback|batches`: turns legacy catalog exports into one
//! master catalog at HQ. `profile` shows what is in the files; `import` reads, normalises and
//! matches them, writes the review file of fuzzy suggestions, and prints (`--dry-run`) or
//! commits the result to HQ as one batch published through the reference-data change log;
//! `rollback` undoes a batch as a new change.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use comfy_table::{Cell, Table, presets::UTF8_FULL_CONDENSED};
use import::canonical::{self, CanonicalCatalog, CanonicalOptions, Existing};
use import::matching::{self, MatchOptions, Matching};
use import::normalize::DecimalStyle;
use import::review::Review;
use import::{Format, Mapping, Severity, SourceOptions, SourceRead};
use indicatif::{ProgressBar, ProgressStyle};
use protocol::seed::{IdentifierDto, PriceEntryDto, ScopeDto, VariantDto};
use protocol::sync::{PricesEntity, VariantEntity};
use rust_decimal::Decimal;
use serde_json::Value;

/// Arguments of `kassa catalog`.
#[derive(Debug, clap::Args)]
pub struct CatalogArgs {
    #[command(subcommand)]
    command: CatalogCommand,
}

#[derive(Debug, clap::Args)]
struct Inputs {
    /// Source files, each `[NAME=][FORMAT:]PATH` (the format is detected from the headers when
    /// not given; formats: shopify, woocommerce, square, lightspeed-r, lightspeed-x, loyverse,
    /// ospos, odoo, mapped).
    files: Vec<String>,
    /// An import plan (TOML): sources with their currency, encoding (UTF-8, windows-1252,
    /// UTF-16; a file that declares none must be UTF-8), tax inclusion and mapping files,
    /// precedence, tax mapping, location mapping (see the README's "Catalog migration"). A
    /// price's currency sign must agree with its source's currency; a source that declares
    /// none takes it from its first sign. Names over 255 characters are refused.
    #[arg(long)]
    config: Option<PathBuf>,
    /// A mapping file for every `mapped:` source given on the command line.
    #[arg(long)]
    mapping: Option<PathBuf>,
    /// Write every diagnostic to this CSV file (file, line, column, severity, code, reason).
    #[arg(long)]
    diagnostics: Option<PathBuf>,
    /// Print at most this many diagnostics (all of them go to --diagnostics).
    #[arg(long, default_value_t = 20)]
    show: usize,
}

#[derive(Debug, clap::Args)]
struct HqTarget {
    /// HQ's data directory (embedded SQLite).
    #[arg(long, env = "KASSA_HQ_DATA")]
    data: Option<PathBuf>,
    /// HQ's PostgreSQL URL.
    #[arg(long, env = "KASSA_HQ_DATABASE_URL", conflicts_with = "data")]
    database_url: Option<String>,
}

impl HqTarget {
    fn url(&self) -> anyhow::Result<Option<String>> {
        Ok(match (&self.database_url, &self.data) {
            (Some(url), _) => Some(url.clone()),
            // Catalog commands read HQ; they never set one up.
            (None, Some(dir)) => Some(hq::db::existing_sqlite_url(dir)?),
            (None, None) => None,
        })
    }
}

#[derive(Debug, clap::Subcommand)]
enum CatalogCommand {
    /// Profile sources: rows, products, variants, fill rates, barcode quality, duplicates,
    /// price anomalies.
    Profile {
        #[command(flatten)]
        inputs: Inputs,
    },
    /// Read, match and merge sources into the master catalog at HQ as one batch.
    Import {
        #[command(flatten)]
        inputs: Inputs,
        #[command(flatten)]
        hq: HqTarget,
        /// Print what would be created, merged and updated; write nothing to HQ.
        #[arg(long)]
        dry_run: bool,
        /// The review file of fuzzy suggestions: read for decisions, then rewritten.
        #[arg(long)]
        review: Option<PathBuf>,
        /// Commit even though fuzzy suggestions are still undecided: their variants stay apart
        /// (accepting one in the review file later merges them).
        #[arg(long)]
        allow_undecided: bool,
        /// Also write the opening stock counts (location, sku, quantity, source, file, line) to
        /// this CSV; they are committed to HQ with the batch either way.
        #[arg(long)]
        opening_counts: Option<PathBuf>,
        /// Write the provenance of every field (sku, field, source, system, file, line,
        /// legacy id) to this CSV.
        #[arg(long)]
        provenance: Option<PathBuf>,
        /// Write a readable report for a merchandiser to check: which variants merge (and
        /// why), which are new, updated or removed, the suggestions to review, and what was
        /// not imported. Diagnostics stay in --diagnostics.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Undo an import batch as a new reference-data change.
    Rollback {
        /// The batch id `kassa catalog import` printed.
        batch: String,
        #[command(flatten)]
        hq: HqTarget,
    },
    /// List import batches.
    Batches {
        #[command(flatten)]
        hq: HqTarget,
    },
}

/// The import plan file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanFile {
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    prices_include_tax: Option<bool>,
    #[serde(default)]
    effective_from: Option<String>,
    #[serde(default)]
    pricebook: Option<String>,
    #[serde(default)]
    review: Option<PathBuf>,
    #[serde(default)]
    title_precedence: Vec<String>,
    #[serde(default)]
    price_precedence: Vec<String>,
    #[serde(default)]
    default_tax: Option<String>,
    #[serde(default)]
    untaxed: Option<String>,
    #[serde(default)]
    threshold: Option<f64>,
    #[serde(default)]
    include_inactive: bool,
    #[serde(default)]
    source: Vec<SourceFile>,
    #[serde(default)]
    tax: BTreeMap<String, String>,
    #[serde(default)]
    tax_rates: BTreeMap<String, String>,
    #[serde(default)]
    locations: BTreeMap<String, String>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceFile {
    name: Option<String>,
    file: PathBuf,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    prices_include_tax: Option<bool>,
    #[serde(default)]
    mapping: Option<PathBuf>,
    #[serde(default)]
    decimal: Option<DecimalStyle>,
    /// The unit weighed items are priced and counted by (`lb`, `kg`, `g`, `oz`).
    #[serde(default)]
    weight_unit: Option<String>,
    /// The file's text encoding (`UTF-8`, `windows-1252`/`ISO-8859-1`, `UTF-16`), for any
    /// format; without it a file that is not UTF-8 is refused.
    #[serde(default)]
    encoding: Option<String>,
}

/// Runs `kassa catalog …`.
pub fn run(args: CatalogArgs) -> anyhow::Result<()> {
    match args.command {
        CatalogCommand::Profile { inputs } => {
            let (plan, base) = load_plan(inputs.config.as_deref())?;
            let mut phases = Phases::new();
            let reads = read_sources(&inputs, &plan, &base, &mut phases)?;
            phases.run("profiling", || print_profile(&reads));
            report_diagnostics(&reads, &[], &inputs)?;
            println!("{}", phases.summary());
            let broken = file_errors(&reads);
            if !broken.is_empty() {
                anyhow::bail!(
                    "these files cannot be imported as they stand:\n{}",
                    broken.join("\n")
                );
            }
            Ok(())
        }
        CatalogCommand::Import {
            inputs,
            hq,
            dry_run,
            review,
            allow_undecided,
            opening_counts,
            provenance,
            report,
        } => {
            let mut phases = Phases::new();
            let (plan, base) = load_plan(inputs.config.as_deref())?;
            let review_path = review.or_else(|| plan.review.as_ref().map(|r| base.join(r)));
            let url = hq.url()?;
            if url.is_none() && !dry_run {
                anyhow::bail!(
                    "--data DIR or --database-url is required to commit (or use --dry-run)"
                );
            }
            let reads = read_sources(&inputs, &plan, &base, &mut phases)?;
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            let db = match &url {
                Some(u) => Some(runtime.block_on(hq::db::open(u))?),
                None => None,
            };
            let (mut held, known) = match &db {
                Some(db) => phases.run("reading HQ's catalog", || {
                    runtime.block_on(async {
                        anyhow::Ok((
                            HeldCatalog::read(db).await?,
                            Some(hq::import::known(db).await?),
                        ))
                    })
                })?,
                None => (HeldCatalog::default(), None),
            };
            let mut outcome = pipeline(
                &reads,
                &plan,
                review_path.as_deref(),
                &mut held,
                &mut phases,
            )?;
            let mut counts = phases.run("opening counts", || {
                count_writes(&reads, &mut outcome.catalog)
            })?;
            let gone = match &db {
                Some(db) => runtime.block_on(hq::import::held(
                    db,
                    &Entities::gone_keys(&outcome.catalog, &held),
                ))?,
                None => hq::import::Held::new(),
            };
            let mut entities = Entities::new(&reads, &outcome.catalog, &plan, held, &gone)?;
            drop(gone);
            if let Some(db) = &db {
                let merged_away = merges(&entities.removals);
                if !merged_away.is_empty() {
                    let mut skus: Vec<String> = merged_away
                        .iter()
                        .flat_map(|(gone, into)| [gone.clone(), into.clone()])
                        .collect();
                    skus.sort_unstable();
                    skus.dedup();
                    let levels = runtime.block_on(hq::import::levels(db, &skus))?;
                    move_stock(&merged_away, &levels, &mut counts);
                }
            }
            print_outcome(&reads, &outcome);
            let refused = refusals(
                &reads,
                &outcome,
                &plan,
                known.as_ref(),
                review_path.as_deref(),
                allow_undecided,
            );
            phases.run("writing the files asked for", || {
                if let Some(path) = &opening_counts {
                    write_opening_counts(path, &reads, &outcome.catalog)?;
                }
                if let Some(path) = &provenance {
                    write_provenance(path, &reads, &outcome.catalog)?;
                }
                anyhow::Ok(())
            })?;
            let label = reads
                .iter()
                .map(|r| format!("{}={}", r.options.name, r.options.file))
                .collect::<Vec<_>>()
                .join(" ");
            let merged = outcome
                .catalog
                .variants
                .iter()
                .filter(|v| v.members.len() > 1)
                .count();
            if !refused.is_empty() {
                let why = refused
                    .iter()
                    .map(|r| format!("  - {r}"))
                    .collect::<Vec<_>>()
                    .join("\n");
                let only_undecided =
                    refused.len() == 1 && outcome_undecided(&outcome, allow_undecided);
                if dry_run && !only_undecided {
                    report_diagnostics(&reads, &outcome.catalog.diagnostics, &inputs)?;
                    anyhow::bail!("a commit would be refused:\n{why}");
                } else if dry_run {
                    println!("a commit would be refused:\n{why}");
                } else {
                    report_diagnostics(&reads, &outcome.catalog.diagnostics, &inputs)?;
                    anyhow::bail!("import refused, nothing was written to HQ:\n{why}");
                }
            }
            let write_report = |p: &hq::import::Plan| match &report {
                Some(path) => {
                    crate::catalog_report::write(
                        path,
                        &reads,
                        &outcome.matching,
                        &outcome.catalog,
                        p,
                    )?;
                    println!("report written to {}", path.display());
                    anyhow::Ok(())
                }
                None => anyhow::Ok(()),
            };
            match (&db, dry_run) {
                (Some(db), true) => {
                    let p = phases
                        .run("spelling out the entities and comparing with HQ", || {
                            runtime.block_on(hq::import::plan_chunks(db, &mut entities, &counts))
                        })?;
                    print_plan("would", &p, merged, 0);
                    write_report(&p)?;
                }
                (None, _) => {
                    let mut p = hq::import::Plan {
                        counts: counts
                            .iter()
                            .map(|c| (c.location.clone(), c.sku.clone()))
                            .collect(),
                        ..hq::import::Plan::default()
                    };
                    phases.run("spelling out the entities", || {
                        use hq::import::ChunkSource;
                        while entities.next_keys().is_some() {
                            let writes = entities.writes(&hq::import::Held::new())?;
                            p.created
                                .extend(writes.into_iter().map(|w| (w.kind, w.key)));
                        }
                        anyhow::Ok(())
                    })?;
                    print_plan("would", &p, merged, 0);
                    write_report(&p)?;
                }
                (Some(db), false) => {
                    let committed =
                        phases.run("spelling out the entities and writing to HQ", || {
                            runtime.block_on(hq::import::commit_chunks(
                                db,
                                &label,
                                jiff::Timestamp::now().as_millisecond(),
                                &mut entities,
                                &counts,
                            ))
                        })?;
                    print_plan("did", &committed.plan, merged, committed.counts_superseded);
                    write_report(&committed.plan)?;
                    match committed.batch {
                        Some(batch) => println!(
                            "committed batch {batch} at reference version {} (undo with `kassa catalog rollback {batch}`)",
                            committed.version
                        ),
                        None => println!(
                            "nothing changed: HQ already holds this catalog (reference version {})",
                            committed.version
                        ),
                    }
                }
            }
            report_diagnostics(&reads, &outcome.catalog.diagnostics, &inputs)?;
            println!("{}", phases.summary());
            Ok(())
        }
        CatalogCommand::Rollback { batch, hq } => {
            let url = hq
                .url()?
                .context("--data DIR or --database-url is required")?;
            let runtime = tokio::runtime::Runtime::new()?;
            let mut phases = Phases::new();
            let done = phases.run("rolling back", || {
                runtime.block_on(async {
                    let db = hq::db::open(&url).await?;
                    anyhow::Ok(hq::import::rollback(&db, &batch).await?)
                })
            })?;
            println!(
                "rolled back {batch} at reference version {}: {} entities restored, {} removed, {} opening counts withdrawn ({} already replaced by a later count)",
                done.version,
                done.restored,
                done.removed,
                done.counts_withdrawn,
                done.counts_superseded
            );
            println!("{}", phases.summary());
            Ok(())
        }
        CatalogCommand::Batches { hq } => {
            let url = hq
                .url()?
                .context("--data DIR or --database-url is required")?;
            let runtime = tokio::runtime::Runtime::new()?;
            let list = runtime.block_on(async {
                let db = hq::db::open(&url).await?;
                anyhow::Ok(hq::import::batches(&db).await?)
            })?;
            let mut t = table(&[
                "batch",
                "version",
                "entities",
                "opening counts",
                "rolled back at",
                "sources",
            ]);
            for b in list {
                t.add_row(vec![
                    b.id,
                    b.version.to_string(),
                    b.entities.to_string(),
                    b.counts.to_string(),
                    b.rolled_back_version
                        .map(|v| v.to_string())
                        .unwrap_or_default(),
                    b.label,
                ]);
            }
            println!("{t}");
            Ok(())
        }
    }
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(header.iter().map(Cell::new));
    t
}

fn load_plan(path: Option<&Path>) -> anyhow::Result<(PlanFile, PathBuf)> {
    let Some(path) = path else {
        return Ok((PlanFile::default(), PathBuf::from(".")));
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let plan: PlanFile = toml::from_str(&text)
        .with_context(|| format!("{} is not a valid import plan", path.display()))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok((plan, base))
}

/// One source to read.
#[derive(Debug, Clone)]
pub(crate) struct SourceSpec {
    pub options: SourceOptions,
    pub path: PathBuf,
    pub mapping: Option<Mapping>,
}

fn parse_arg(arg: &str) -> anyhow::Result<(Option<String>, Option<Format>, PathBuf)> {
    let (name, rest) = match arg.split_once('=') {
        Some((n, r)) if !n.contains('/') && !n.is_empty() => (Some(n.to_owned()), r),
        _ => (None, arg),
    };
    let (format, path) = match rest.split_once(':') {
        Some((f, p)) if Format::parse(f).is_some() => (Format::parse(f), p),
        _ => (None, rest),
    };
    Ok((name, format, PathBuf::from(path)))
}

/// A source as named: name, format, path, mapping file, and its plan entry if it has one.
type RawSource<'a> = (
    Option<String>,
    Option<Format>,
    PathBuf,
    Option<PathBuf>,
    Option<&'a SourceFile>,
);

fn specs(inputs: &Inputs, plan: &PlanFile, base: &Path) -> anyhow::Result<Vec<SourceSpec>> {
    let currency = plan
        .currency
        .as_deref()
        .map(domain::Currency::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("currency: {e}"))?
        .unwrap_or(domain::Currency::EUR);
    let chain_gross = plan.prices_include_tax.unwrap_or(true);
    let mut raw: Vec<RawSource<'_>> = Vec::new();
    for s in &plan.source {
        let format = match &s.format {
            Some(f) => {
                Some(Format::parse(f).with_context(|| format!("source format `{f}` is unknown"))?)
            }
            None => None,
        };
        raw.push((
            s.name.clone(),
            format,
            base.join(&s.file),
            s.mapping.as_ref().map(|m| base.join(m)),
            Some(s),
        ));
    }
    for arg in &inputs.files {
        let (name, format, path) = parse_arg(arg)?;
        raw.push((name, format, path, inputs.mapping.clone(), None));
    }
    if raw.is_empty() {
        anyhow::bail!("no source files: name them as arguments or in --config");
    }
    let mut out: Vec<SourceSpec> = Vec::new();
    for (name, format, path, mapping_path, declared) in raw {
        let mapping = match &mapping_path {
            Some(m) if format == Some(Format::Mapped) || format.is_none() => {
                let text = std::fs::read_to_string(m)
                    .with_context(|| format!("cannot read {}", m.display()))?;
                Some(Mapping::parse(&text).with_context(|| m.display().to_string())?)
            }
            _ => None,
        };
        let encoding = match declared.and_then(|d| d.encoding.as_deref()) {
            Some(e) => Some(import::Encoding::parse(e).with_context(|| {
                format!(
                    "source {}: encoding `{e}` is not UTF-8, windows-1252 (ISO-8859-1) or UTF-16",
                    path.display()
                )
            })?),
            None => None,
        };
        let format = match (format, &mapping) {
            (Some(f), _) => f,
            (None, Some(_)) => Format::Mapped,
            (None, None) => {
                let file = std::fs::File::open(&path)
                    .with_context(|| format!("cannot open {}", path.display()))?;
                import::sniff(file, encoding.unwrap_or_default())
                    .with_context(|| format!("{}: cannot read the header row", path.display()))?
                    .with_context(|| {
                    format!("{}: the headers match no known export; name the format (`FORMAT:PATH`) or give a mapping file", path.display())
                })?
            }
        };
        let explicit = name.is_some();
        let mut name = name.unwrap_or_else(|| format.as_str().to_owned());
        if explicit && out.iter().any(|s| s.options.name == name) {
            anyhow::bail!(
                "two sources are named `{name}`: each source needs its own name (it becomes the legacy system of its identifiers)"
            );
        }
        let mut n = 2;
        while out.iter().any(|s| s.options.name == name) {
            name = format!("{}-{n}", format.as_str());
            n += 1;
        }
        let mut options = SourceOptions::new(&name, &path.display().to_string(), format);
        options.currency = currency;
        options.currency_declared = plan.currency.is_some();
        options.prices_include_tax = chain_gross;
        options.encoding = encoding;
        if let Some(m) = &mapping {
            if let Some(c) = m.currency {
                options.currency = c;
                options.currency_declared = true;
            }
            options.decimal = m.decimal.unwrap_or(options.decimal);
            options.prices_include_tax = m.prices_include_tax.unwrap_or(options.prices_include_tax);
        }
        if let Some(d) = declared {
            if let Some(c) = &d.currency {
                options.currency = domain::Currency::parse(c)
                    .map_err(|e| anyhow::anyhow!("source {name}: currency: {e}"))?;
                options.currency_declared = true;
            }
            options.prices_include_tax = d.prices_include_tax.unwrap_or(options.prices_include_tax);
            options.decimal = d.decimal.unwrap_or(options.decimal);
            if let Some(unit) = &d.weight_unit {
                options.weight_unit_grams =
                    Some(import::normalize::grams_per(unit).with_context(|| {
                        format!("source {name}: weight unit `{unit}` is not g, kg, lb or oz")
                    })?);
            }
        }
        out.push(SourceSpec {
            options,
            path,
            mapping,
        });
    }
    for (list, names) in [
        ("title_precedence", &plan.title_precedence),
        ("price_precedence", &plan.price_precedence),
    ] {
        for n in names {
            if !out.iter().any(|s| &s.options.name == n) {
                let known: Vec<&str> = out.iter().map(|s| s.options.name.as_str()).collect();
                anyhow::bail!(
                    "{list} names `{n}`, which is no source of this import (sources: {})",
                    known.join(", ")
                );
            }
        }
    }
    Ok(out)
}

fn read_sources(
    inputs: &Inputs,
    plan: &PlanFile,
    base: &Path,
    phases: &mut Phases,
) -> anyhow::Result<Vec<SourceRead>> {
    let specs = specs(inputs, plan, base)?;
    let mut reads = Vec::with_capacity(specs.len());
    for spec in specs {
        let started = Instant::now();
        reads.push(read_one(&spec, true)?);
        phases.record(&format!("reading {}", spec.options.name), started);
    }
    Ok(reads)
}

/// The phases of a run: each shows a spinner with its elapsed time while it runs (on a
/// terminal; reading shows a bar over the file's bytes instead), and the closing summary gives
/// the time of each.
pub(crate) struct Phases {
    start: Instant,
    done: Vec<(String, Duration, Option<u64>)>,
}

impl Phases {
    pub(crate) fn new() -> Phases {
        Phases {
            start: Instant::now(),
            done: Vec::new(),
        }
    }

    /// Runs `work` as the phase `name`.
    pub(crate) fn run<T>(&mut self, name: &str, work: impl FnOnce() -> T) -> T {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(name.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        let started = Instant::now();
        let out = work();
        bar.finish_and_clear();
        self.record(name, started);
        out
    }

    fn record(&mut self, name: &str, started: Instant) {
        self.done
            .push((name.to_owned(), started.elapsed(), peak_mib()));
    }

    /// `took 3.2 s, peak 900 MiB: reading web 1.1 s (600 MiB), matching 0.4 s (900 MiB), …`:
    /// each phase's time and the process's peak memory at its end.
    pub(crate) fn summary(&self) -> String {
        let parts: Vec<String> = self
            .done
            .iter()
            .map(|(name, d, peak)| match peak {
                Some(p) => format!("{name} {:.1} s ({p} MiB)", d.as_secs_f64()),
                None => format!("{name} {:.1} s", d.as_secs_f64()),
            })
            .collect();
        let peak = peak_mib().map_or_else(String::new, |p| format!(", peak {p} MiB"));
        format!(
            "took {:.1} s{peak}: {}",
            self.start.elapsed().as_secs_f64(),
            parts.join(", ")
        )
    }
}

/// The process's peak resident memory so far (`VmHWM`), where the system tells it.
fn peak_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// Reads one source with a progress bar over its bytes (on a terminal).
pub(crate) fn read_one(spec: &SourceSpec, progress: bool) -> anyhow::Result<SourceRead> {
    let file = std::fs::File::open(&spec.path)
        .with_context(|| format!("cannot open {}", spec.path.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = if progress {
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template("{msg:20} [{bar:30}] {bytes}/{total_bytes} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(spec.options.name.clone());
        bar
    } else {
        ProgressBar::hidden()
    };
    let read = import::read(bar.wrap_read(file), &spec.options, spec.mapping.as_ref());
    bar.finish_and_clear();
    Ok(read)
}

fn pct(n: usize, of: usize) -> String {
    (n * 100)
        .checked_div(of)
        .map_or_else(|| "-".to_owned(), |p| format!("{p}%"))
}

fn print_profile(reads: &[SourceRead]) {
    let p = import::profile::profile(reads);
    let mut t = table(&[
        "source", "format", "file", "rows", "products", "variants", "errors", "warnings",
    ]);
    for s in &p.sources {
        t.add_row(vec![
            s.name.clone(),
            s.format.to_owned(),
            s.file.clone(),
            s.rows.to_string(),
            s.products.to_string(),
            s.variants.to_string(),
            s.errors.to_string(),
            s.warnings.to_string(),
        ]);
    }
    println!("{t}");
    let mut header = vec!["fill rate"];
    header.extend(p.sources.iter().map(|s| s.name.as_str()));
    let mut t = table(&header);
    for (i, field) in import::profile::FIELDS.iter().enumerate() {
        let mut row = vec![(*field).to_owned()];
        for s in &p.sources {
            let filled = s.fill.get(i).map_or(0, |f| f.1);
            row.push(pct(filled, s.variants));
        }
        t.add_row(row);
    }
    println!("{t}");
    let mut header = vec!["barcodes / prices"];
    header.extend(p.sources.iter().map(|s| s.name.as_str()));
    let mut t = table(&header);
    type Count = fn(&import::profile::SourceProfile) -> usize;
    let lines: [(&str, Count); 14] = [
        ("valid GTIN", |s| s.barcodes.valid),
        ("restricted circulation", |s| s.barcodes.restricted),
        ("valid after repair", |s| s.barcodes.repaired),
        ("bad check digit", |s| s.barcodes.bad_check_digit),
        ("scientific notation", |s| s.barcodes.scientific),
        ("not a GTIN", |s| s.barcodes.not_gtin),
        ("ambiguous", |s| s.barcodes.ambiguous),
        ("no barcode", |s| s.barcodes.missing),
        ("duplicate SKUs", |s| s.duplicate_skus),
        ("duplicate barcodes", |s| s.duplicate_barcodes),
        ("no price", |s| s.prices.missing),
        ("price zero", |s| s.prices.zero),
        ("price negative", |s| s.prices.negative),
        ("cost above price", |s| s.prices.cost_above_price),
    ];
    for (label, f) in lines {
        let mut row = vec![label.to_owned()];
        row.extend(p.sources.iter().map(|s| f(s).to_string()));
        t.add_row(row);
    }
    println!("{t}");
    println!(
        "across sources: {} SKUs and {} GTINs appear in more than one source",
        p.skus_across_sources, p.barcodes_across_sources
    );
    println!(
        "restricted circulation: GTINs with prefix 02, 04 or 20 to 29 are numbered by each store \
         or system for itself; they stay identifiers of their own source and are never matched \
         across sources"
    );
    for s in &p.sources {
        println!("{}: prices in {}", s.name, s.currency);
    }
}

/// Problems that make a whole file unusable (unreadable, not UTF-8, a quote that never closes,
/// no items), one line each.
fn file_errors(reads: &[SourceRead]) -> Vec<String> {
    reads
        .iter()
        .flat_map(|r| r.diagnostics.iter())
        .filter(|d| d.is_file_level())
        .map(ToString::to_string)
        .collect()
}

/// The variants an import removes because they were merged into another: `(gone, survivor)`.
fn merges(removals: &[hq::import::EntityWrite]) -> Vec<(String, String)> {
    removals
        .iter()
        .filter(|w| w.kind == "variant" && w.payload.is_none())
        .filter_map(|w| {
            let into = w.provenance.as_deref()?.strip_prefix("merged into ")?;
            Some((w.key.clone(), into.to_owned()))
        })
        .collect()
}

/// Moves the stock of variants merged into another to the survivor, per location, as opening
/// counts of this batch (so that a rollback moves it back): the merged-away SKU is counted at
/// zero; the survivor keeps this import's count where it has one (it covers the merged rows'
/// units, as for a fresh import: the first row by title precedence with stock there), and
/// elsewhere is counted at its on-hand plus the merged-away on-hand.
fn move_stock(
    merged_away: &[(String, String)],
    levels: &[(String, String, i64)],
    counts: &mut Vec<hq::import::CountWrite>,
) {
    let on_hand: HashMap<(&str, &str), i64> = levels
        .iter()
        .map(|(l, s, q)| ((l.as_str(), s.as_str()), *q))
        .collect();
    let counted: std::collections::HashSet<(String, String)> = counts
        .iter()
        .map(|c| (c.location.clone(), c.sku.clone()))
        .collect();
    let mut moved: BTreeMap<(String, String), i64> = BTreeMap::new();
    for (gone, into) in merged_away {
        for (location, sku, quantity) in levels {
            if sku != gone {
                continue;
            }
            if !counted.contains(&(location.clone(), gone.clone())) {
                counts.push(hq::import::CountWrite {
                    location: location.clone(),
                    sku: gone.clone(),
                    counted_milli: 0,
                    provenance: Some(serde_json::json!({ "moved_to": into }).to_string()),
                });
            }
            if counted.contains(&(location.clone(), into.clone())) {
                continue;
            }
            let level = (location.clone(), into.clone());
            let start = on_hand
                .get(&(location.as_str(), into.as_str()))
                .copied()
                .unwrap_or(0);
            *moved.entry(level).or_insert(start) += quantity;
        }
    }
    for ((location, sku), quantity) in moved {
        counts.push(hq::import::CountWrite {
            location,
            sku,
            counted_milli: quantity,
            provenance: Some(serde_json::json!({ "moved_from_merged": true }).to_string()),
        });
    }
}

fn outcome_undecided(outcome: &Outcome, allow_undecided: bool) -> bool {
    !outcome.matching.suggestions.is_empty() && !allow_undecided
}

/// The result of reading, matching and building.
pub(crate) struct Outcome {
    pub matching: Matching,
    pub catalog: CanonicalCatalog,
}

fn canonical_options(plan: &PlanFile) -> anyhow::Result<CanonicalOptions> {
    let mut options = CanonicalOptions {
        currency: plan
            .currency
            .as_deref()
            .map(domain::Currency::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("currency: {e}"))?
            .unwrap_or(domain::Currency::EUR),
        prices_include_tax: plan.prices_include_tax.unwrap_or(true),
        title_precedence: plan.title_precedence.clone(),
        price_precedence: plan.price_precedence.clone(),
        tax_map: plan.tax.clone(),
        locations: plan.locations.clone(),
        include_inactive: plan.include_inactive,
        ..CanonicalOptions::default()
    };
    if let Some(t) = &plan.default_tax {
        options.default_tax = t.clone();
    }
    if let Some(t) = &plan.untaxed {
        options.untaxed = t.clone();
    }
    for (category, rate) in &plan.tax_rates {
        let rate: Decimal = rate
            .trim_end_matches('%')
            .parse()
            .with_context(|| format!("tax rate `{rate}` of `{category}` is not a number"))?;
        options.tax_rates.insert(category.clone(), rate);
    }
    Ok(options)
}

/// Matching (with the review file) and the canonical catalog.
pub(crate) fn pipeline(
    reads: &[SourceRead],
    plan: &PlanFile,
    review_path: Option<&Path>,
    held: &mut HeldCatalog,
    phases: &mut Phases,
) -> anyhow::Result<Outcome> {
    let review = match review_path {
        Some(p) if p.exists() => Review::read(
            std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
        )
        .with_context(|| p.display().to_string())?,
        _ => Review::default(),
    };
    let mut match_options = MatchOptions::default();
    if let Some(t) = plan.threshold {
        match_options.threshold = t;
    }
    let matching = phases.run("matching", || {
        matching::match_items(reads, &review, match_options)
    });
    if let Some(p) = review_path {
        review
            .write(
                std::fs::File::create(p)
                    .with_context(|| format!("cannot write {}", p.display()))?,
                reads,
                &matching.suggestions,
            )
            .with_context(|| p.display().to_string())?;
    }
    let mut options = canonical_options(plan)?;
    // Lent to the build (a million variants' identifiers are worth not copying).
    options.existing = std::mem::take(&mut held.existing);
    let catalog = phases.run("building the catalog", || {
        canonical::build(reads, &matching, &options)
    });
    held.existing = options.existing;
    let catalog = catalog?;
    Ok(Outcome { matching, catalog })
}

fn print_outcome(reads: &[SourceRead], o: &Outcome) {
    let items: usize = reads.iter().map(|r| r.items.len()).sum();
    let s = &o.matching.stats;
    println!(
        "{items} source variants -> {} catalog variants ({} merges on GTIN, {} on SKU, {} from the review file); {} fuzzy suggestions to review; {} conflicts",
        o.catalog.variants.len(),
        s.by_gtin,
        s.by_sku,
        s.by_review,
        o.matching.suggestions.len(),
        o.matching.conflicts.len()
    );
    for c in o.matching.conflicts.iter().take(10) {
        let name = |r: matching::ItemRef| matching::item_key(reads, r);
        println!(
            "  conflict: {} and {} {}",
            name(c.left),
            name(c.right),
            c.reason
        );
    }
}

fn print_plan(verb: &str, p: &hq::import::Plan, merged: usize, superseded: usize) {
    let count = |v: &[(String, String)], kind: &str| v.iter().filter(|(k, _)| k == kind).count();
    let mut t = table(&["", "variants", "prices"]);
    let created = if verb == "would" {
        "would create"
    } else {
        "created"
    };
    let updated = if verb == "would" {
        "would update"
    } else {
        "updated"
    };
    t.add_row(vec![
        created.to_owned(),
        count(&p.created, "variant").to_string(),
        count(&p.created, "prices").to_string(),
    ]);
    t.add_row(vec![
        updated.to_owned(),
        count(&p.updated, "variant").to_string(),
        count(&p.updated, "prices").to_string(),
    ]);
    let removed = if verb == "would" {
        "would remove (merged into another)"
    } else {
        "removed (merged into another)"
    };
    t.add_row(vec![
        removed.to_owned(),
        count(&p.removed, "variant").to_string(),
        count(&p.removed, "prices").to_string(),
    ]);
    t.add_row(vec![
        "unchanged".to_owned(),
        p.unchanged.to_string(),
        String::new(),
    ]);
    t.add_row(vec![
        "merged from several rows".to_owned(),
        merged.to_string(),
        String::new(),
    ]);
    println!("{t}");
    let set = if verb == "would" { "would set" } else { "set" };
    let mut line = format!(
        "opening counts: {set} {}, {} unchanged",
        p.counts.len(),
        p.counts_unchanged
    );
    if superseded > 0 {
        line.push_str(&format!(
            " ({superseded} recorded but not in effect: a till counted those later)"
        ));
    }
    println!("{line}");
}

fn merge_entries(
    existing: &[PriceEntryDto],
    sku: &str,
    price: &str,
    from: &str,
) -> anyhow::Result<Option<Vec<PriceEntryDto>>> {
    let at: jiff::Timestamp = from
        .parse()
        .with_context(|| format!("effective_from `{from}` is not an RFC 3339 instant"))?;
    let ts = |s: &Option<String>| s.as_deref().and_then(|v| v.parse::<jiff::Timestamp>().ok());
    let in_force = existing
        .iter()
        .find(|e| ts(&e.from).is_none_or(|f| f <= at) && ts(&e.to).is_none_or(|t| at < t));
    if in_force.is_some_and(|e| e.price == price) {
        return Ok(None);
    }
    let mut out: Vec<PriceEntryDto> = existing
        .iter()
        .filter(|e| ts(&e.from).is_none_or(|f| f < at))
        .cloned()
        .map(|mut e| {
            if ts(&e.to).is_none_or(|t| t > at) {
                e.to = Some(from.to_owned());
            }
            e
        })
        .collect();
    out.push(PriceEntryDto {
        sku: sku.to_owned(),
        price: price.to_owned(),
        from: Some(from.to_owned()),
        to: None,
    });
    Ok(Some(out))
}

/// What HQ holds of its catalog before an import: its variants' SKUs and identifiers (for
/// finding them again) and the pricebooks it holds prices in. Read a row at a time; the
/// entities an import rewrites are read a chunk at a time as they are written.
#[derive(Default)]
pub(crate) struct HeldCatalog {
    existing: Existing,
    /// The book of every prices entity (the part of its key before `|`).
    books: BTreeSet<String>,
}

impl HeldCatalog {
    pub(crate) async fn read(db: &hq::db::Db) -> anyhow::Result<HeldCatalog> {
        let mut held = HeldCatalog::default();
        let mut broken = None;
        hq::import::scan(
            db,
            "variant",
            true,
            |sku, payload| match serde_json::from_str::<VariantEntity>(payload)
                .map_err(|e| e.to_string())
                .and_then(|e| e.variant.parse("variant").map_err(|e| e.to_string()))
            {
                Ok(variant) => held.existing.add(sku, variant.identifiers()),
                Err(e) => {
                    broken
                        .get_or_insert_with(|| format!("variant {sku} at HQ cannot be read: {e}"));
                }
            },
        )
        .await?;
        if let Some(why) = broken {
            anyhow::bail!(why);
        }
        hq::import::scan(db, "prices", false, |key, _| {
            if let Some((book, _)) = key.rsplit_once('|') {
                if !held.books.contains(book) {
                    held.books.insert(book.to_owned());
                }
            }
        })
        .await?;
        Ok(held)
    }
}

/// The reference entities the catalog becomes: one `variant` per variant (keeping identifiers
/// HQ already had for it) and one `prices` entity per priced SKU, in the chain book that
/// already prices it or else in the import's book, effective from the declared instant. They
/// are made a chunk at a time ([`hq::import::ChunkSource`]) from what HQ holds of that chunk,
/// while HQ compares and writes them: a million rows' entities held at once, or HQ's whole
/// catalog, would take gigabytes.
pub(crate) struct Entities<'a> {
    reads: &'a [SourceRead],
    catalog: &'a CanonicalCatalog,
    currency: String,
    book: String,
    from: String,
    /// The books HQ holds prices in, and the import's.
    books: BTreeSet<String>,
    /// The identifiers of the variants merged away, by the SKU they were merged into.
    absorbed: HashMap<String, Vec<IdentifierDto>>,
    /// Variants HQ holds that this catalog no longer has because a person merged them into
    /// another (their identifiers now belong to it): removed, with their prices.
    pub(crate) removals: Vec<hq::import::EntityWrite>,
    /// The check that HQ's catalog after the import builds: no SKU twice, no identifier on two
    /// variants (stores refuse a catalog that does not, so such an import is refused, and its
    /// transaction rolled back, before anything is kept). It starts with the variants HQ keeps
    /// as they are, and takes each variant as it is made.
    index: domain::catalog::CatalogIndex,
    /// The chunks made so far (the first is the removals; then a thousand variants each).
    made: usize,
}

impl<'a> Entities<'a> {
    /// `gone` holds what HQ holds of its variants this catalog lacks.
    pub(crate) fn new(
        reads: &'a [SourceRead],
        catalog: &'a CanonicalCatalog,
        plan: &PlanFile,
        held: HeldCatalog,
        gone: &hq::import::Held,
    ) -> anyhow::Result<Self> {
        let book = plan
            .pricebook
            .clone()
            .unwrap_or_else(|| "catalog".to_owned());
        let mut books = held.books;
        books.insert(book.clone());
        // Which new variant holds each identifier: only asked when HQ holds variants this
        // catalog lacks.
        let mut new_by_key: HashMap<u128, &str> = HashMap::new();
        if !gone.is_empty() {
            for v in &catalog.variants {
                for id in &v.identifiers(reads) {
                    new_by_key.insert(domain::catalog::key_hash(&id.key()), v.sku.as_str());
                }
            }
        }
        let mut index = domain::catalog::CatalogIndex::default();
        let mut absorbed: HashMap<String, Vec<IdentifierDto>> = HashMap::new();
        let mut removals = Vec::new();
        for ((_, sku), payload) in gone {
            let Some(payload) = payload else { continue };
            let old = serde_json::from_str::<VariantEntity>(payload)
                .with_context(|| format!("variant {sku} at HQ is not a variant entity"))?;
            let into = old.variant.identifiers.iter().find_map(|id| {
                new_by_key
                    .get(&domain::catalog::key_hash(&id_key(id)))
                    .copied()
            });
            let Some(into) = into else {
                // Kept as it is.
                index_entity(&mut index, &old)?;
                continue;
            };
            absorbed
                .entry(into.to_owned())
                .or_default()
                .extend(old.variant.identifiers);
            removals.push(hq::import::EntityWrite {
                kind: "variant".to_owned(),
                key: sku.clone(),
                payload: None,
                provenance: Some(format!("merged into {into}")),
            });
        }
        Ok(Entities {
            reads,
            catalog,
            currency: plan.currency.clone().unwrap_or_else(|| "EUR".to_owned()),
            book,
            from: plan
                .effective_from
                .clone()
                .unwrap_or_else(|| "2000-01-01T00:00:00Z".to_owned()),
            books,
            absorbed,
            removals,
            index,
            made: 0,
        })
    }

    /// The prices entities of `sku` in every book, in key order.
    fn price_keys(&self, sku: &str) -> impl Iterator<Item = (String, String)> {
        let mut keys: Vec<String> = self.books.iter().map(|b| format!("{b}|{sku}")).collect();
        keys.sort_unstable();
        keys.into_iter().map(|k| ("prices".to_owned(), k))
    }

    /// The variants of chunk `n` (from 1).
    fn variants_of(&self, n: usize) -> &'a [canonical::CanonicalVariant] {
        let all = &self.catalog.variants;
        let start = (n - 1).saturating_mul(1_000).min(all.len());
        &all[start..(start + 1_000).min(all.len())]
    }

    /// HQ's entities of variants that may be merged away into it or written.
    pub(crate) fn gone_keys(
        catalog: &CanonicalCatalog,
        held: &HeldCatalog,
    ) -> Vec<(String, String)> {
        let in_catalog: std::collections::HashSet<&str> =
            catalog.variants.iter().map(|v| v.sku.as_str()).collect();
        held.existing
            .skus()
            .iter()
            .filter(|sku| !in_catalog.contains(sku.as_str()))
            .map(|sku| ("variant".to_owned(), sku.clone()))
            .collect()
    }
}

impl hq::import::ChunkSource for Entities<'_> {
    fn next_keys(&mut self) -> Option<Vec<(String, String)>> {
        self.made += 1;
        if self.made == 1 {
            let mut keys = Vec::new();
            for w in &self.removals {
                keys.push((w.kind.clone(), w.key.clone()));
                keys.extend(self.price_keys(&w.key));
            }
            return Some(keys);
        }
        let variants = self.variants_of(self.made - 1);
        if variants.is_empty() {
            return None;
        }
        let mut keys = Vec::with_capacity(variants.len() * (1 + self.books.len()));
        for v in variants {
            let sku = v.sku.as_str();
            keys.push(("variant".to_owned(), sku.to_owned()));
            keys.extend(self.price_keys(sku));
            for sp in &v.store_prices {
                keys.push((
                    "prices".to_owned(),
                    format!("{}-{}|{sku}", self.book, sp.store),
                ));
            }
        }
        Some(keys)
    }

    fn writes(
        &mut self,
        held: &hq::import::Held,
    ) -> Result<Vec<hq::import::EntityWrite>, hq::import::ImportError> {
        if self.made == 1 {
            let mut writes = self.removals.clone();
            for w in &self.removals {
                for key in self.price_keys(&w.key) {
                    if matches!(held.get(&key), Some(Some(_))) {
                        writes.push(hq::import::EntityWrite {
                            kind: key.0,
                            key: key.1,
                            payload: None,
                            provenance: w.provenance.clone(),
                        });
                    }
                }
            }
            return Ok(writes);
        }
        let variants = self.variants_of(self.made - 1);
        let mut writes = Vec::with_capacity(variants.len() * 2);
        let mut index = std::mem::take(&mut self.index);
        let made = variants.iter().try_for_each(|v| {
            writes.extend(self.variant(v, held, &mut index)?);
            anyhow::Ok(())
        });
        self.index = index;
        made.map_err(|e| hq::import::ImportError::Entities(format!("{e:#}")))?;
        Ok(writes)
    }
}

impl Entities<'_> {
    /// The writes of one variant: itself and its prices.
    fn variant(
        &self,
        v: &canonical::CanonicalVariant,
        held: &hq::import::Held,
        index: &mut domain::catalog::CatalogIndex,
    ) -> anyhow::Result<Vec<hq::import::EntityWrite>> {
        let payload = |kind: &str, key: &str| {
            held.get(&(kind.to_owned(), key.to_owned()))
                .and_then(Option::as_deref)
        };
        let (reads, book, from, currency) = (self.reads, &self.book, &self.from, &self.currency);
        let mut writes = Vec::with_capacity(2);
        let sku = v.sku.to_string();
        let mut identifiers: Vec<IdentifierDto> = Vec::new();
        let mut keys = std::collections::HashSet::new();
        let mut product_id = v.product_id.clone();
        let mut product_name = v.product_name.clone();
        let mut category = None;
        if let Some(old) =
            payload("variant", &sku).and_then(|p| serde_json::from_str::<VariantEntity>(p).ok())
        {
            // An update keeps what HQ had: its product and category, and identifiers the
            // import lacks.
            product_id = old.product_id;
            product_name = old.product_name;
            category = old.category;
            for id in old.variant.identifiers {
                if keys.insert(id_key(&id)) {
                    identifiers.push(id);
                }
            }
        }
        for id in &v.identifiers(reads) {
            let dto = match id {
                domain::catalog::Identifier::Gtin(g) => IdentifierDto::Gtin(g.as_str().to_owned()),
                domain::catalog::Identifier::Plu(p) => IdentifierDto::Plu(p.as_str().to_owned()),
                domain::catalog::Identifier::Legacy { system, id } => IdentifierDto::Legacy {
                    system: system.clone(),
                    id: id.clone(),
                },
            };
            if keys.insert(id_key(&dto)) {
                identifiers.push(dto);
            }
        }
        for dto in self.absorbed.get(&sku).into_iter().flatten() {
            if keys.insert(id_key(dto)) {
                identifiers.push(dto.clone());
            }
        }
        let entity = VariantEntity {
            product_id,
            product_name,
            category,
            variant: VariantDto {
                sku: sku.clone(),
                name: v.name.clone(),
                identifiers,
                tax: v.tax.to_string(),
                unit: v.unit.as_str().to_owned(),
                channels: "all".to_owned(),
                open_price: false,
            },
        };
        index_entity(index, &entity)?;
        writes.push(hq::import::EntityWrite {
            kind: "variant".to_owned(),
            key: sku.clone(),
            payload: Some(serde_json::to_string(&entity)?),
            provenance: Some(provenance_json(&v.provenance(reads))),
        });
        for sp in &v.store_prices {
            let key = format!("{book}-{}|{sku}", sp.store);
            let target = payload("prices", &key)
                .and_then(|p| serde_json::from_str::<PricesEntity>(p).ok())
                .unwrap_or_else(|| PricesEntity {
                    book: format!("{book}-{}", sp.store),
                    version: 1,
                    scope: ScopeDto::Store {
                        store: sp.store.clone(),
                    },
                    currency: currency.clone(),
                    sku: sku.clone(),
                    entries: Vec::new(),
                });
            let entries = merge_entries(&target.entries, &sku, &sp.price.amount_string(), from)?
                .unwrap_or_else(|| target.entries.clone());
            let entity = PricesEntity { entries, ..target };
            writes.push(hq::import::EntityWrite {
                kind: "prices".to_owned(),
                key,
                payload: Some(serde_json::to_string(&entity)?),
                provenance: None,
            });
        }
        let Some(price) = v.price else {
            return Ok(writes);
        };
        let amount = price.amount_string();
        // The chain book in the chain's currency that already prices it, first by key.
        let held_book = self.price_keys(&sku).find_map(|(kind, key)| {
            payload(&kind, &key)
                .and_then(|p| serde_json::from_str::<PricesEntity>(p).ok())
                .filter(|p| p.currency == *currency && matches!(p.scope, ScopeDto::Chain(_)))
        });
        let target = held_book.unwrap_or_else(|| PricesEntity {
            book: book.clone(),
            version: 1,
            scope: ScopeDto::Chain("chain".to_owned()),
            currency: currency.clone(),
            sku: sku.clone(),
            entries: Vec::new(),
        });
        let entries = match merge_entries(&target.entries, &sku, &amount, from)? {
            Some(e) => e,
            None => target.entries.clone(),
        };
        let entity = PricesEntity { entries, ..target };
        writes.push(hq::import::EntityWrite {
            kind: "prices".to_owned(),
            key: format!("{}|{sku}", entity.book),
            payload: Some(serde_json::to_string(&entity)?),
            provenance: None,
        });
        Ok(writes)
    }
}

/// The provenance HQ keeps of a variant: one entry per source row, naming the fields taken
/// from it (`[{"source", "system", "file", "line", "legacy_id", "fields": [...]}]`).
fn provenance_json(all: &[canonical::Provenance]) -> String {
    let mut rows: Vec<(&canonical::Provenance, Vec<&str>)> = Vec::new();
    for p in all {
        let row = rows.iter_mut().find(|(r, _)| {
            (&r.source, &r.file, r.line, &r.legacy_id) == (&p.source, &p.file, p.line, &p.legacy_id)
        });
        match row {
            Some((_, fields)) => fields.push(&p.field),
            None => rows.push((p, vec![&p.field])),
        }
    }
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|(p, fields)| {
            serde_json::json!({
                "source": p.source, "system": p.system, "file": p.file, "line": p.line,
                "legacy_id": p.legacy_id, "fields": fields,
            })
        })
        .collect();
    Value::Array(rows).to_string()
}

/// Adds a variant entity to the check that HQ's catalog after the import builds.
fn index_entity(
    index: &mut domain::catalog::CatalogIndex,
    entity: &VariantEntity,
) -> anyhow::Result<()> {
    let variant = entity
        .variant
        .parse(&format!("variant {}", entity.variant.sku))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    domain::catalog::Product::check(&entity.product_id, &entity.product_name)
        .and_then(|()| index.add(&variant))
        .map_err(would_not_build)
}

/// Why HQ's catalog would not build after the import.
fn would_not_build(e: domain::catalog::CatalogError) -> anyhow::Error {
    anyhow::anyhow!(
        "the catalog after this import would not build: {e}; nothing was written (merge or \
         separate the variants in the review file, or fix the source files)"
    )
}

fn id_key(id: &IdentifierDto) -> String {
    match id {
        IdentifierDto::Gtin(g) => domain::Gtin::parse(g)
            .map(|g| format!("gtin:{}", g.to_gtin14()))
            .unwrap_or_else(|_| format!("gtin:{g}")),
        IdentifierDto::Plu(p) => format!("plu:{p}"),
        IdentifierDto::Legacy { system, id } => format!("legacy:{system}:{id}"),
    }
}

/// The opening counts as HQ takes them, in thousandths (a finer quantity is rounded half away
/// from zero, with a warning), each with its provenance.
fn count_writes(
    reads: &[SourceRead],
    catalog: &mut CanonicalCatalog,
) -> anyhow::Result<Vec<hq::import::CountWrite>> {
    use rust_decimal::prelude::ToPrimitive;
    let mut out = Vec::with_capacity(catalog.opening_counts.len());
    let mut problems = Vec::new();
    for c in &catalog.opening_counts {
        let p = c.provenance(reads);
        let problem = |severity, code, reason| import::Diagnostic {
            file: p.file.clone(),
            line: p.line,
            column: None,
            severity,
            code,
            reason,
        };
        let milli = c.quantity.checked_mul(Decimal::ONE_THOUSAND);
        let rounded = milli.map(|m| {
            m.round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        });
        let Some(value) = rounded.and_then(|r| r.to_i64()) else {
            problems.push(problem(
                Severity::Error,
                "count-invalid",
                format!(
                    "stock {} of `{}` at `{}` is out of range; not counted",
                    c.quantity, c.sku, c.location
                ),
            ));
            continue;
        };
        if rounded != milli {
            problems.push(problem(
                Severity::Warning,
                "count-rounded",
                format!(
                    "stock {} of `{}` at `{}` is counted as {} (to the thousandth)",
                    c.quantity,
                    c.sku,
                    c.location,
                    domain::quantity::format_signed_milli(value)
                ),
            ));
        }
        out.push(hq::import::CountWrite {
            location: c.location.clone(),
            sku: c.sku.to_string(),
            counted_milli: value,
            provenance: Some(
                serde_json::json!({
                    "source": p.source, "system": p.system, "file": p.file,
                    "line": p.line, "legacy_id": p.legacy_id,
                })
                .to_string(),
            ),
        });
    }
    catalog.diagnostics.extend(problems);
    Ok(out)
}

/// Why the import must not be committed as it stands: a source file that could not be read
/// (or lacks a column its rows cannot do without), fuzzy suggestions nobody decided (unless
/// `allow_undecided`), and, when HQ is known, locations that are not stores there and tax
/// categories no jurisdiction there has. Empty when it may be committed.
fn refusals(
    reads: &[SourceRead],
    outcome: &Outcome,
    plan: &PlanFile,
    known: Option<&hq::import::Known>,
    review_path: Option<&Path>,
    allow_undecided: bool,
) -> Vec<String> {
    let mut out = file_errors(reads);
    out.extend(unmatched_locations(reads, plan));
    let undecided = outcome.matching.suggestions.len();
    if undecided > 0 && !allow_undecided {
        out.push(match review_path {
            Some(p) => format!(
                "{undecided} fuzzy suggestions in {} are undecided: write `accept` or `reject` in their `decision` column, or pass --allow-undecided to keep them apart",
                p.display()
            ),
            None => format!(
                "{undecided} fuzzy suggestions are undecided: name a review file (--review, or `review` in the plan) and decide them, or pass --allow-undecided to keep them apart"
            ),
        });
    }
    let Some(known) = known else {
        return out;
    };
    let listed = |set: &std::collections::BTreeSet<String>| {
        if set.is_empty() {
            return "none".to_owned();
        }
        let mut names: Vec<&str> = set.iter().map(String::as_str).take(10).collect();
        if set.len() > names.len() {
            names.push("…");
        }
        names.join(", ")
    };
    for (legacy, location) in &plan.locations {
        if !known.locations.contains(location) {
            out.push(format!(
                "[locations] maps `{legacy}` to `{location}`, which is not a store at HQ (stores: {})",
                listed(&known.locations)
            ));
        }
    }
    let mut named: BTreeMap<String, String> = BTreeMap::new();
    for (name, category) in &plan.tax {
        named
            .entry(category.clone())
            .or_insert_with(|| format!("[tax] maps `{name}` to"));
    }
    if let Some(category) = &plan.default_tax {
        named
            .entry(category.clone())
            .or_insert_with(|| "default_tax names".to_owned());
    }
    if let Some(category) = &plan.untaxed {
        named
            .entry(category.clone())
            .or_insert_with(|| "untaxed names".to_owned());
    }
    for v in &outcome.catalog.variants {
        named
            .entry(v.tax.to_string())
            .or_insert_with(|| format!("variant `{}` has", v.sku));
    }
    for (category, named_by) in named {
        if !known.tax_categories.contains(&category) {
            out.push(format!(
                "{named_by} tax category `{category}`, which no jurisdiction at HQ has (categories: {})",
                listed(&known.tax_categories)
            ));
        }
    }
    out
}

/// `[locations]` entries that name a legacy location no source of the import has: a typo there
/// would leave that location's stock out without a word.
fn unmatched_locations(reads: &[SourceRead], plan: &PlanFile) -> Vec<String> {
    if plan.locations.is_empty() {
        return Vec::new();
    }
    let mut seen: std::collections::HashSet<(usize, std::sync::Arc<str>)> =
        std::collections::HashSet::new();
    for (s, r) in reads.iter().enumerate() {
        for item in &r.items {
            for st in &item.stock {
                seen.insert((s, st.location.clone()));
            }
            for lp in &item.location_prices {
                seen.insert((s, lp.location.clone()));
            }
        }
    }
    let mut names: Vec<String> = seen
        .iter()
        .filter_map(|(s, l)| reads.get(*s).map(|r| format!("{}/{l}", r.options.name)))
        .collect();
    names.sort_unstable();
    let matched = |key: &str| {
        seen.iter().any(|(s, l)| {
            &**l == key
                || reads.get(*s).is_some_and(|r| {
                    key.strip_prefix(r.options.name.as_str())
                        .and_then(|k| k.strip_prefix('/'))
                        == Some(&**l)
                })
        })
    };
    plan.locations
        .keys()
        .filter(|key| !matched(key))
        .map(|key| {
            format!(
                "[locations] names `{key}`, which is no stock or price location of any source (locations in the sources: {})",
                if names.is_empty() { "none".to_owned() } else { names.join(", ") }
            )
        })
        .collect()
}

fn write_opening_counts(
    path: &Path,
    reads: &[SourceRead],
    catalog: &CanonicalCatalog,
) -> anyhow::Result<()> {
    let mut w =
        csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    w.write_record(["location", "sku", "quantity", "source", "file", "line"])?;
    for c in &catalog.opening_counts {
        let p = c.provenance(reads);
        w.write_record([
            c.location.as_str(),
            c.sku.as_str(),
            &c.quantity.to_string(),
            &p.source,
            &p.file,
            &p.line.to_string(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

fn write_provenance(
    path: &Path,
    reads: &[SourceRead],
    catalog: &CanonicalCatalog,
) -> anyhow::Result<()> {
    let mut w =
        csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    w.write_record([
        "sku",
        "field",
        "source",
        "system",
        "file",
        "line",
        "legacy_id",
    ])?;
    for v in &catalog.variants {
        for p in &v.provenance(reads) {
            w.write_record([
                v.sku.as_str(),
                &p.field,
                &p.source,
                p.system,
                &p.file,
                &p.line.to_string(),
                p.legacy_id.as_deref().unwrap_or(""),
            ])?;
        }
    }
    w.flush()?;
    Ok(())
}

fn report_diagnostics(
    reads: &[SourceRead],
    extra: &[import::Diagnostic],
    inputs: &Inputs,
) -> anyhow::Result<()> {
    let all: Vec<&import::Diagnostic> = reads
        .iter()
        .flat_map(|r| r.diagnostics.iter())
        .chain(extra.iter())
        .collect();
    for d in all.iter().take(inputs.show) {
        eprintln!("{d}");
    }
    if all.len() > inputs.show {
        eprintln!("… and {} more", all.len() - inputs.show);
    }
    if let Some(path) = &inputs.diagnostics {
        let mut w = csv::Writer::from_path(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        w.write_record(["file", "line", "column", "severity", "code", "reason"])?;
        for d in &all {
            w.write_record([
                d.file.as_str(),
                &d.line.to_string(),
                d.column.as_deref().unwrap_or(""),
                d.severity.as_str(),
                d.code,
                &d.reason,
            ])?;
        }
        w.flush()?;
    }
    let mut counts: BTreeMap<(&str, &str, &str), usize> = BTreeMap::new();
    for d in &all {
        *counts
            .entry((d.file.as_str(), d.severity.as_str(), d.code))
            .or_default() += 1;
    }
    let mut t = table(&["file", "severity", "problem", "rows"]);
    for ((file, severity, code), n) in counts {
        t.add_row(vec![
            file.to_owned(),
            severity.to_owned(),
            code.to_owned(),
            n.to_string(),
        ]);
    }
    let errors = all.iter().filter(|d| d.severity == Severity::Error).count();
    println!("{t}");
    println!(
        "{} problems ({errors} errors, {} warnings)",
        all.len(),
        all.len() - errors
    );
    Ok(())
}
