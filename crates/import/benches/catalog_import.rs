//! Catalog-migration benchmark: generates three realistic exports (Shopify, Square, Lightspeed
//! R-Series; 1,000,000 rows together by default) that share products under different SKUs,
//! with GTINs missing, destroyed by scientific notation or mistyped, and titles with typos;
//! then profiles, matches and builds the canonical catalog (the dry run), printing the time of
//! each step and the peak memory of the process.
//!
//! `cargo bench -p import --bench catalog_import -- [ROWS]`

use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use import::canonical::{self, CanonicalOptions};
use import::matching::{self, MatchOptions};
use import::review::Review;
use import::{Format, SourceOptions};

const BRANDS: [&str; 24] = [
    "Acme",
    "Nordlicht",
    "Bergmann",
    "Solano",
    "Kaffeehaus",
    "Verde",
    "Polaris",
    "Aurora",
    "Helvetia",
    "Lumen",
    "Brixton",
    "Cascade",
    "Dolomit",
    "Eiger",
    "Fjord",
    "Gala",
    "Harbor",
    "Isar",
    "Jura",
    "Kestrel",
    "Linden",
    "Montana",
    "Nova",
    "Orion",
];
const NOUNS: [&str; 32] = [
    "Tee",
    "Hoodie",
    "Mug",
    "Kettle",
    "Grinder",
    "Espresso Machine",
    "Beanie",
    "Scarf",
    "Backpack",
    "Water Bottle",
    "Notebook",
    "Pen",
    "Candle",
    "Tea Towel",
    "Apron",
    "Cap",
    "Socks",
    "Belt",
    "Wallet",
    "Umbrella",
    "Lamp",
    "Vase",
    "Chopping Board",
    "Knife",
    "Pan",
    "Coffee Beans",
    "Green Tea",
    "Chocolate Bar",
    "Olive Oil",
    "Honey",
    "Jam",
    "Biscuits",
];
const ADJECTIVES: [&str; 16] = [
    "Classic", "Organic", "Premium", "Slim", "Large", "Mini", "Vintage", "Deluxe", "Eco", "Sport",
    "Travel", "Heavy", "Soft", "Bright", "Dark", "Smooth",
];
const COLOURS: [&str; 6] = ["Black", "White", "Red", "Blue", "Green", "Grey"];
const SIZES: [&str; 4] = ["S", "M", "L", "XL"];

/// A small deterministic generator (SplitMix64), so every run builds the same files.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// A variant: options, GTIN, price in minor units.
type Variant = (Vec<(&'static str, &'static str)>, String, u64);

/// A product every source may carry: its variants share title and options.
struct Product {
    title: String,
    variants: Vec<Variant>,
}

fn gtin13(n: u64) -> String {
    let payload = format!("40{:010}", n % 10_000_000_000);
    let check = domain::barcode::gtin_check_digit(&payload).unwrap_or(0);
    format!("{payload}{check}")
}

fn products(count: usize, rng: &mut Rng) -> Vec<Product> {
    let mut out = Vec::with_capacity(count);
    let mut serial = 0_u64;
    for p in 0..count {
        let title = format!(
            "{} {} {} {}{}",
            rng.pick(&BRANDS),
            rng.pick(&ADJECTIVES),
            rng.pick(&NOUNS),
            ["X", "K", "Z", "Q"][p % 4],
            p
        );
        let shape = rng.below(10);
        let mut variants = Vec::new();
        if shape < 5 {
            serial += 1;
            variants.push((Vec::new(), gtin13(serial), 199 + rng.below(20_000)));
        } else {
            let colours = 1 + rng.below(2) as usize;
            let sizes = if shape < 8 { 2 } else { 3 };
            let price = 999 + rng.below(10_000);
            for c in 0..colours {
                for size in SIZES.iter().take(sizes) {
                    serial += 1;
                    variants.push((
                        vec![
                            ("Colour", COLOURS[(p + c) % COLOURS.len()]),
                            ("Size", *size),
                        ],
                        gtin13(serial),
                        price,
                    ));
                }
            }
        }
        out.push(Product { title, variants });
    }
    out
}

fn money(minor: u64, symbol: &str) -> String {
    let major = minor / 100;
    if major >= 1000 {
        format!(
            "{symbol}{},{:03}.{:02}",
            major / 1000,
            major % 1000,
            minor % 100
        )
    } else {
        format!("{symbol}{major}.{:02}", minor % 100)
    }
}

/// The barcode as a damaged export would carry it.
fn barcode(gtin: &str, rng: &mut Rng) -> String {
    match rng.below(100) {
        0..=5 => String::new(),
        6..=7 => {
            // What a spreadsheet does to a 13-digit number.
            let lead = &gtin[..1];
            let rest = &gtin[1..6];
            format!("{lead}.{rest}E+12")
        }
        8 => {
            let mut bad = gtin[..12].to_owned();
            let last = (gtin.as_bytes()[12] - b'0' + 1) % 10;
            bad.push(char::from(b'0' + last));
            bad
        }
        _ => gtin.to_owned(),
    }
}

fn typo(title: &str, rng: &mut Rng) -> String {
    if rng.below(20) != 0 {
        return title.to_owned();
    }
    // Drop one letter of the first word longer than four letters.
    let mut out = String::new();
    let mut done = false;
    for (i, word) in title.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if !done && word.len() > 4 && word.chars().all(char::is_alphabetic) {
            out.push_str(&word[..2]);
            out.push_str(&word[3..]);
            done = true;
        } else {
            out.push_str(word);
        }
    }
    out
}

fn write_files(dir: &Path, rows: usize) -> std::io::Result<[(Format, String); 3]> {
    let mut rng = Rng(7);
    // About 2.5 rows per product per source once images and variants are counted.
    let catalog = products(rows / 6, &mut rng);
    let shopify = dir.join("shopify.csv");
    let square = dir.join("square.csv");
    let lightspeed = dir.join("lightspeed.csv");
    let mut budget = [
        rows * 4 / 10,
        rows * 3 / 10,
        rows - rows * 4 / 10 - rows * 3 / 10,
    ];

    let mut w = BufWriter::new(std::fs::File::create(&shopify)?);
    writeln!(
        w,
        "Handle,Title,Body (HTML),Vendor,Type,Tags,Published,Option1 Name,Option1 Value,Option2 Name,Option2 Value,Variant SKU,Variant Grams,Variant Inventory Qty,Variant Price,Variant Compare At Price,Variant Taxable,Variant Barcode,Image Src,Cost per item,Status"
    )?;
    'shop: for (p, product) in catalog.iter().enumerate() {
        let handle = format!("product-{p}");
        for (v, (options, gtin, price)) in product.variants.iter().enumerate() {
            if budget[0] == 0 {
                break 'shop;
            }
            budget[0] -= 1;
            let (title, vendor, kind, body) = if v == 0 {
                let vendor = product.title.split(' ').next().unwrap_or("");
                (
                    product.title.as_str(),
                    vendor,
                    "Goods",
                    "\"<p>A fine product,\nmade well.</p>\"",
                )
            } else {
                ("", "", "", "")
            };
            let o = |i: usize| options.get(i).copied().unwrap_or(("", ""));
            let (n1, v1) = if v == 0 || options.is_empty() {
                o(0)
            } else {
                ("", o(0).1)
            };
            let (n2, v2) = if v == 0 || options.is_empty() {
                o(1)
            } else {
                ("", o(1).1)
            };
            let v1 = if options.is_empty() {
                "Default Title"
            } else {
                v1
            };
            let n1 = if options.is_empty() && v == 0 {
                "Title"
            } else {
                n1
            };
            writeln!(
                w,
                "{handle},{title},{body},{vendor},{kind},,TRUE,{n1},{v1},{n2},{v2},SH-{p}-{v},{},{},{}.{:02},,TRUE,{},https://cdn.example/{p}.jpg,{}.{:02},{}",
                100 + rng.below(900),
                rng.below(50),
                price / 100,
                price % 100,
                barcode(gtin, &mut rng),
                price / 250,
                price % 100,
                if v == 0 { "active" } else { "" }
            )?;
        }
        // An image-only continuation row now and then.
        if p % 5 == 0 && budget[0] > 0 {
            budget[0] -= 1;
            writeln!(
                w,
                "{handle},,,,,,,,,,,,,,,,,,https://cdn.example/{p}-2.jpg,,"
            )?;
        }
    }
    w.flush()?;

    let mut w = BufWriter::new(std::fs::File::create(&square)?);
    writeln!(
        w,
        "Token,Item Name,Variation Name,SKU,Description,Categories,GTIN,Price,Option Name 1,Option Value 1,Option Name 2,Option Value 2,Default Unit Cost,Archived,Sellable,Enabled Soho,Current Quantity Soho,Price Soho,Enabled Leeds,Current Quantity Leeds,Price Leeds,Tax - VAT (20%)"
    )?;
    // Square carries the products from a third of the way in, so sources overlap partly.
    let start = catalog.len() / 3;
    'square: for (p, product) in catalog
        .iter()
        .enumerate()
        .skip(start)
        .chain(catalog.iter().enumerate().take(start))
    {
        let title = typo(&product.title, &mut rng);
        for (v, (options, gtin, price)) in product.variants.iter().enumerate() {
            if budget[1] == 0 {
                break 'square;
            }
            budget[1] -= 1;
            let mut line = String::new();
            let o = |i: usize| options.get(i).copied().unwrap_or(("", ""));
            let variation = if options.is_empty() {
                "Regular".to_owned()
            } else {
                format!("{} {}", o(0).1, o(1).1)
            };
            // Square loses the GTIN more often, which leaves fuzzy matching to find it.
            let code = if rng.below(10) == 0 {
                String::new()
            } else {
                barcode(gtin, &mut rng)
            };
            let _ = write!(
                line,
                "SQ{p}V{v},{title},{variation},sq-{p}-{v},\"Line one\nline two 🎉\",Shop,{code},\"{}\",{},{},{},{},\"{}\",N,Y,Y,{},,Y,{},,Y",
                money(*price, "€"),
                o(0).0,
                o(0).1,
                o(1).0,
                o(1).1,
                money(price / 2, "€"),
                rng.below(20),
                rng.below(20),
            );
            writeln!(w, "{line}")?;
        }
    }
    w.flush()?;

    let mut w = BufWriter::new(std::fs::File::create(&lightspeed)?);
    writeln!(
        w,
        "System ID,UPC,EAN,Custom SKU,Manufact. SKU,Item,Qty.,Price,Tax,Brand,Default Cost,Vendor,Category,Subcategory 1"
    )?;
    let start = catalog.len() * 2 / 3;
    let mut id = 210_000_000_000_u64;
    'ls: for (p, product) in catalog
        .iter()
        .enumerate()
        .skip(start)
        .chain(catalog.iter().enumerate().take(start))
    {
        for (v, (options, gtin, price)) in product.variants.iter().enumerate() {
            if budget[2] == 0 {
                break 'ls;
            }
            budget[2] -= 1;
            id += 1;
            let values: Vec<&str> = options.iter().map(|(_, v)| *v).collect();
            let name = if values.is_empty() {
                product.title.clone()
            } else {
                format!("{} {}", product.title, values.join(" "))
            };
            // Every other product carries the Shopify SKU as its custom SKU: a SKU match.
            let custom = if p % 2 == 0 {
                format!("SH-{p}-{v}")
            } else {
                format!("LS{p}-{v}")
            };
            writeln!(
                w,
                "{id},,{},{custom},M{p},{name},{},€{}.{:02},Yes,{},{}.{:02}0000000,Vendor{},Shop,Sub",
                barcode(gtin, &mut rng),
                rng.below(30),
                price / 100,
                price % 100,
                name.split(' ').next().unwrap_or(""),
                price / 200,
                price % 100,
                p % 50,
            )?;
        }
    }
    w.flush()?;
    Ok([
        (Format::Shopify, shopify.display().to_string()),
        (Format::Square, square.display().to_string()),
        (Format::LightspeedR, lightspeed.display().to_string()),
    ])
}

fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

fn main() -> std::io::Result<()> {
    let rows: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("kassa-catalog-bench-{rows}"));
    std::fs::create_dir_all(&dir)?;
    let t = Instant::now();
    let files = write_files(&dir, rows)?;
    let bytes: u64 = files
        .iter()
        .filter_map(|(_, f)| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "generated {rows} rows in 3 files ({} MiB) in {:.1} s",
        bytes / (1 << 20),
        t.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    let mut reads = Vec::new();
    for (format, file) in &files {
        let name = format.as_str();
        let mut options = SourceOptions::new(name, file, *format);
        options.currency = domain::Currency::EUR;
        options.currency_declared = true;
        options.prices_include_tax = true;
        let input = std::fs::File::open(file)?;
        reads.push(import::read(input, &options, None));
    }
    let read_time = start.elapsed();
    let after_read = peak_rss_mib();
    let data_rows: u64 = reads.iter().map(|r| r.rows).sum();
    let items: usize = reads.iter().map(|r| r.items.len()).sum();
    let diagnostics: usize = reads.iter().map(|r| r.diagnostics.len()).sum();
    let t = Instant::now();
    let profile = import::profile::profile(&reads);
    let profile_time = t.elapsed();
    let t = Instant::now();
    let matched = matching::match_items(&reads, &Review::default(), MatchOptions::default());
    let match_time = t.elapsed();
    let after_match = peak_rss_mib();
    let t = Instant::now();
    let mut options = CanonicalOptions::default();
    options.tax_map.insert("VAT".into(), "standard".into());
    let catalog = canonical::build(&reads, &matched, &options)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let build_time = t.elapsed();
    let total = start.elapsed();
    println!(
        "read + normalise: {data_rows} rows, {items} variants, {diagnostics} diagnostics in {:.1} s",
        read_time.as_secs_f64()
    );
    println!(
        "profile: {:.1} s ({} GTINs and {} SKUs across sources)",
        profile_time.as_secs_f64(),
        profile.barcodes_across_sources,
        profile.skus_across_sources
    );
    println!(
        "match: {:.1} s ({} on GTIN, {} on SKU, {} pairs compared, {} suggestions, {} oversized blocks, {} conflicts)",
        match_time.as_secs_f64(),
        matched.stats.by_gtin,
        matched.stats.by_sku,
        matched.stats.compared,
        matched.suggestions.len(),
        matched.stats.oversized_blocks,
        matched.conflicts.len()
    );
    println!(
        "dry run (canonical catalog): {} variants, {} merged from several rows, {} opening counts in {:.1} s",
        catalog.variants.len(),
        catalog
            .variants
            .iter()
            .filter(|v| v.members.len() > 1)
            .count(),
        catalog.opening_counts.len(),
        build_time.as_secs_f64()
    );
    println!(
        "total {:.1} s (limit 60 s), peak memory {} MiB (limit 2048 MiB; {after_read} MiB after reading, {after_match} MiB after matching)",
        total.as_secs_f64(),
        peak_rss_mib()
    );
    Ok(())
}
