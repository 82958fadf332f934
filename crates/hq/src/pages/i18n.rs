//! The back office's words in English and German. Both lists hold the same keys in the same
//! order (a test checks it); a page asks for a key and gets the word of its language.

/// The back office's languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// German.
    De,
}

const EN: &[(&str, &str)] = &[
    ("app.title", "Kassa back office"),
    ("nav.skip", "Skip to content"),
    ("nav.main", "Main"),
    ("nav.dashboard", "Dashboard"),
    ("nav.catalog", "Catalog"),
    ("nav.sign_out", "Sign out"),
    ("nav.language", "Deutsch"),
    ("nav.signed_in_as", "Signed in as"),
    ("sign_in.title", "Sign in"),
    ("sign_in.name", "Name"),
    ("sign_in.password", "Password"),
    ("sign_in.submit", "Sign in"),
    ("dash.title", "Dashboard"),
    ("dash.sales", "Sales today"),
    ("dash.store", "Store"),
    ("dash.day", "Business day"),
    ("dash.today", "Today"),
    ("dash.last_week", "Same weekday last week"),
    ("dash.change", "Change"),
    ("dash.sales_count", "Sales"),
    ("dash.tills", "Tills"),
    ("dash.till", "Till"),
    ("dash.last_contact", "Last contact"),
    ("dash.state", "State"),
    ("dash.online", "online"),
    ("dash.offline", "offline"),
    ("dash.never", "never"),
    ("dash.exceptions", "Open exceptions"),
    ("dash.kind", "Kind"),
    ("dash.count", "Open"),
    ("exc.negative_stock", "Negative stock"),
    ("exc.parked", "Parked batches"),
    (
        "exc.card_declines",
        "Card declines after an offline approval",
    ),
    ("exc.pending_cards", "Offline card approvals waiting"),
    ("cat.title", "Catalog"),
    ("cat.search", "Search by name, SKU or barcode"),
    ("cat.submit", "Search"),
    ("cat.sku", "SKU"),
    ("cat.product", "Product"),
    ("cat.variant", "Variant"),
    ("cat.identifiers", "Identifiers"),
    ("cat.next", "Next page"),
    ("cat.none", "Nothing found."),
    ("var.prices", "Prices and their history"),
    ("var.book", "Price book"),
    ("var.scope", "Applies to"),
    ("var.chain", "the chain"),
    ("var.from", "From"),
    ("var.until", "Until"),
    ("var.price", "Price"),
    ("var.changes", "Price changes"),
    ("var.status", "Status"),
    ("var.by", "By"),
    ("var.schedule", "Schedule a price change"),
    (
        "var.effective",
        "Effective from (the stores' local time; empty: now)",
    ),
    ("var.store", "Only this store (empty: the chain)"),
    ("var.currency", "Currency of the chain price"),
    ("var.preview", "Preview"),
    ("var.commit", "Schedule"),
    ("var.cancel", "Cancel"),
    ("var.before", "Before"),
    ("var.after", "After"),
    ("var.local", "Local time"),
    ("var.preview_title", "What the change does"),
    ("var.done", "Scheduled."),
    ("status.scheduled", "scheduled"),
    ("status.effective", "in effect"),
    ("status.cancelled", "cancelled"),
    ("status.replaced", "replaced"),
    ("err.forbidden", "Your role may not see this page."),
    ("err.not_found", "There is no such page."),
    ("nav.price_changes", "Price changes"),
    ("pc.title", "Price changes"),
    (
        "pc.help",
        "A change is scheduled on a variant's page; here are the changes of the whole catalog. One that has not taken effect can be cancelled.",
    ),
    ("pc.all", "Show every change"),
    ("pc.scheduled_only", "Show only scheduled changes"),
    ("pc.none", "No price change is scheduled."),
    ("nav.stock", "Stock"),
    ("stock.title", "Stock"),
    ("stock.location", "Store"),
    ("stock.negative_only", "Only negative stock"),
    ("stock.none", "No stock recorded that matches."),
    ("stock.on_hand", "On hand"),
    ("stock.negative", "negative"),
    ("nav.reports", "Reports"),
    ("rep.title", "Sales report"),
    ("rep.from", "From"),
    ("rep.to", "To"),
    ("rep.store", "Store"),
    ("rep.all_stores", "All stores"),
    ("rep.show", "Show"),
    ("rep.csv", "Download as CSV"),
    ("rep.none", "No sales in this range."),
    ("rep.chart", "Gross sales per day in {c}"),
    ("rep.max", "highest day"),
    ("rep.days", "Days"),
    ("rep.sales", "Sales"),
    ("rep.returns", "Returns"),
    ("rep.gross", "Gross"),
    ("rep.refunds", "Refunds"),
    ("rep.net", "Net"),
    ("rep.tax", "Tax"),
    ("rep.over_short", "Cash over/short"),
    ("rep.total", "Total"),
    (
        "rep.too_long",
        "The range is longer than {n} days; the CSV export takes any range.",
    ),
    ("nav.reconciliation", "Reconciliation"),
    ("nav.audit", "Audit log"),
    ("rec.title", "Reconciliation"),
    ("rec.store", "Store"),
    ("rec.day", "Business day"),
    ("rec.tolerance", "Cash tolerance"),
    ("rec.show", "Show"),
    ("rec.status", "Status"),
    ("rec.shifts", "Shifts closed"),
    ("rec.findings", "Differences"),
    ("rec.missing", "Events HQ lacks"),
    ("rec.open_shifts", "Tills with a shift still open"),
    ("rec.till", "Till"),
    ("rec.shift", "Shift"),
    ("rec.sequences", "Sequences"),
    ("rec.complete", "complete"),
    ("rec.incomplete", "events missing"),
    ("rec.kind", "Kind"),
    ("rec.expected", "Expected"),
    ("rec.actual", "Found"),
    ("rec.difference", "Difference"),
    ("rec.none", "None."),
    ("rec.status.reconciled", "reconciled"),
    ("rec.status.with_differences", "with differences"),
    ("rec.status.incomplete", "incomplete"),
    ("rec.status.open", "open: the day has not ended"),
    ("rec.kind.cash_over_short", "Cash over or short"),
    (
        "rec.kind.z_mismatch",
        "The till's expected cash differs from its events",
    ),
    (
        "rec.kind.card_difference",
        "Card tenders differ from the card terminal",
    ),
    ("audit.title", "Audit log"),
    ("audit.when", "When (UTC)"),
    ("audit.actor", "Who"),
    ("audit.source", "From"),
    ("audit.action", "Action"),
    ("audit.target", "On what"),
    ("audit.change", "Before and after"),
    ("audit.filter", "Filter"),
    ("audit.csv", "Export as CSV"),
    ("audit.older", "Older entries"),
    ("nav.fleet", "Fleet"),
    ("fleet.title", "Fleet"),
    ("fleet.threshold", "Silent for more than (minutes)"),
    ("fleet.acked", "Synced up to"),
    ("fleet.gaps", "Missing sequences"),
    ("fleet.held", "Held beyond a gap"),
    ("fleet.parked", "Parked batches"),
    ("fleet.ok", "ok"),
    ("fleet.attention", "needs attention"),
    ("nav.exceptions", "Exceptions"),
    ("exc.title", "Exceptions"),
    ("exc.what", "What"),
    ("exc.note", "Note"),
    ("exc.acknowledge", "Acknowledge"),
    ("exc.resolve", "Resolve"),
    ("exc.kind.negative_stock", "Negative stock"),
    ("exc.kind.parked_batch", "Parked batch"),
    (
        "exc.kind.card_declined",
        "Card declined after an offline approval",
    ),
    ("exc.kind.silent_till", "Silent till"),
    ("exc.state.open", "open"),
    ("exc.state.acknowledged", "acknowledged"),
    ("exc.state.resolved", "resolved"),
];

const DE: &[(&str, &str)] = &[
    ("app.title", "Kassa Backoffice"),
    ("nav.skip", "Zum Inhalt springen"),
    ("nav.main", "Hauptmenü"),
    ("nav.dashboard", "Übersicht"),
    ("nav.catalog", "Katalog"),
    ("nav.sign_out", "Abmelden"),
    ("nav.language", "English"),
    ("nav.signed_in_as", "Angemeldet als"),
    ("sign_in.title", "Anmelden"),
    ("sign_in.name", "Name"),
    ("sign_in.password", "Passwort"),
    ("sign_in.submit", "Anmelden"),
    ("dash.title", "Übersicht"),
    ("dash.sales", "Umsatz heute"),
    ("dash.store", "Filiale"),
    ("dash.day", "Geschäftstag"),
    ("dash.today", "Heute"),
    ("dash.last_week", "Gleicher Wochentag der Vorwoche"),
    ("dash.change", "Veränderung"),
    ("dash.sales_count", "Verkäufe"),
    ("dash.tills", "Kassen"),
    ("dash.till", "Kasse"),
    ("dash.last_contact", "Letzter Kontakt"),
    ("dash.state", "Zustand"),
    ("dash.online", "online"),
    ("dash.offline", "offline"),
    ("dash.never", "nie"),
    ("dash.exceptions", "Offene Ausnahmen"),
    ("dash.kind", "Art"),
    ("dash.count", "Offen"),
    ("exc.negative_stock", "Negativer Bestand"),
    ("exc.parked", "Geparkte Stapel"),
    (
        "exc.card_declines",
        "Kartenablehnungen nach Offline-Freigabe",
    ),
    ("exc.pending_cards", "Ausstehende Offline-Kartenfreigaben"),
    ("cat.title", "Katalog"),
    ("cat.search", "Suche nach Name, SKU oder Barcode"),
    ("cat.submit", "Suchen"),
    ("cat.sku", "SKU"),
    ("cat.product", "Produkt"),
    ("cat.variant", "Variante"),
    ("cat.identifiers", "Kennungen"),
    ("cat.next", "Nächste Seite"),
    ("cat.none", "Nichts gefunden."),
    ("var.prices", "Preise und ihre Geschichte"),
    ("var.book", "Preisliste"),
    ("var.scope", "Gilt für"),
    ("var.chain", "die ganze Kette"),
    ("var.from", "Ab"),
    ("var.until", "Bis"),
    ("var.price", "Preis"),
    ("var.changes", "Preisänderungen"),
    ("var.status", "Status"),
    ("var.by", "Von"),
    ("var.schedule", "Preisänderung planen"),
    (
        "var.effective",
        "Gültig ab (Ortszeit der Filialen; leer: sofort)",
    ),
    ("var.store", "Nur diese Filiale (leer: die ganze Kette)"),
    ("var.currency", "Währung des Kettenpreises"),
    ("var.preview", "Vorschau"),
    ("var.commit", "Planen"),
    ("var.cancel", "Stornieren"),
    ("var.before", "Vorher"),
    ("var.after", "Nachher"),
    ("var.local", "Ortszeit"),
    ("var.preview_title", "Was die Änderung bewirkt"),
    ("var.done", "Geplant."),
    ("status.scheduled", "geplant"),
    ("status.effective", "wirksam"),
    ("status.cancelled", "storniert"),
    ("status.replaced", "ersetzt"),
    ("err.forbidden", "Ihre Rolle darf diese Seite nicht sehen."),
    ("err.not_found", "Diese Seite gibt es nicht."),
    ("nav.price_changes", "Preisänderungen"),
    ("pc.title", "Preisänderungen"),
    (
        "pc.help",
        "Eine Änderung wird auf der Seite eines Artikels geplant; hier stehen die Änderungen des ganzen Sortiments. Eine noch nicht wirksame kann storniert werden.",
    ),
    ("pc.all", "Alle Änderungen zeigen"),
    ("pc.scheduled_only", "Nur geplante Änderungen zeigen"),
    ("pc.none", "Keine Preisänderung geplant."),
    ("nav.stock", "Bestand"),
    ("stock.title", "Bestand"),
    ("stock.location", "Filiale"),
    ("stock.negative_only", "Nur negativer Bestand"),
    ("stock.none", "Kein passender Bestand erfasst."),
    ("stock.on_hand", "Bestand"),
    ("stock.negative", "negativ"),
    ("nav.reports", "Berichte"),
    ("rep.title", "Umsatzbericht"),
    ("rep.from", "Von"),
    ("rep.to", "Bis"),
    ("rep.store", "Filiale"),
    ("rep.all_stores", "Alle Filialen"),
    ("rep.show", "Anzeigen"),
    ("rep.csv", "Als CSV herunterladen"),
    ("rep.none", "Keine Verkäufe in diesem Zeitraum."),
    ("rep.chart", "Bruttoumsatz pro Tag in {c}"),
    ("rep.max", "stärkster Tag"),
    ("rep.days", "Tage"),
    ("rep.sales", "Verkäufe"),
    ("rep.returns", "Retouren"),
    ("rep.gross", "Brutto"),
    ("rep.refunds", "Erstattungen"),
    ("rep.net", "Netto"),
    ("rep.tax", "Steuer"),
    ("rep.over_short", "Kassendifferenz"),
    ("rep.total", "Summe"),
    (
        "rep.too_long",
        "Der Zeitraum ist länger als {n} Tage; der CSV-Export nimmt jeden Zeitraum.",
    ),
    ("nav.reconciliation", "Abstimmung"),
    ("nav.audit", "Prüfprotokoll"),
    ("rec.title", "Tagesabstimmung"),
    ("rec.store", "Filiale"),
    ("rec.day", "Geschäftstag"),
    ("rec.tolerance", "Bargeld-Toleranz"),
    ("rec.show", "Anzeigen"),
    ("rec.status", "Status"),
    ("rec.shifts", "Abgeschlossene Schichten"),
    ("rec.findings", "Differenzen"),
    ("rec.missing", "Ereignisse, die der Zentrale fehlen"),
    ("rec.open_shifts", "Kassen mit offener Schicht"),
    ("rec.till", "Kasse"),
    ("rec.shift", "Schicht"),
    ("rec.sequences", "Sequenzen"),
    ("rec.complete", "vollständig"),
    ("rec.incomplete", "Ereignisse fehlen"),
    ("rec.kind", "Art"),
    ("rec.expected", "Erwartet"),
    ("rec.actual", "Gefunden"),
    ("rec.difference", "Differenz"),
    ("rec.none", "Keine."),
    ("rec.status.reconciled", "abgestimmt"),
    ("rec.status.with_differences", "mit Differenzen"),
    ("rec.status.incomplete", "unvollständig"),
    ("rec.status.open", "offen: der Tag ist nicht zu Ende"),
    ("rec.kind.cash_over_short", "Kassendifferenz"),
    (
        "rec.kind.z_mismatch",
        "Das erwartete Bargeld der Kasse weicht von ihren Ereignissen ab",
    ),
    (
        "rec.kind.card_difference",
        "Kartenzahlungen weichen vom Kartenterminal ab",
    ),
    ("audit.title", "Prüfprotokoll"),
    ("audit.when", "Wann (UTC)"),
    ("audit.actor", "Wer"),
    ("audit.source", "Von wo"),
    ("audit.action", "Aktion"),
    ("audit.target", "Woran"),
    ("audit.change", "Vorher und nachher"),
    ("audit.filter", "Filtern"),
    ("audit.csv", "Als CSV exportieren"),
    ("audit.older", "Ältere Einträge"),
    ("nav.fleet", "Kassen"),
    ("fleet.title", "Kassen im Überblick"),
    ("fleet.threshold", "Still seit mehr als (Minuten)"),
    ("fleet.acked", "Übertragen bis"),
    ("fleet.gaps", "Fehlende Sequenzen"),
    ("fleet.held", "Nach einer Lücke gehalten"),
    ("fleet.parked", "Geparkte Stapel"),
    ("fleet.ok", "in Ordnung"),
    ("fleet.attention", "braucht Aufmerksamkeit"),
    ("nav.exceptions", "Ausnahmen"),
    ("exc.title", "Ausnahmen"),
    ("exc.what", "Was"),
    ("exc.note", "Notiz"),
    ("exc.acknowledge", "Zur Kenntnis nehmen"),
    ("exc.resolve", "Erledigen"),
    ("exc.kind.negative_stock", "Negativer Bestand"),
    ("exc.kind.parked_batch", "Geparkter Stapel"),
    (
        "exc.kind.card_declined",
        "Kartenablehnung nach Offline-Freigabe",
    ),
    ("exc.kind.silent_till", "Stille Kasse"),
    ("exc.state.open", "offen"),
    ("exc.state.acknowledged", "zur Kenntnis genommen"),
    ("exc.state.resolved", "erledigt"),
];

impl Lang {
    /// The language's code (`en`, `de`).
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
        }
    }

    /// The other language, for the switch in the header.
    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::De,
            Lang::De => Lang::En,
        }
    }

    /// The word for `key` (the key itself when there is none, which a test rules out).
    pub fn get(&self, key: &str) -> &'static str {
        let words = match self {
            Lang::En => EN,
            Lang::De => DE,
        };
        words
            .iter()
            .find(|(k, _)| *k == key)
            .map_or("?", |(_, word)| word)
    }

    /// An amount with its currency as the language writes it (`EUR 1,234.50`, `1.234,50 EUR`).
    pub fn money(&self, amount: &str, currency: &str) -> String {
        let (sign, digits) = amount
            .strip_prefix('-')
            .map_or(("", amount), |rest| ("-", rest));
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let (group, point) = match self {
            Lang::En => (',', '.'),
            Lang::De => ('.', ','),
        };
        let mut grouped = String::new();
        for (i, c) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i) % 3 == 0 {
                grouped.push(group);
            }
            grouped.push(c);
        }
        let number = if fraction.is_empty() {
            format!("{sign}{grouped}")
        } else {
            format!("{sign}{grouped}{point}{fraction}")
        };
        match self {
            Lang::En => format!("{currency} {number}"),
            Lang::De => format!("{number} {currency}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_have_the_same_keys_in_the_same_order() {
        let en: Vec<&str> = EN.iter().map(|(k, _)| *k).collect();
        let de: Vec<&str> = DE.iter().map(|(k, _)| *k).collect();
        assert_eq!(en, de);
        let mut unique = en.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), en.len(), "a key twice");
    }

    #[test]
    fn money_is_written_as_the_language_writes_it() {
        assert_eq!(Lang::En.money("1234.50", "EUR"), "EUR 1,234.50");
        assert_eq!(Lang::De.money("1234.50", "EUR"), "1.234,50 EUR");
        assert_eq!(Lang::De.money("-12.00", "CHF"), "-12,00 CHF");
        assert_eq!(Lang::En.money("999", "JPY"), "JPY 999");
    }
}
