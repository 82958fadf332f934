"""Generator for the Kassa demo reference data set (format `kassa-seed/1`).

It builds a small chain with stores in Austria (EUR, jurisdiction AT: Wien, Graz) and
Switzerland (CHF, jurisdiction CH: Zürich), about 300 products with German names, their
variants (SKUs, GTIN-13s, PLUs, legacy ids), the tax rules of both jurisdictions and the
price books. The output is deterministic: a fixed random seed and only the standard library,
so rerunning it gives a byte-identical file.

Regenerate from the repository root with:

    python3 data/demo/generate.py > data/demo/seed.json

The script checks its own output (GTIN check digits, unique SKUs and identifiers, prices for
every store-sold variant in both chain books, no overlapping price periods) and prints a
summary to stderr.
"""

import json
import random
import re
import sys
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal

SEED = 20260101
rng = random.Random(SEED)

FROM = "2026-01-01T00:00:00Z"
XMAS = "2026-12-01T00:00:00Z"

# --------------------------------------------------------------------------------------------
# GTINs
# --------------------------------------------------------------------------------------------


def gs1_check_digit(payload: str) -> int:
    """GS1 mod-10 check digit for a payload of digits (weights 3,1,3,... from the right)."""
    total = 0
    for i, ch in enumerate(reversed(payload)):
        total += int(ch) * (3 if i % 2 == 0 else 1)
    return (10 - total % 10) % 10


def gtin_is_valid(code: str) -> bool:
    """Independent check: the weighted sum over all digits, check digit included, is 0 mod 10."""
    if not re.fullmatch(r"\d{8}|\d{12}|\d{13}|\d{14}", code):
        return False
    total = sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(reversed(code)))
    return total % 10 == 0


# Brands whose products carry Swiss GS1 prefixes (760-769); every other brand is Austrian
# (900-919). These are demo numbers, not the brands' real GTINs.
SWISS_BRANDS = {
    "Emmi", "Appenzeller", "Le Gruyère", "Bell", "Rivella", "Henniez", "Feldschlösschen",
    "Ovomaltine", "Lindt", "Ricola", "Zweifel", "Kambly", "Thomy", "Diogenes", "Mammut",
    "Victorinox",
}

_brand_prefix: dict[str, str] = {}
_brand_next_item: dict[str, int] = {}
_used_company: set[str] = set()


def new_gtin(brand: str) -> str:
    """A GTIN-13: 3-digit GS1 prefix + 4-digit company number + 5-digit item + check digit."""
    if brand not in _brand_prefix:
        while True:
            if brand in SWISS_BRANDS:
                prefix = str(rng.randint(760, 769))
            else:
                prefix = str(rng.randint(900, 919))
            company = prefix + f"{rng.randint(1000, 9999)}"
            if company not in _used_company:
                break
        _used_company.add(company)
        _brand_prefix[brand] = company
        _brand_next_item[brand] = rng.randint(100, 900) * 10
    item = _brand_next_item[brand]
    _brand_next_item[brand] += rng.randint(1, 7)
    payload = _brand_prefix[brand] + f"{item:05d}"
    return payload + str(gs1_check_digit(payload))


# --------------------------------------------------------------------------------------------
# Catalog source lists
# --------------------------------------------------------------------------------------------
# Each grocery/drugstore/household row: (name, brand, size, EUR price, flags)
# flags: "plu" = bakery PLU (store PLU 10000 + number), "store"/"online" = channel,
#        "xmas" = Christmas price from 2026-12-01, "six:<pack size, _ for space>:<price>" = extra
#        multipack variant with two GTINs, "relaunch" = two GTINs (old and new packaging),
#        "nogtin" = no barcode.

BREAD = [
    ("Kaisersemmel", "Kassa Backstube", "1 Stück", "0.45", "plu store nogtin"),
    ("Kornspitz", "Kassa Backstube", "1 Stück", "0.79", "plu store nogtin"),
    ("Laugenbrezel", "Kassa Backstube", "1 Stück", "0.99", "plu nogtin"),
    ("Mohnflesserl", "Kassa Backstube", "1 Stück", "0.69", "plu nogtin"),
    ("Salzstangerl", "Kassa Backstube", "1 Stück", "0.59", "plu nogtin"),
    ("Vollkornweckerl", "Kassa Backstube", "1 Stück", "0.79", "plu nogtin"),
    ("Schwarzbrot", "Anker", "500 g", "2.79", ""),
    ("Roggenvollkornbrot", "Der Mann", "500 g", "3.19", ""),
    ("Dinkelbrot", "Ströck", "500 g", "3.99", ""),
    ("Toastbrot", "Kassa Basics", "500 g", "1.49", ""),
    ("Vollkorntoast", "Ölz", "500 g", "2.29", ""),
    ("Bauernbrot", "Ströck", "750 g", "3.49", "plu bauernbrot"),
    ("Kürbiskernbrot", "Anker", "500 g", "3.69", ""),
    ("Buttercroissant", "Kassa Backstube", "1 Stück", "1.19", "plu nogtin"),
    ("Topfengolatsche", "Kassa Backstube", "1 Stück", "1.89", "plu nogtin"),
    ("Apfelstrudel", "Kassa Backstube", "1 Stück", "2.49", "plu nogtin"),
    ("Christstollen", "Ölz", "750 g", "9.99", "xmas"),
    ("Milchbrot", "Ölz", "400 g", "2.99", ""),
    ("Knäckebrot Roggen", "Kassa Basics", "250 g", "1.79", ""),
    ("Zwieback", "Kassa Basics", "225 g", "1.69", ""),
]

DAIRY = [
    ("Vollmilch 3,5 %", "NÖM", "1 l", "1.49", ""),
    ("Leichtmilch 0,5 %", "NÖM", "1 l", "1.39", ""),
    ("Heumilch 3,5 %", "Schärdinger", "1 l", "1.69", ""),
    ("Bio-Vollmilch", "Ja! Natürlich", "1 l", "1.59", ""),
    ("Laktosefreie Milch 1,5 %", "Schärdinger", "1 l", "1.79", ""),
    ("Haltbarmilch 3,5 %", "Berglandmilch", "1 l", "1.29", ""),
    ("Schlagobers 36 %", "Schärdinger", "250 ml", "1.69", ""),
    ("Sauerrahm 15 %", "NÖM", "250 g", "1.09", ""),
    ("Topfen 20 %", "Schärdinger", "250 g", "1.29", ""),
    ("Teebutter", "Schärdinger", "250 g", "3.29", ""),
    ("Bio-Butter", "Ja! Natürlich", "250 g", "3.79", ""),
    ("Naturjoghurt 3,6 %", "NÖM", "500 g", "1.49", ""),
    ("Fruchtjoghurt Erdbeere", "NÖM", "180 g", "0.69", ""),
    ("Fruchtjoghurt Himbeere", "NÖM", "180 g", "0.69", ""),
    ("Fruchtjoghurt Pfirsich-Maracuja", "NÖM", "180 g", "0.69", ""),
    ("Fruchtjoghurt Heidelbeere", "NÖM", "180 g", "0.69", ""),
    ("Caffè Latte Macchiato", "Emmi", "230 ml", "1.99", ""),
    ("Caffè Latte Espresso", "Emmi", "230 ml", "1.99", ""),
    ("Emmentaler in Scheiben", "Emmi", "150 g", "2.79", ""),
    ("Gouda in Scheiben", "Schärdinger", "150 g", "2.19", ""),
    ("Appenzeller Käse würzig", "Appenzeller", "200 g", "4.49", ""),
    ("Le Gruyère AOP", "Le Gruyère", "200 g", "4.99", ""),
    ("Mozzarella", "Kassa Basics", "125 g", "0.99", ""),
    ("Frischkäse Natur", "Schärdinger", "200 g", "1.59", ""),
    ("Mascarpone", "Kassa Basics", "250 g", "2.29", ""),
    ("Freilandeier Größe M", "Toni's", "10 Stück", "3.99", ""),
    ("Bio-Eier", "Ja! Natürlich", "6 Stück", "2.99", ""),
    ("Kefir", "NÖM", "500 ml", "1.49", ""),
    ("Buttermilch", "Schärdinger", "500 ml", "0.99", ""),
    ("Milchreis Zimt", "Kassa Basics", "200 g", "0.89", ""),
    ("Schokopudding", "Kassa Basics", "4 x 125 g", "1.79", ""),
    ("Skyr Natur", "Ja! Natürlich", "450 g", "2.49", ""),
    ("Griechisches Joghurt 10 %", "Kassa Basics", "500 g", "2.29", ""),
    ("Kakaomilch", "NÖM", "500 ml", "1.39", ""),
    ("Hafer-Drink", "Kassa Basics", "1 l", "1.79", ""),
]

# Weighed produce: (name, brand, plu, EUR per kg)
PRODUCE_KG = [
    ("Bananen", "Kassa Markt", "4011", "1.99"),
    ("Bio-Bananen", "Ja! Natürlich", "94011", "2.49"),
    ("Äpfel Gala", "Kassa Markt", "4133", "2.49"),
    ("Äpfel Fuji", "Kassa Markt", "4131", "2.79"),
    ("Zitronen", "Kassa Markt", "4053", "2.99"),
    ("Orangen", "Kassa Markt", "4012", "1.99"),
    ("Weintrauben hell kernlos", "Kassa Markt", "4022", "4.99"),
    ("Weintrauben rot kernlos", "Kassa Markt", "4023", "4.99"),
    ("Roma-Paradeiser", "Kassa Markt", "4087", "3.49"),
    ("Rispenparadeiser", "Kassa Markt", "4664", "3.99"),
    ("Paprika rot", "Kassa Markt", "4088", "4.49"),
    ("Paprika grün", "Kassa Markt", "4065", "3.99"),
    ("Brokkoli", "Kassa Markt", "4060", "3.29"),
    ("Zucchini", "Kassa Markt", "4067", "2.69"),
    ("Ingwer", "Kassa Markt", "4612", "6.99"),
    ("Erdäpfel festkochend lose", "Kassa Markt", "11001", "1.49"),
    ("Zwiebeln gelb lose", "Kassa Markt", "11002", "1.29"),
    ("Karotten lose", "Kassa Markt", "11003", "1.39"),
    ("Champignons braun lose", "Kassa Markt", "11004", "7.99"),
]

PRODUCE = [
    ("Äpfel Jonagold", "Kassa Markt", "1 kg Beutel", "2.49", ""),
    ("Erdäpfel mehlig", "Kassa Markt", "2 kg", "2.99", ""),
    ("Karotten", "Kassa Markt", "1 kg", "1.29", ""),
    ("Zwiebeln", "Kassa Markt", "1 kg", "1.19", ""),
    ("Salatgurke", "Kassa Markt", "1 Stück", "0.79", ""),
    ("Eisbergsalat", "Kassa Markt", "1 Stück", "1.29", ""),
    ("Blattspinat", "Kassa Markt", "200 g", "1.99", ""),
    ("Rucola", "Kassa Markt", "125 g", "1.49", ""),
    ("Heidelbeeren", "Kassa Markt", "125 g", "2.49", ""),
    ("Erdbeeren", "Kassa Markt", "500 g", "3.99", ""),
    ("Himbeeren", "Kassa Markt", "125 g", "2.99", ""),
    ("Cherry-Paradeiser", "Kassa Markt", "250 g", "1.99", ""),
    ("Marillen", "Kassa Markt", "500 g", "3.49", ""),
    ("Avocado Hass", "Kassa Markt", "2 Stück", "2.99", ""),
]

# Counter items weighed at the deli, store only: (name, brand, plu, EUR per kg)
DELI_KG = [
    ("Bergkäse 6 Monate", "Kassa Feinkost", "11101", "24.90"),
    ("Emmentaler", "Kassa Feinkost", "11102", "18.90"),
    ("Gouda jung", "Kassa Feinkost", "11103", "13.90"),
    ("Extrawurst", "Kassa Feinkost", "11104", "12.90"),
    ("Leberkäse", "Kassa Feinkost", "11105", "11.90"),
    ("Beinschinken", "Kassa Feinkost", "11106", "22.90"),
    ("Salami Milano", "Kassa Feinkost", "11107", "27.90"),
    ("Tiroler Speck g.g.A.", "Kassa Feinkost", "11108", "29.90"),
]

DELI = [
    ("Schinken in Scheiben", "Wiesbauer", "100 g", "1.99", ""),
    ("Salami in Scheiben", "Wiesbauer", "80 g", "1.79", ""),
    ("Frankfurter Würstel", "Wiesbauer", "300 g", "3.49", ""),
    ("Käsekrainer", "Wiesbauer", "4 Stück", "3.99", ""),
    ("Putenbrust in Scheiben", "Kassa Basics", "100 g", "2.29", ""),
    ("Bündnerfleisch", "Bell", "100 g", "5.99", ""),
    ("Cervelat", "Bell", "2 Stück", "2.49", ""),
    ("Räucherlachs", "Kassa Feinkost", "100 g", "3.99", ""),
]

# Drinks: standard rate in Austria (only milk drinks get the reduced rate there).
DRINKS = [
    ("Römerquelle prickelnd", "Römerquelle", "1,5 l", "0.89", "six:6_x_1,5_l:4.99"),
    ("Vöslauer still", "Vöslauer", "1,5 l", "0.79", "six:6_x_1,5_l:4.49"),
    ("Henniez mild", "Henniez", "1,5 l", "0.99", ""),
    ("Almdudler Kräuterlimonade", "Almdudler", "1,5 l", "1.99", ""),
    ("Almdudler Kräuterlimonade", "Almdudler", "0,5 l", "1.29", ""),
    ("Rivella Rot", "Rivella", "1,5 l", "2.29", "six:6_x_1,5_l:12.99"),
    ("Rivella Blau", "Rivella", "1,5 l", "2.29", ""),
    ("Red Bull Energy Drink", "Red Bull", "250 ml", "1.49", "six:4_x_250_ml:5.49"),
    ("Apfelsaft naturtrüb", "Pfanner", "1 l", "1.99", ""),
    ("Orangensaft", "Rauch", "1 l", "2.49", ""),
    ("Multivitaminsaft", "Rauch", "1 l", "2.29", ""),
    ("Eistee Pfirsich", "Rauch", "1,5 l", "1.79", ""),
    ("Eistee Zitrone", "Rauch", "1,5 l", "1.79", ""),
    ("Cola", "Kassa Basics", "1,5 l", "0.99", ""),
    ("Cola Zero", "Kassa Basics", "1,5 l", "0.99", ""),
    ("Tonic Water", "Kassa Basics", "1 l", "1.29", ""),
    ("Holunderblütensirup", "D'arbo", "0,7 l", "3.49", ""),
    ("Himbeersirup", "D'arbo", "0,7 l", "3.29", ""),
    ("Ottakringer Helles", "Ottakringer", "0,5 l", "1.29", ""),
    ("Gösser Märzen", "Gösser", "0,5 l", "1.19", ""),
    ("Stiegl Goldbräu", "Stiegl", "0,5 l", "1.29", "six:6_x_0,5_l:6.99"),
    ("Zipfer Urtyp", "Zipfer", "0,5 l", "1.19", ""),
    ("Feldschlösschen Original", "Feldschlösschen", "0,5 l", "1.39", ""),
    ("Grüner Veltliner Federspiel", "Domäne Wachau", "0,75 l", "7.99", ""),
    ("Blaufränkisch Mittelburgenland", "Weingut Wellanschitz", "0,75 l", "8.99", ""),
    ("Zweigelt Classic", "Weingut Wellanschitz", "0,75 l", "6.99", ""),
    ("Gemischter Satz Wien", "Wieninger", "0,75 l", "9.49", ""),
    ("Schlumberger Sparkling Brut", "Schlumberger", "0,75 l", "11.99", "xmas"),
    ("Glühwein rot", "Kassa Basics", "1 l", "3.99", "xmas"),
    ("Kinderpunsch", "Kassa Basics", "1 l", "2.99", "xmas"),
    ("Zirbenschnaps", "Kassa Feinkost", "0,5 l", "14.99", ""),
    ("Williams-Birnenbrand", "Kassa Feinkost", "0,5 l", "19.99", ""),
    ("Kaffee Kalt Cappuccino", "Kassa Basics", "250 ml", "1.19", ""),
]

PANTRY = [
    ("Spaghetti", "Recheis", "500 g", "1.29", ""),
    ("Penne Rigate", "Recheis", "500 g", "1.29", ""),
    ("Eierspiralen", "Recheis", "500 g", "1.49", ""),
    ("Basmatireis", "Kassa Basics", "1 kg", "2.49", ""),
    ("Risottoreis", "Kassa Basics", "1 kg", "2.99", ""),
    ("Weizenmehl glatt", "Fini's Feinstes", "1 kg", "0.99", ""),
    ("Weizenmehl griffig", "Fini's Feinstes", "1 kg", "1.09", ""),
    ("Kristallzucker", "Wiener Zucker", "1 kg", "1.29", ""),
    ("Staubzucker", "Wiener Zucker", "500 g", "1.19", ""),
    ("Olivenöl extra vergine", "Kassa Feinkost", "0,75 l", "8.99", ""),
    ("Steirisches Kürbiskernöl g.g.A.", "Kassa Feinkost", "0,25 l", "6.99", ""),
    ("Sonnenblumenöl", "Kassa Basics", "1 l", "2.49", ""),
    ("Aceto Balsamico di Modena", "Kassa Feinkost", "0,5 l", "2.99", ""),
    ("Kaffee gemahlen Jubiläumsmischung", "Julius Meinl", "500 g", "6.99", ""),
    ("Kaffeebohnen Espresso", "Julius Meinl", "1 kg", "14.99", ""),
    ("Schwarztee Earl Grey", "Teekanne", "20 Beutel", "2.49", ""),
    ("Kräutertee Alpenkräuter", "Teekanne", "20 Beutel", "1.99", ""),
    ("Ovomaltine Pulver", "Ovomaltine", "500 g", "6.49", ""),
    ("Manner Schnitten Original", "Manner", "75 g", "1.29", "relaunch"),
    ("Mozartkugeln", "Mirabell", "200 g", "6.99", "xmas"),
    ("Lebkuchen glasiert", "Pirker", "200 g", "2.99", "xmas"),
    ("Vanillekipferl", "Kassa Backstube", "200 g", "4.49", "xmas"),
    ("Edelbitterschokolade 70 %", "Lindt", "100 g", "2.99", ""),
    ("Milchschokolade Alpenmilch", "Zotter", "70 g", "4.29", ""),
    ("Kräuterbonbons", "Ricola", "50 g", "1.99", ""),
    ("Paprika Chips", "Zweifel", "175 g", "3.49", ""),
    ("Salzstangen", "Soletti", "150 g", "1.49", ""),
    ("Butterfly Biscuits", "Kambly", "100 g", "3.29", ""),
    ("Mayonnaise", "Thomy", "265 g", "2.49", ""),
    ("Estragon Senf", "Mautner Markhof", "200 g", "1.29", ""),
    ("Paprika edelsüß", "Kotányi", "50 g", "1.79", ""),
    ("Pfeffer schwarz gemahlen", "Kotányi", "50 g", "2.29", ""),
    ("Haferflocken zart", "Kassa Basics", "500 g", "1.19", ""),
    ("Knuspermüsli Schoko", "Kassa Basics", "750 g", "3.49", ""),
    ("Haselnusscreme", "Kassa Basics", "400 g", "2.99", ""),
    ("Blütenhonig", "Kassa Feinkost", "500 g", "5.99", ""),
    ("Marillenkonfitüre", "D'arbo", "450 g", "3.49", ""),
    ("Thunfisch in Olivenöl", "Kassa Basics", "185 g", "2.29", ""),
    ("Sauerkraut", "Kassa Basics", "520 g", "1.39", ""),
    ("Rote Bohnen", "Kassa Basics", "400 g", "0.99", ""),
]

DRUGSTORE = [
    ("Zahnpasta Kräuter", "Kassa Care", "75 ml", "1.49", ""),
    ("Zahnbürste mittel", "Kassa Care", "1 Stück", "1.99", ""),
    ("Zahnseide gewachst", "Kassa Care", "50 m", "1.79", ""),
    ("Mundspülung", "Kassa Care", "500 ml", "2.99", ""),
    ("Duschgel Sport", "Kassa Care", "250 ml", "1.29", ""),
    ("Shampoo Repair", "Kassa Care", "300 ml", "2.49", ""),
    ("Spülung Repair", "Kassa Care", "200 ml", "2.49", ""),
    ("Deo Roller Sensitive", "Kassa Care", "50 ml", "1.99", ""),
    ("Deo Spray Fresh", "Kassa Care", "150 ml", "2.29", ""),
    ("Handcreme Ringelblume", "Kassa Care", "75 ml", "1.99", ""),
    ("Bodylotion", "Kassa Care", "400 ml", "3.49", ""),
    ("Gesichtscreme Tagespflege", "Kassa Care", "50 ml", "5.99", ""),
    ("Sonnencreme LSF 30", "Kassa Care", "200 ml", "7.99", ""),
    ("Lippenpflegestift", "Kassa Care", "4,8 g", "1.49", ""),
    ("Einwegrasierer", "Kassa Care", "4 Stück", "3.49", ""),
    ("Rasierschaum", "Kassa Care", "200 ml", "1.99", ""),
    ("Wattepads", "Kassa Care", "80 Stück", "0.99", ""),
    ("Wattestäbchen", "Kassa Care", "200 Stück", "1.19", ""),
    ("Taschentücher", "Kassa Care", "10 x 10 Stück", "1.49", ""),
    ("Toilettenpapier 3-lagig", "Kassa Care", "8 Rollen", "3.99", ""),
    ("Feuchttücher sensitiv", "Kassa Care", "80 Stück", "1.69", ""),
    ("Pflaster Strips", "Kassa Care", "20 Stück", "2.49", ""),
    ("Babywindeln Größe 4", "Kassa Care", "44 Stück", "9.99", ""),
    ("Tampons normal", "Kassa Care", "32 Stück", "2.49", "tax:reduced"),
    ("Binden normal", "Kassa Care", "16 Stück", "1.99", "tax:reduced"),
    ("Nagelfeile", "Kassa Care", "1 Stück", "1.29", ""),
    ("Haargummis", "Kassa Care", "10 Stück", "1.49", ""),
    ("Haarspray extra stark", "Kassa Care", "250 ml", "2.79", ""),
    ("Abschminktücher", "Kassa Care", "25 Stück", "2.19", ""),
    ("Fußcreme", "Kassa Care", "100 ml", "2.49", ""),
    ("Kondome", "Kassa Care", "12 Stück", "8.99", ""),
    ("Taschenmesser Spartan", "Victorinox", "1 Stück", "24.90", ""),
    ("Hustenbonbons Salbei", "Ricola", "75 g", "2.49", "tax:reduced"),
]

HOUSEHOLD = [
    ("Geschirrspülmittel Zitrone", "Kassa Home", "500 ml", "1.29", ""),
    ("Geschirrspültabs All-in-1", "Kassa Home", "40 Stück", "6.99", ""),
    ("Flüssigwaschmittel Color", "Kassa Home", "20 WL", "5.49", ""),
    ("Waschpulver Vollwaschmittel", "Kassa Home", "40 WL", "8.99", ""),
    ("Waschpulver Vorratspack", "Kassa Home", "100 WL", "19.99", "online"),
    ("Weichspüler Frühlingsfrische", "Kassa Home", "1 l", "2.49", ""),
    ("Allzweckreiniger", "Kassa Home", "1 l", "1.79", ""),
    ("Glasreiniger", "Kassa Home", "500 ml", "1.99", ""),
    ("WC-Reiniger Gel", "Kassa Home", "750 ml", "1.49", ""),
    ("Entkalker flüssig", "Kassa Home", "500 ml", "3.29", ""),
    ("Schwammtücher", "Kassa Home", "3 Stück", "1.49", ""),
    ("Küchenrolle", "Kassa Home", "4 Rollen", "2.99", ""),
    ("Müllbeutel mit Zugband", "Kassa Home", "35 l, 20 Stück", "2.29", ""),
    ("Alufolie", "Kassa Home", "30 m", "2.49", ""),
    ("Frischhaltefolie", "Kassa Home", "50 m", "1.99", ""),
    ("Backpapier Zuschnitte", "Kassa Home", "20 Stück", "1.79", ""),
    ("Gefrierbeutel", "Kassa Home", "3 l, 25 Stück", "1.49", ""),
    ("Teelichter", "Kassa Home", "50 Stück", "3.49", "xmas"),
    ("Adventkranzkerzen rot", "Kassa Home", "4 Stück", "4.99", "xmas"),
    ("Geschenkpapier Weihnachten", "Kassa Home", "2 m", "2.99", "xmas"),
    ("Batterien Mignon AA", "Varta", "8 Stück", "6.99", ""),
    ("Batterien Micro AAA", "Varta", "8 Stück", "6.99", ""),
    ("LED-Lampe E27 warmweiß", "Kassa Home", "9 W", "3.99", ""),
    ("Zündhölzer", "Kassa Home", "10 Schachteln", "1.29", ""),
    ("Stabfeuerzeug", "Kassa Home", "1 Stück", "2.99", ""),
    ("Wäscheklammern", "Kassa Home", "24 Stück", "1.99", ""),
    ("Mikrofasertücher", "Kassa Home", "3 Stück", "3.49", ""),
    ("Spülbürste", "Kassa Home", "1 Stück", "1.49", ""),
    ("Mehrwegtasche", "Kassa", "1 Stück", "0.99", "store"),
    ("Bügeleisen Dampf", "Kassa Home", "2400 W", "29.99", "online"),
]

# Books: (author, title, publisher, [(binding, EUR price, flags)])
BOOKS = [
    ("Stefan Zweig", "Schachnovelle", "Kassa Klassiker", [("Taschenbuch", "6.00", ""), ("Hardcover", "16.00", "online")]),
    ("Stefan Zweig", "Die Welt von Gestern", "Kassa Klassiker", [("Taschenbuch", "14.00", "")]),
    ("Franz Kafka", "Die Verwandlung", "Kassa Klassiker", [("Taschenbuch", "4.00", "")]),
    ("Franz Kafka", "Der Process", "Kassa Klassiker", [("Taschenbuch", "8.00", ""), ("Hardcover", "22.00", "online")]),
    ("Arthur Schnitzler", "Traumnovelle", "Kassa Klassiker", [("Taschenbuch", "5.00", "")]),
    ("Arthur Schnitzler", "Leutnant Gustl", "Kassa Klassiker", [("Taschenbuch", "4.00", "")]),
    ("Joseph Roth", "Radetzkymarsch", "Kassa Klassiker", [("Taschenbuch", "12.00", ""), ("Hardcover", "26.00", "")]),
    ("Robert Musil", "Die Verwirrungen des Zöglings Törleß", "Kassa Klassiker", [("Taschenbuch", "7.00", "")]),
    ("Johann Wolfgang von Goethe", "Faust. Der Tragödie erster Teil", "Kassa Klassiker", [("Taschenbuch", "5.00", "")]),
    ("Friedrich Schiller", "Die Räuber", "Kassa Klassiker", [("Taschenbuch", "4.00", "")]),
    ("Georg Büchner", "Woyzeck", "Kassa Klassiker", [("Taschenbuch", "4.00", "")]),
    ("Adalbert Stifter", "Bergkristall", "Kassa Klassiker", [("Taschenbuch", "5.00", "")]),
    ("Rainer Maria Rilke", "Briefe an einen jungen Dichter", "Kassa Klassiker", [("Taschenbuch", "6.00", "")]),
    ("Franz Grillparzer", "Der arme Spielmann", "Kassa Klassiker", [("Taschenbuch", "4.00", "")]),
    ("Johann Nestroy", "Der Talisman", "Kassa Klassiker", [("Taschenbuch", "5.00", "")]),
    ("Marie von Ebner-Eschenbach", "Krambambuli", "Kassa Klassiker", [("Taschenbuch", "4.00", "")]),
    ("Jeremias Gotthelf", "Die schwarze Spinne", "Diogenes", [("Taschenbuch", "10.00", "")]),
    ("Gottfried Keller", "Kleider machen Leute", "Diogenes", [("Taschenbuch", "9.00", "")]),
    ("Johanna Spyri", "Heidi", "Diogenes", [("Taschenbuch", "12.00", ""), ("Hardcover", "24.00", "")]),
    ("Theodor Fontane", "Effi Briest", "Kassa Klassiker", [("Taschenbuch", "8.00", "")]),
    ("Theodor Storm", "Der Schimmelreiter", "Kassa Klassiker", [("Taschenbuch", "5.00", "")]),
    ("Wilhelm Hauff", "Das kalte Herz", "Kassa Klassiker", [("Taschenbuch", "4.00", "")]),
    ("Heinrich von Kleist", "Michael Kohlhaas", "Kassa Klassiker", [("Taschenbuch", "5.00", "")]),
    ("Gotthold Ephraim Lessing", "Nathan der Weise", "Kassa Klassiker", [("Taschenbuch", "5.00", "")]),
    ("Kassa Redaktion", "Die echte Wiener Küche", "Kassa Verlag", [("Hardcover", "24.90", "")]),
    ("Kassa Redaktion", "Wanderführer Steiermark", "Kassa Verlag", [("Taschenbuch", "19.90", "")]),
]

# Flowers and plants: the only `reduced2` products (AT 13 %, CH 2.6 %).
FLOWERS = [
    ("Rosen rot", "Kassa Blumen", "Bund 10 Stück", "9.99", ""),
    ("Tulpen gemischt", "Kassa Blumen", "Bund 10 Stück", "4.99", ""),
    ("Sonnenblumen", "Kassa Blumen", "Bund 5 Stück", "5.99", ""),
    ("Gerbera", "Kassa Blumen", "Bund 7 Stück", "5.49", ""),
    ("Orchidee Phalaenopsis", "Kassa Blumen", "Topf 12 cm", "14.99", ""),
    ("Weihnachtsstern", "Kassa Blumen", "Topf 13 cm", "6.99", "xmas"),
]

COLOURS = {
    "BLU": "blau", "SWZ": "schwarz", "WEI": "weiß", "GRA": "grau", "ROT": "rot",
    "GRN": "grün", "BEI": "beige", "NAV": "marine",
}
TOPS = ["XS", "S", "M", "L", "XL", "XXL"]
# Clothing: (type code, name, brand, EUR price, sizes, colours)
CLOTHING = [
    ("TEE", "Basic T-Shirt Herren", "Kassa Wear", "9.99", TOPS, ["WEI", "SWZ", "NAV", "GRA"]),
    ("TEE", "Basic T-Shirt Damen", "Kassa Wear", "9.99", TOPS, ["WEI", "SWZ", "ROT"]),
    ("TEE", "Bio-Baumwoll-T-Shirt", "Kassa Wear", "14.99", TOPS, ["WEI", "GRN", "BEI"]),
    ("TEE", "Longsleeve Ringel", "Kassa Wear", "17.99", TOPS, ["NAV", "ROT"]),
    ("TEE", "T-Shirt V-Ausschnitt", "Kassa Wear", "12.99", TOPS, ["WEI", "GRA", "BLU"]),
    ("POL", "Poloshirt Piqué Herren", "Kassa Wear", "19.99", TOPS, ["NAV", "WEI", "GRN"]),
    ("POL", "Poloshirt Piqué Damen", "Kassa Wear", "19.99", TOPS, ["WEI", "ROT", "BLU"]),
    ("HEM", "Oxford-Hemd", "Kassa Wear", "29.99", TOPS, ["BLU", "WEI"]),
    ("HEM", "Flanellhemd kariert", "Kassa Wear", "24.99", TOPS, ["ROT", "GRN"]),
    ("PUL", "Strickpullover Merino", "Kassa Wear", "49.99", TOPS, ["GRA", "NAV", "BEI"]),
    ("PUL", "Kapuzenpullover", "Kassa Wear", "34.99", TOPS, ["GRA", "SWZ", "GRN"]),
    ("PUL", "Sweatshirt Rundhals", "Kassa Wear", "24.99", TOPS, ["GRA", "NAV"]),
    ("HOS", "Jeans Slim Fit", "Kassa Wear", "39.99", ["30", "32", "34", "36"], ["BLU", "SWZ"]),
    ("HOS", "Chino", "Kassa Wear", "34.99", ["30", "32", "34", "36"], ["BEI", "NAV"]),
    ("HOS", "Jogginghose", "Kassa Wear", "19.99", TOPS, ["GRA", "SWZ"]),
    ("HOS", "Leggings", "Kassa Wear", "12.99", ["XS", "S", "M", "L", "XL"], ["SWZ", "NAV"]),
    ("JAC", "Softshelljacke", "Mammut", "119.00", TOPS, ["SWZ", "ROT"]),
    ("JAC", "Daunenjacke leicht", "Mammut", "179.00", TOPS, ["SWZ", "NAV"]),
    ("JAC", "Regenjacke", "Kassa Wear", "49.99", TOPS, ["GRN", "GRA", "ROT"]),
    ("SOC", "Sneakersocken 3er-Pack", "Kassa Wear", "7.99", ["3538", "3942", "4346"], ["WEI", "SWZ"]),
    ("SOC", "Wollsocken", "Kassa Wear", "9.99", ["3538", "3942", "4346"], ["GRA", "ROT"]),
    ("SOC", "Business-Socken 5er-Pack", "Kassa Wear", "12.99", ["3942", "4346"], ["SWZ", "NAV"]),
    ("ACC", "Strickmütze", "Kassa Wear", "14.99", ["OS"], ["SWZ", "ROT", "GRA", "NAV", "GRN"]),
    ("ACC", "Schal Wolle", "Kassa Wear", "19.99", ["OS"], ["GRA", "ROT", "BEI"]),
    ("ACC", "Fleece-Handschuhe", "Kassa Wear", "9.99", ["S", "M", "L"], ["SWZ", "GRA"]),
    ("ACC", "Baseballkappe", "Kassa Wear", "12.99", ["OS"], ["NAV", "SWZ", "BEI"]),
    ("TRA", "Dirndlbluse", "Tostmann", "49.90", ["34", "36", "38", "40", "42"], ["WEI"]),
    ("TRA", "Dirndl Midi", "Tostmann", "189.00", ["34", "36", "38", "40", "42"], ["GRN", "BLU"]),
    ("TRA", "Lederhose kurz", "Tostmann", "249.00", ["46", "48", "50", "52", "54"], ["BEI"]),
    ("TRA", "Trachtenjanker Loden", "Tostmann", "229.00", ["46", "48", "50", "52"], ["GRA", "GRN"]),
]

# --------------------------------------------------------------------------------------------
# Build products
# --------------------------------------------------------------------------------------------

products = []
price_eur: dict[str, Decimal] = {}  # regular chain EUR price per SKU
christmas: set[str] = set()
channels_of: dict[str, str] = {}
face_value: set[str] = set()  # vouchers: the CHF price is the face value


def variant(sku, name, identifiers, tax, unit="each", channels="all"):
    channels_of[sku] = channels
    return {
        "sku": sku,
        "name": name,
        "identifiers": identifiers,
        "tax": tax,
        "unit": unit,
        "channels": channels,
    }


def add_rows(dept, sub, rows, tax):
    for n, (name, brand, size, price, flags) in enumerate(rows, start=1):
        flags = flags.split()
        code = f"{dept}-{sub}-{n:04d}"
        row_tax = tax
        channels = "all"
        ids = []
        for f in flags:
            if f.startswith("tax:"):
                row_tax = f[4:]
            if f in ("store", "online"):
                channels = f
        if "nogtin" not in flags:
            ids.append({"gtin": new_gtin(brand)})
            if "relaunch" in flags:
                ids.append({"gtin": new_gtin(brand)})
        if "plu" in flags:
            ids.append({"plu": str(10000 + n)})
        if "bauernbrot" in flags:
            ids.append({"legacy": {"system": "shopify", "id": "1234"}})
        variants = [variant(code, f"{name} {size}", ids, row_tax, channels=channels)]
        price_eur[code] = Decimal(price)
        if "xmas" in flags:
            christmas.add(code)
        for f in flags:
            if f.startswith("six:"):
                _, pack, pack_price = f.split(":")
                pack = pack.replace("_", " ")
                psku = f"{code}-{pack.split()[0]}ER"
                pids = [{"gtin": new_gtin(brand)}, {"gtin": new_gtin(brand)}]
                variants.append(variant(psku, f"{name} {pack}", pids, row_tax))
                price_eur[psku] = Decimal(pack_price)
        products.append({"id": code.lower(), "name": name, "brand": brand, "variants": variants})


def add_weighed(dept, sub, rows, channels, suffix):
    for n, (name, brand, plu, price) in enumerate(rows, start=1):
        code = f"{dept}-{sub}-{n:04d}"
        vname = name if name.endswith(suffix) else f"{name} {suffix}"
        v = variant(code, vname, [{"plu": plu}], "reduced", unit="kg", channels=channels)
        price_eur[code] = Decimal(price)
        products.append({"id": code.lower(), "name": name, "brand": brand, "variants": [v]})


add_rows("GRO", "BRD", BREAD, "reduced")
add_rows("GRO", "DAI", DAIRY, "reduced")
add_weighed("GRO", "FRU", PRODUCE_KG, "all", "lose")
add_rows("GRO", "VEG", PRODUCE, "reduced")
add_weighed("GRO", "DEL", DELI_KG, "store", "vom Stück")
add_rows("GRO", "MEA", DELI, "reduced")
add_rows("GRO", "DRK", DRINKS, "standard")
add_rows("GRO", "PAN", PANTRY, "reduced")
add_rows("DRG", "BOD", DRUGSTORE, "standard")
add_rows("HOU", "GEN", HOUSEHOLD, "standard")
add_rows("FLO", "PLA", FLOWERS, "reduced2")

for n, (author, title, publisher, bindings) in enumerate(BOOKS, start=1):
    code = f"BOO-BOK-{n:04d}"
    variants = []
    for binding, price, flags in bindings:
        sku = f"{code}-{'TB' if binding == 'Taschenbuch' else 'HC'}"
        channels = "online" if "online" in flags else "all"
        variants.append(variant(sku, f"{title} ({binding})", [{"gtin": new_gtin(publisher)}],
                                "reduced", channels=channels))
        price_eur[sku] = Decimal(price)
    products.append({"id": code.lower(), "name": f"{author}: {title}", "brand": publisher,
                     "variants": variants})

clo_counter: Counter = Counter()
for typ, name, brand, price, sizes, colours in CLOTHING:
    clo_counter[typ] += 1
    code = f"CLO-{typ}-{clo_counter[typ]:04d}"
    combos = [(s, c) for c in colours for s in sizes]
    count = min(len(combos), rng.randint(2, 6))
    picked = sorted(rng.sample(range(len(combos)), count))
    variants = []
    for i in picked:
        size, col = combos[i]
        sku = f"{code}-{size}-{col}"
        size_text = {"OS": "Einheitsgröße", "3538": "35-38", "3942": "39-42", "4346": "43-46"}.get(size, size)
        channels = "online" if size == "XXL" else "all"
        variants.append(variant(sku, f"{name} {size_text} {COLOURS[col]}",
                                [{"gtin": new_gtin(brand)}], "standard", channels=channels))
        price_eur[sku] = Decimal(price)
    products.append({"id": code.lower(), "name": name, "brand": brand, "variants": variants})

# Gift vouchers (not taxed when sold; the `zero` category).
variants = []
for face in (10, 25, 50):
    sku = f"GIF-VOU-0001-{face}"
    variants.append(variant(sku, f"Geschenkgutschein {face}", [{"gtin": new_gtin("Kassa")}], "zero"))
    price_eur[sku] = Decimal(face).quantize(Decimal("0.01"))
    face_value.add(sku)
products.append({"id": "gif-vou-0001", "name": "Geschenkgutschein", "brand": "Kassa",
                 "variants": variants})

all_variants = [v for p in products for v in p["variants"]]

# Legacy ids from the systems the chain used before: the web shop (shopify) for variants sold
# online, the old till (lightspeed-r) for variants sold in stores.
taken_legacy = {("shopify", "1234")}
candidates = [v for v in all_variants if not any("legacy" in i for i in v["identifiers"])]
for v in rng.sample(candidates, 18):
    system = "shopify" if v["channels"] in ("all", "online") and rng.random() < 0.6 else "lightspeed-r"
    while True:
        lid = str(rng.randint(1000, 99999)) if system == "shopify" else f"LS-{rng.randint(100000, 999999)}"
        if (system, lid) not in taken_legacy:
            break
    taken_legacy.add((system, lid))
    v["identifiers"].append({"legacy": {"system": system, "id": lid}})

# --------------------------------------------------------------------------------------------
# Prices
# --------------------------------------------------------------------------------------------

CENT = Decimal("0.01")
FIVE = Decimal("0.05")


def money(d: Decimal) -> str:
    return str(d.quantize(CENT, rounding=ROUND_HALF_UP))


def chf_for(sku: str, eur: Decimal) -> Decimal:
    if sku in face_value:
        return eur
    raw = eur * Decimal("1.05")
    if rng.random() < 0.12:
        # Not a multiple of 0.05, so cash rounding matters.
        p = raw.quantize(CENT, rounding=ROUND_HALF_UP)
        if p % FIVE == 0:
            p += Decimal("0.02")
        return p
    p = (raw / FIVE).quantize(Decimal("1"), rounding=ROUND_HALF_UP) * FIVE
    return max(p, FIVE)


def promo(eur: Decimal) -> Decimal:
    """About 20 % off, ending in 9 cents."""
    p = (eur * Decimal("0.8")).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP) - CENT
    return p if p > 0 else eur


eur_entries, chf_entries = [], []
for v in all_variants:
    sku = v["sku"]
    eur = price_eur[sku]
    if sku in christmas:
        eur_entries.append({"sku": sku, "price": money(eur), "from": FROM, "to": XMAS})
        eur_entries.append({"sku": sku, "price": money(promo(eur)), "from": XMAS, "to": None})
    else:
        eur_entries.append({"sku": sku, "price": money(eur), "from": FROM, "to": None})
    # Online-only variants: every other one is not offered in the Swiss web shop.
    if v["channels"] == "online" and rng.random() < 0.5:
        continue
    chf_entries.append({"sku": sku, "price": money(chf_for(sku, eur)), "from": FROM, "to": None})

# Graz store overrides: bananas plus 19 other store-sold, non-seasonal SKUs.
BANANA = next(v["sku"] for v in all_variants if {"plu": "4011"} in v["identifiers"])
pool = [v["sku"] for v in all_variants
        if v["channels"] in ("all", "store") and v["sku"] not in christmas
        and v["sku"] not in face_value and v["sku"] != BANANA]
graz_skus = [BANANA] + rng.sample(pool, 19)
graz_entries = []
for sku in sorted(graz_skus, key=[v["sku"] for v in all_variants].index):
    base = price_eur[sku]
    if sku == BANANA:
        new = Decimal("1.89")
    else:
        steps = ["-0.30", "-0.20", "-0.10", "0.10", "0.20"] if base < 20 else ["-2.00", "-1.00", "1.00"]
        new = base + Decimal(rng.choice(steps))
        if new <= Decimal("0.10"):
            new = base + Decimal("0.10")
    graz_entries.append({"sku": sku, "price": money(new), "from": FROM, "to": None})

# --------------------------------------------------------------------------------------------
# Document
# --------------------------------------------------------------------------------------------


def rule(category, rate):
    comps = [] if rate is None else [{"code": "VAT", "rate": rate, "compound": False}]
    return {"category": category, "components": comps, "from": None, "to": None}


LAYOUTS = [
    {"prefixes": ["21", "22"], "item_start": 2, "item_len": 5, "value_start": 7, "value_len": 5,
     "kind": "weight", "price_check_digit_at": None},
    {"prefixes": ["23"], "item_start": 2, "item_len": 5, "value_start": 7, "value_len": 5,
     "kind": "price", "price_check_digit_at": None},
]


# Plausible VAT numbers (their check digits are right): receipts print the seller's.
TAX_IDS = {"vienna-01": "ATU13572463", "graz-01": "ATU24681351",
           "zurich-01": "CHE-116.348.254 MWST"}

# Department keys: open-price items whose price the cashier types at the till (sundries at the
# standard and the reduced rate). Added last, so that nothing generated before them changes.
DEPARTMENTS = [variant("MIS-DEP-0001-STD", "Diverses Normalsatz", [{"plu": "9920"}], "standard"),
               variant("MIS-DEP-0001-RED", "Diverses ermäßigt", [{"plu": "9910"}], "reduced")]
for v in DEPARTMENTS:
    v["open_price"] = True
products.append({"id": "mis-dep-0001", "name": "Diverses", "brand": "Kassa",
                 "variants": DEPARTMENTS})


def store(sid, name, address, jur, currency, locale, tz):
    return {"id": sid, "name": name, "address": address, "jurisdiction": jur,
            "currency": currency, "locale": locale, "timezone": tz,
            "scale_layouts": json.loads(json.dumps(LAYOUTS)), "tax_id": TAX_IDS[sid]}


seed = {
    "format": "kassa-seed/1",
    "jurisdictions": [
        {"code": "AT", "currency": "EUR", "pricing": "inclusive",
         "rounding": {"mode": "half-up", "level": "document"}, "cash_rounding": None,
         "rules": [rule("standard", "20"), rule("reduced", "10"), rule("reduced2", "13"),
                   rule("zero", "0"), rule("exempt", None)]},
        {"code": "CH", "currency": "CHF", "pricing": "inclusive",
         "rounding": {"mode": "half-up", "level": "document"}, "cash_rounding": "0.05",
         "rules": [rule("standard", "8.1"), rule("reduced", "2.6"), rule("reduced2", "2.6"),
                   rule("lodging", "3.8"), rule("zero", "0"), rule("exempt", None)]},
    ],
    "stores": [
        store("vienna-01", "Kassa Wien Mariahilf", "Mariahilfer Straße 77, 1060 Wien", "AT",
              "EUR", "de-AT", "Europe/Vienna"),
        store("graz-01", "Kassa Graz Herrengasse", "Herrengasse 9, 8010 Graz", "AT", "EUR",
              "de-AT", "Europe/Vienna"),
        store("zurich-01", "Kassa Zürich HB", "Bahnhofplatz 15, 8001 Zürich", "CH", "CHF",
              "de-CH", "Europe/Zurich"),
    ],
    "products": products,
    "pricebooks": [
        {"id": "chain-eur", "version": 1, "scope": "chain", "currency": "EUR", "entries": eur_entries},
        {"id": "chain-chf", "version": 1, "scope": "chain", "currency": "CHF", "entries": chf_entries},
        {"id": "graz-01", "version": 1, "scope": {"store": "graz-01"}, "currency": "EUR",
         "entries": graz_entries},
    ],
    # Demo staff. PINs in clear are for this demo file only: `kassa store seed` and
    # `kassa hq publish` hash them (argon2id, salted and peppered) and keep nothing else.
    "staff": [
        {"id": "anna", "name": "Anna Berger", "role": "cashier", "pin": "1111"},
        {"id": "sven", "name": "Sven Huber", "role": "supervisor", "pin": "2222"},
        {"id": "maria", "name": "Maria Gruber", "role": "manager", "pin": "3333"},
        {"id": "admin", "name": "Till Admin", "role": "admin", "pin": "9999"},
    ],
}

# Quick keys on the tills' selling screens: a page (tab) per counter, in the counter's colour.
def quick_page(label, prefixes, colour, limit=24):
    keys = [{"sku": v["sku"], "colour": colour}
            for p in products for v in p["variants"]
            if v["sku"].startswith(prefixes) and v["channels"] != "online"][:limit]
    return {"label": label, "keys": keys}


QUICK_KEYS = [
    quick_page("Gebäck", ("GRO-BRD-",), "#f6d7a7"),
    quick_page("Diverses", ("MIS-DEP-",), "#e0e0e0"),
    quick_page("Obst & Gemüse", ("GRO-FRU-", "GRO-VEG-"), "#c5e1a5"),
    quick_page("Feinkost", ("GRO-DEL-", "GRO-MEA-"), "#f8bbd0"),
    quick_page("Getränke", ("GRO-DRK-",), "#90caf9"),
]
for s in seed["stores"]:
    s["quick_keys"] = json.loads(json.dumps(QUICK_KEYS))

# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------

SKU_RE = re.compile(r"[A-Za-z0-9\-_./]{1,64}")
CAT_RE = re.compile(r"[a-z0-9_-]{1,32}")
ID_RE = re.compile(r"[a-z0-9-]+")
PRICE_RE = re.compile(r"\d+\.\d{2}")

cats = {j["code"]: {r["category"] for r in j["rules"]} for j in seed["jurisdictions"]}
skus, seen_ids, product_ids = set(), {}, set()
for p in products:
    assert ID_RE.fullmatch(p["id"]), p["id"]
    assert p["id"] not in product_ids, p["id"]
    product_ids.add(p["id"])
    assert p["variants"], p["id"]
    if p["id"].startswith("clo-"):
        assert 2 <= len(p["variants"]) <= 6, p["id"]
    for v in p["variants"]:
        assert SKU_RE.fullmatch(v["sku"]) and not v["sku"].isdigit(), v["sku"]
        assert v["sku"] not in skus, f"duplicate sku {v['sku']}"
        skus.add(v["sku"])
        assert CAT_RE.fullmatch(v["tax"]), v["tax"]
        assert all(v["tax"] in c for c in cats.values()), v["tax"]
        assert v["unit"] in ("each", "kg"), v["unit"]
        assert v["channels"] in ("all", "store", "online"), v["channels"]
        for ident in v["identifiers"]:
            (kind, val), = ident.items()
            if kind == "gtin":
                assert gtin_is_valid(val) and len(val) == 13, val
                assert int(val[:3]) in range(900, 920) or int(val[:3]) in range(760, 770), val
                key = "gtin:" + val.zfill(14)
            elif kind == "plu":
                assert re.fullmatch(r"[1-9]\d{0,5}", val), val
                key = "plu:" + val.lstrip("0")
            else:
                assert kind == "legacy" and val["system"] and val["id"], ident
                key = f"legacy:{val['system']}:{val['id']}"
            assert key not in seen_ids, f"{key} on {seen_ids.get(key)} and {v['sku']}"
            seen_ids[key] = v["sku"]
        if v["unit"] == "kg":
            kinds = [next(iter(i)) for i in v["identifiers"]]
            assert "gtin" not in kinds and kinds.count("plu") == 1, v["sku"]
            plu = next(i["plu"] for i in v["identifiers"] if "plu" in i)
            assert len(plu) <= 5, plu  # fits the 5-digit item reference of the scale layouts

for book in seed["pricebooks"]:
    periods: dict[str, list] = {}
    for e in book["entries"]:
        assert e["sku"] in skus, e["sku"]
        assert PRICE_RE.fullmatch(e["price"]) and Decimal(e["price"]) > 0, e
        periods.setdefault(e["sku"], []).append((e["from"], e["to"]))
    for sku, ps in periods.items():
        ps.sort()
        for (f1, t1), (f2, _t2) in zip(ps, ps[1:]):
            assert t1 is not None and t1 <= f2, f"overlapping prices for {sku} in {book['id']}"
priced = {b["id"]: {e["sku"] for e in b["entries"]} for b in seed["pricebooks"]}
for v in all_variants:
    if v["channels"] in ("all", "store"):
        assert v["sku"] in priced["chain-eur"] and v["sku"] in priced["chain-chf"], v["sku"]
    else:
        assert v["sku"] in priced["chain-eur"], v["sku"]
chf_prices = [Decimal(e["price"]) for e in chf_entries]
assert any(p % FIVE for p in chf_prices), "some CHF prices must need cash rounding"
assert len(christmas) >= 10 and 15 <= len(graz_entries) <= 25

# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------

sys.stdout.buffer.write((json.dumps(seed, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))

dept_names = {"GRO": "groceries", "DRG": "drugstore", "HOU": "household", "BOO": "books",
              "CLO": "clothing", "FLO": "flowers", "GIF": "vouchers", "MIS": "departments"}
by_dept_p = Counter(dept_names[p["id"][:3].upper()] for p in products)
by_dept_v = Counter(dept_names[v["sku"][:3]] for v in all_variants)
out = sys.stderr
print(f"products: {len(products)}, variants: {len(all_variants)}", file=out)
for d in dept_names.values():
    print(f"  {d:10} {by_dept_p[d]:4} products {by_dept_v[d]:4} variants", file=out)
print("by unit: " + ", ".join(f"{k} {n}" for k, n in sorted(Counter(v['unit'] for v in all_variants).items())), file=out)
print("by tax: " + ", ".join(f"{k} {n}" for k, n in sorted(Counter(v['tax'] for v in all_variants).items())), file=out)
print("by channel: " + ", ".join(f"{k} {n}" for k, n in sorted(Counter(v['channels'] for v in all_variants).items())), file=out)
kinds = Counter(next(iter(i)) for v in all_variants for i in v["identifiers"])
print("identifiers: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())), file=out)
print(f"multi-GTIN variants: {sum(1 for v in all_variants if sum('gtin' in i for i in v['identifiers']) > 1)}", file=out)
print(f"price entries: chain-eur {len(eur_entries)}, chain-chf {len(chf_entries)}, graz-01 {len(graz_entries)}; "
      f"christmas SKUs {len(christmas)}; CHF prices not a multiple of 0.05: {sum(1 for p in chf_prices if p % FIVE)}", file=out)
