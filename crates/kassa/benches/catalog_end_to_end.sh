#!/usr/bin/env bash
# `kassa catalog` end to end, as a user runs it, at ROWS rows (default 1,000,000): profile, dry
# run, commit, the same import again, and rollback, each under `/usr/bin/time -v`, against an
# HQ on SQLite in a fresh directory. The three exports are the ones the import benchmark
# generates (Shopify, Square, Lightspeed R-Series sharing products under different SKUs).
#
#   cargo build --release -p kassa
#   crates/kassa/benches/catalog_end_to_end.sh 1000000
#
# Prints one line per step: wall-clock seconds and peak resident memory (MiB).
set -euo pipefail
ROWS=${1:-1000000}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
KASSA=${KASSA:-${CARGO_TARGET_DIR:-$ROOT/target}/release/kassa}
DATA=${TMPDIR:-/tmp}/kassa-catalog-bench-$ROWS
if [ ! -f "$DATA/lightspeed.csv" ]; then
    (cd "$ROOT" && cargo bench -p import --bench catalog_import -- "$ROWS" >&2)
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cat >"$WORK/seed.json" <<'JSON'
{"format": "kassa-seed/1",
 "jurisdictions": [{"code": "AT", "currency": "EUR", "pricing": "inclusive",
   "rounding": {"mode": "half-up", "level": "document"}, "cash_rounding": null,
   "rules": [
     {"category": "standard", "components": [{"code": "VAT", "rate": "20", "compound": false}], "from": null, "to": null},
     {"category": "zero", "components": [{"code": "VAT", "rate": "0", "compound": false}], "from": null, "to": null}]}],
 "stores": [
   {"id": "vienna-01", "name": "Wien", "address": "Mariahilfer Straße 1", "jurisdiction": "AT",
    "currency": "EUR", "locale": "de-AT", "timezone": "Europe/Vienna", "scale_layouts": []},
   {"id": "graz-01", "name": "Graz", "address": "Herrengasse 1", "jurisdiction": "AT",
    "currency": "EUR", "locale": "de-AT", "timezone": "Europe/Vienna", "scale_layouts": []}],
 "products": [], "pricebooks": []}
JSON
mkdir -p "$WORK/hq"
"$KASSA" hq --data "$WORK/hq" publish "$WORK/seed.json" >/dev/null
cat >"$WORK/plan.toml" <<TOML
currency = "EUR"
prices_include_tax = true
effective_from = "2026-12-01T00:00:00Z"
review = "review.csv"
title_precedence = ["shopify", "square", "lightspeed"]

[[source]]
name = "shopify"
file = "$DATA/shopify.csv"

[[source]]
name = "square"
file = "$DATA/square.csv"

[[source]]
name = "lightspeed"
file = "$DATA/lightspeed.csv"

[tax]
VAT = "standard"

[tax_rates]
standard = "20"
zero = "0"

[locations]
"shopify/default" = "vienna-01"
"square/Soho" = "vienna-01"
"square/Leeds" = "graz-01"
"lightspeed/default" = "graz-01"
TOML
step() {
    local name=$1
    shift
    /usr/bin/time -v "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || {
        echo "$name failed:" >&2
        tail -n 30 "$WORK/$name.err" >&2
        exit 1
    }
    local wall rss
    wall=$(grep 'Elapsed (wall clock)' "$WORK/$name.err" | awk '{print $NF}')
    rss=$(grep 'Maximum resident set size' "$WORK/$name.err" | awk '{print int($NF / 1024)}')
    printf '%-10s %10s  %6s MiB  %s\n' "$name" "$wall" "$rss" "$(grep -E '^took ' "$WORK/$name.out" || true)"
}
step profile "$KASSA" catalog profile --config "$WORK/plan.toml" --show 0
step dry-run "$KASSA" catalog import --config "$WORK/plan.toml" --data "$WORK/hq" --dry-run --allow-undecided --show 0
step commit "$KASSA" catalog import --config "$WORK/plan.toml" --data "$WORK/hq" --allow-undecided --show 0
step re-run "$KASSA" catalog import --config "$WORK/plan.toml" --data "$WORK/hq" --allow-undecided --show 0
batch=$(grep -o 'committed batch import-[0-9]*' "$WORK/commit.out" | awk '{print $3}')
step rollback "$KASSA" catalog rollback "$batch" --data "$WORK/hq"
du -sh "$WORK/hq" | awk '{print "HQ directory after the rollback: " $1}'
