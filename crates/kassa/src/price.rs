//! `kassa price FILE`: prices a basket file with the domain engine and prints the receipt.

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::builder::TypedValueParser as _;
use domain::presets;
use domain::sale::{price_cart, settle};
use protocol::api::{BasketFile, CartView, parse_tenders};

/// Arguments of `kassa price`.
#[derive(Debug, clap::Args)]
pub struct PriceArgs {
    /// The basket file (JSON; see examples/basket-ch.json).
    file: PathBuf,
    /// Receipt width in characters: 32 for 58 mm paper, 48 for 80 mm, as the store node prints.
    #[arg(long, default_value_t = 48, value_parser = clap::builder::PossibleValuesParser::new(["32", "48"]).map(|w: String| if w == "32" { 32u16 } else { 48u16 }))]
    width: u16,
    /// Formatting conventions for money and dates (`de-CH`, `en-US`, `sv-SE`…); defaults to
    /// the jurisdiction's.
    #[arg(long)]
    locale: Option<String>,
    /// Print the priced cart as JSON instead of a receipt.
    #[arg(long)]
    json: bool,
}

/// The conventions a jurisdiction's receipts are printed in when none is asked for.
fn default_locale(jurisdiction: &str) -> &'static str {
    match jurisdiction {
        "AT" => "de-AT",
        "DE" => "de-DE",
        "CH" => "de-CH",
        "GB" => "en-GB",
        "US-NY-NYC" => "en-US",
        "SE" => "sv-SE",
        "DK" => "da-DK",
        "FR" => "fr-FR",
        "CA-QC" => "fr-CA",
        "CA-ON" => "en-CA",
        "JP" => "ja-JP",
        _ => "en",
    }
}

/// The UTC offset, in minutes, an RFC 3339 instant was written in (`+01:00` → 60, `Z` → 0):
/// the receipt shows the basket's own local time.
fn offset_minutes(text: &str) -> i32 {
    let t = text.trim();
    if t.ends_with('Z') || t.ends_with('z') || t.len() < 6 {
        return 0;
    }
    let tail = &t[t.len() - 6..];
    let sign = match tail.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return 0,
    };
    let hours = tail[1..3].parse::<i32>().unwrap_or(0);
    let minutes = tail[4..6].parse::<i32>().unwrap_or(0);
    sign * (hours * 60 + minutes)
}

/// Runs `kassa price`.
pub fn run(args: &PriceArgs) -> anyhow::Result<()> {
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
    // Not paid yet: show what is due as if paid exactly by card (no cash rounding).
    let settlement = settlement.unwrap_or(domain::sale::Settlement {
        total: cart.total,
        cash_rounding: domain::Money::zero(currency),
        due: cart.total,
        tendered: domain::Money::zero(currency),
        change: domain::Money::zero(currency),
    });
    // The store node's receipt, laid out by the same code (printer::receipt_document), in the
    // basket's time zone and the jurisdiction's conventions.
    let tag = args
        .locale
        .clone()
        .unwrap_or_else(|| default_locale(jurisdiction.code()).to_owned());
    let locale = printer::Locale::parse(&tag);
    let paper = if args.width == 32 {
        printer::Paper::Mm58
    } else {
        printer::Paper::Mm80
    };
    let mut layout = printer::Layout::new(paper, locale);
    layout.code = printer::ReceiptCode::None;
    layout.open_drawer = false;
    let data = printer::ReceiptData {
        store: printer::StoreHeader {
            name: basket.store_name.clone().unwrap_or_else(|| "Kassa".into()),
            address: vec![format!("Jurisdiction {}", jurisdiction.code())],
            tax_id: None,
            tax_registrations: basket
                .tax_registrations
                .iter()
                .map(|(code, number)| (code.clone(), number.clone()))
                .collect(),
        },
        number: "PREVIEW".into(),
        terminal: None,
        cashier: None,
        when: printer::LocalDateTime::from_timestamp(
            at,
            basket.at.as_deref().map_or(0, offset_minutes),
        ),
        body: printer::ReceiptBody::Sale(printer::SaleReceipt {
            cart,
            tenders,
            settlement,
        }),
        footer: Vec::new(),
        copy: false,
        fiscal: None,
    };
    let document = printer::receipt_document(&data, &layout, printer::Labels::for_tag(&tag))?;
    print!("{}", printer::render_text(&document));
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
