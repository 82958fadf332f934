//! `kassa price FILE`: prices a basket file with the domain engine and prints the receipt.

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::{Context, bail};
use domain::presets;
use domain::receipt::{ReceiptHeader, render};
use domain::sale::{price_cart, settle};
use protocol::api::{BasketFile, CartView, parse_tenders};

/// Arguments of `kassa price`.
#[derive(Debug, clap::Args)]
pub struct PriceArgs {
    /// The basket file (JSON; see examples/basket-ch.json).
    file: PathBuf,
    /// Receipt width in characters (32 for 58 mm paper, 48 for 80 mm), from 20 to 200.
    #[arg(long, default_value_t = 42, value_parser = clap::value_parser!(u16).range(20..=200))]
    width: u16,
    /// Print the priced cart as JSON instead of a receipt.
    #[arg(long)]
    json: bool,
}

/// Runs `kassa price`.
pub fn run(args: &PriceArgs) -> anyhow::Result<()> {
    let width = usize::from(args.width);
    let text = read_basket(&args.file)?;
    let basket: BasketFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid basket file", args.file.display()))?;
    if basket.lines.is_empty() {
        // The store node refuses a sale without lines; a receipt of 0.00 would hide the mistake.
        bail!("lines: {}", domain::sale::SaleError::NoLines);
    }
    let Some(jurisdiction) = presets::jurisdiction(&basket.jurisdiction) else {
        bail!(
            "jurisdiction: `{}` is not one of {}",
            basket.jurisdiction,
            presets::CODES.join(", ")
        );
    };
    let currency = jurisdiction.currency();
    let lines = basket.lines(currency)?;
    let discount = basket
        .discount
        .as_ref()
        .map(|d| d.parse(currency, "discount"))
        .transpose()?;
    let at = match basket.at()? {
        Some(at) => at,
        None => domain::Timestamp::from_millis(jiff::Timestamp::now().as_millisecond()),
    };
    let cart = price_cart(&jurisdiction, &lines, discount, at)?;
    let tenders = parse_tenders(&basket.tenders, currency)?;
    let settlement = if tenders.is_empty() {
        None
    } else {
        Some(settle(&cart, &tenders, jurisdiction.cash_rounding())?)
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&CartView::new(&cart, settlement.as_ref()))?
        );
        return Ok(());
    }
    let when = jiff::Timestamp::from_millisecond(at.millis())?
        .strftime("%Y-%m-%d %H:%M UTC")
        .to_string();
    let header = ReceiptHeader {
        store_name: basket.store_name.clone().unwrap_or_else(|| "Kassa".into()),
        lines: vec![format!("Jurisdiction {}", jurisdiction.code())],
        receipt: "PREVIEW".into(),
        when,
    };
    match &settlement {
        Some(s) => print!("{}", render(&header, &cart, &tenders, s, width)),
        None => {
            // Not paid yet: show what is due as if paid exactly by card (no cash rounding).
            let exact = domain::sale::Settlement {
                total: cart.total,
                cash_rounding: domain::Money::zero(currency),
                due: cart.total,
                tendered: domain::Money::zero(currency),
                change: domain::Money::zero(currency),
            };
            print!("{}", render(&header, &cart, &[], &exact, width));
        }
    }
    Ok(())
}

/// The largest basket file read: a basket of a thousand lines is about 150 KiB, so this leaves
/// room for any real one while a wrong file (a log, a database) is refused before it is read
/// into memory.
const MAX_BASKET_BYTES: u64 = 1024 * 1024;

/// Reads a basket file of at most [`MAX_BASKET_BYTES`], as UTF-8 with or without a byte order
/// mark (editors on Windows write one; JSON parsers refuse it at "line 1 column 1").
fn read_basket(path: &std::path::Path) -> anyhow::Result<String> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_BASKET_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_BASKET_BYTES {
        bail!(
            "{} is larger than {} KiB, the limit for a basket file",
            path.display(),
            MAX_BASKET_BYTES / 1024
        );
    }
    let text = String::from_utf8(bytes)
        .map_err(|e| anyhow::anyhow!("{} is not UTF-8: {e}", path.display()))?;
    Ok(text
        .strip_prefix('\u{feff}')
        .map_or_else(|| text.clone(), str::to_owned))
}
