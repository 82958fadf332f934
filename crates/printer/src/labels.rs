//! Translations of the words printed on receipts and shift reports, keyed by language code.
//!
//! The tables are Rust values rather than a TOML file so that a missing translation is a
//! compile error, not a blank on paper. Unknown languages fall back to English.

use domain::ledger::CashMovementKind;
use domain::sale::TenderKind;

use crate::locale::Language;

/// Every word a receipt or shift report prints, in one language.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Labels {
    pub language: Language,
    pub receipt: &'static str,
    pub copy: &'static str,
    pub return_receipt: &'static str,
    pub original_receipt: &'static str,
    pub reason: &'static str,
    pub cashier: &'static str,
    pub terminal: &'static str,
    pub tax_id: &'static str,
    /// Before a tax's registration number (`No. 123456789 RT0001`).
    pub registration: &'static str,
    pub discount: &'static str,
    pub cart_discount: &'static str,
    pub subtotal: &'static str,
    pub total: &'static str,
    pub refund: &'static str,
    pub cash_rounding: &'static str,
    pub due: &'static str,
    pub change: &'static str,
    pub tax: &'static str,
    /// The name of value-added tax in this language (the tax component code `VAT`).
    pub vat: &'static str,
    pub net: &'static str,
    pub gross: &'static str,
    pub rate: &'static str,
    pub cash: &'static str,
    pub card: &'static str,
    pub gift_card: &'static str,
    pub store_credit: &'static str,
    pub x_report: &'static str,
    pub z_report: &'static str,
    pub interim: &'static str,
    pub shift: &'static str,
    pub opened: &'static str,
    pub closed: &'static str,
    pub printed: &'static str,
    pub float: &'static str,
    pub cash_sales: &'static str,
    pub cash_refunds: &'static str,
    pub paid_in: &'static str,
    pub paid_out: &'static str,
    pub expected_cash: &'static str,
    pub counted_cash: &'static str,
    pub denominations: &'static str,
    pub over: &'static str,
    pub short: &'static str,
    pub balanced: &'static str,
    pub sales: &'static str,
    pub returns: &'static str,
    pub voids: &'static str,
    pub net_sales: &'static str,
    pub goods_net: &'static str,
    pub sales_count: &'static str,
    pub returns_count: &'static str,
    pub voids_count: &'static str,
    pub by_tender: &'static str,
    pub by_tax_rate: &'static str,
    pub cash_drawer: &'static str,
}

/// English.
pub static EN: Labels = Labels {
    language: Language::En,
    receipt: "Receipt",
    copy: "COPY",
    return_receipt: "Return",
    original_receipt: "Original receipt",
    reason: "Reason",
    cashier: "Cashier",
    terminal: "Till",
    tax_id: "VAT no.",
    registration: "No.",
    discount: "Discount",
    cart_discount: "Cart discount",
    subtotal: "Subtotal",
    total: "TOTAL",
    refund: "REFUND",
    cash_rounding: "Cash rounding",
    due: "Due",
    change: "Change",
    tax: "Tax",
    vat: "VAT",
    net: "Net",
    gross: "Gross",
    rate: "Rate",
    cash: "Cash",
    card: "Card",
    gift_card: "Gift card",
    store_credit: "Store credit",
    x_report: "X REPORT",
    z_report: "Z REPORT",
    interim: "Interim, shift still open",
    shift: "Shift",
    opened: "Opened",
    closed: "Closed",
    printed: "Printed",
    float: "Float",
    cash_sales: "Cash sales",
    cash_refunds: "Cash refunds",
    paid_in: "Paid in",
    paid_out: "Paid out",
    expected_cash: "Expected cash",
    counted_cash: "Counted cash",
    denominations: "Count",
    over: "Over",
    short: "Short",
    balanced: "Difference",
    sales: "Sales",
    returns: "Returns",
    voids: "Voids",
    net_sales: "NET SALES",
    goods_net: "Goods excl. tax",
    sales_count: "Number of sales",
    returns_count: "Number of returns",
    voids_count: "Number of voids",
    by_tender: "By tender",
    by_tax_rate: "By tax rate",
    cash_drawer: "Cash drawer",
};

/// German.
pub static DE: Labels = Labels {
    language: Language::De,
    receipt: "Beleg",
    copy: "KOPIE",
    return_receipt: "Rückgabe",
    original_receipt: "Originalbeleg",
    reason: "Grund",
    cashier: "Kassierer",
    terminal: "Kasse",
    tax_id: "UID-Nr.",
    registration: "Nr.",
    discount: "Rabatt",
    cart_discount: "Bonrabatt",
    subtotal: "Zwischensumme",
    total: "SUMME",
    refund: "ERSTATTUNG",
    cash_rounding: "Rundung",
    due: "Zu zahlen",
    change: "Rückgeld",
    tax: "MwSt",
    vat: "MwSt.",
    net: "Netto",
    gross: "Brutto",
    rate: "Satz",
    cash: "Bar",
    card: "Karte",
    gift_card: "Gutschein",
    store_credit: "Guthaben",
    x_report: "X-BERICHT",
    z_report: "Z-BERICHT",
    interim: "Zwischenbericht, Schicht offen",
    shift: "Schicht",
    opened: "Geöffnet",
    closed: "Geschlossen",
    printed: "Gedruckt",
    float: "Wechselgeld",
    cash_sales: "Barverkäufe",
    cash_refunds: "Barerstattungen",
    paid_in: "Einlagen",
    paid_out: "Entnahmen",
    expected_cash: "Soll-Bestand",
    counted_cash: "Ist-Bestand",
    denominations: "Zählung",
    over: "Überschuss",
    short: "Fehlbetrag",
    balanced: "Differenz",
    sales: "Verkäufe",
    returns: "Rückgaben",
    voids: "Stornos",
    net_sales: "UMSATZ",
    goods_net: "Waren netto",
    sales_count: "Anzahl Verkäufe",
    returns_count: "Anzahl Rückgaben",
    voids_count: "Anzahl Stornos",
    by_tender: "Nach Zahlungsart",
    by_tax_rate: "Nach Steuersatz",
    cash_drawer: "Kassenlade",
};

impl Labels {
    /// The labels for a language code or BCP 47 tag (`de`, `de-AT`); English when the language
    /// is not translated.
    pub fn for_tag(tag: &str) -> &'static Labels {
        Labels::for_language(Language::from_tag(tag).unwrap_or(Language::En))
    }

    /// The labels for a language.
    pub fn for_language(language: Language) -> &'static Labels {
        match language {
            Language::En => &EN,
            Language::De => &DE,
        }
    }

    /// The name of a tender.
    pub fn tender(&self, kind: TenderKind) -> &'static str {
        match kind {
            TenderKind::Cash => self.cash,
            TenderKind::Card => self.card,
            TenderKind::GiftCard => self.gift_card,
            TenderKind::StoreCredit => self.store_credit,
        }
    }

    /// How a tax component is named on paper: value-added tax in the receipt's language
    /// (`MwSt.` in German), other components by their code (`GST`, `QST`, `NY`).
    pub fn tax_code<'a>(&self, code: &'a str) -> &'a str {
        if code.eq_ignore_ascii_case("VAT") {
            self.vat
        } else {
            code
        }
    }

    /// The name of a cash movement.
    pub fn cash_movement(&self, kind: CashMovementKind) -> &'static str {
        match kind {
            CashMovementKind::PaidIn => self.paid_in,
            CashMovementKind::PaidOut => self.paid_out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_chosen_by_language_and_fall_back_to_english() {
        assert_eq!(Labels::for_tag("de").total, "SUMME");
        assert_eq!(Labels::for_tag("de-CH").change, "Rückgeld");
        assert_eq!(Labels::for_tag("en-GB").total, "TOTAL");
        assert_eq!(Labels::for_tag("fr-FR").language, Language::En);
        assert_eq!(Labels::for_tag("").language, Language::En);
        assert_eq!(DE.tender(TenderKind::GiftCard), "Gutschein");
        assert_eq!(EN.tender(TenderKind::StoreCredit), "Store credit");
    }
}
