//! `kassa price FILE`: prices a basket file with the domain engine and prints the receipt.

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
    /// Receipt width in characters (32 for 58 mm paper, 48 for 80 mm).
    #[arg(long, default_value_t = 42)]
    width: usize,
    /// Print the priced cart as JSON instead of a receipt.
    #[arg(long)]
    json: bool,
}

/// Runs `kassa price`.
pub fn run(args: &PriceArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let basket: BasketFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid basket file", args.file.display()))?;
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
        Some(s) => print!("{}", render(&header, &cart, &tenders, s, args.width)),
        None => {
            // Not paid yet: show what is due as if paid exactly by card (no cash rounding).
            let exact = domain::sale::Settlement {
                total: cart.total,
                cash_rounding: domain::Money::zero(currency),
                due: cart.total,
                tendered: domain::Money::zero(currency),
                change: domain::Money::zero(currency),
            };
            print!("{}", render(&header, &cart, &[], &exact, args.width));
        }
    }
    Ok(())
}
