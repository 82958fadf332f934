//! The back office's pages ([ADR 0004](../../../../docs/adr/0004-back-office.md)): HTML rendered
//! on the server from askama templates compiled into the binary, reading through the same
//! queries and the same role scopes as the JSON API; every change a page makes is a call of
//! that API from a few lines of plain script with the session's CSRF token. English and
//! German; filters and paging in the URL.

mod commerce;
mod i18n;
mod people;
mod prices;
mod reports;
mod staff;
mod stock;
mod stores;

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use protocol::seed::StoreDto;
use protocol::sync::{PricesEntity, VariantEntity};
use sqlx::Row;

pub use i18n::Lang;

use crate::api::Hq;
use crate::extract::{Path, Query};
use crate::identity::{Role, Scope, Session};

/// The cookie the language choice is kept in.
const LANG_COOKIE: &str = "kassa_hq_lang";

/// A till not heard from for longer is shown offline.
const ONLINE_WITHIN_MS: i64 = 10 * 60_000;

/// The pages and their assets.
pub(crate) fn router() -> Router<Arc<Hq>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/dashboard") }))
        .route("/sign-in", get(sign_in))
        .route("/dashboard", get(dashboard))
        .route("/catalog", get(catalog))
        .route("/catalog/{sku}", get(variant))
        .route("/price-changes", get(prices::price_changes))
        .route("/stock", get(stock::stock))
        .route("/reports", get(reports::reports))
        .route("/reconciliation", get(reconciliation))
        .route("/audit-log", get(audit_log))
        .route("/fleet", get(fleet))
        .route("/exceptions", get(exceptions_inbox))
        .route("/users", get(people::users))
        .route("/stores", get(stores::stores))
        .route("/staff", get(staff::staff))
        .route("/orders", get(commerce::orders))
        .route("/webhooks", get(commerce::webhooks))
        .route("/reorder", get(commerce::reorder))
        .route(
            "/ui/hq.css",
            get(|| async { asset("text/css", include_str!("../../ui/hq.css")) }),
        )
        .route(
            "/ui/hq.js",
            get(|| async { asset("text/javascript", include_str!("../../ui/hq.js")) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

type Params = BTreeMap<String, String>;

/// The page's language: `?lang=` (kept in a cookie), else the cookie, else the browser's
/// first choice.
fn language(headers: &HeaderMap, params: &Params) -> (Lang, bool) {
    let parse = |code: &str| match code.trim().get(..2) {
        Some("de") => Some(Lang::De),
        Some("en") => Some(Lang::En),
        _ => None,
    };
    if let Some(lang) = params.get("lang").and_then(|c| parse(c)) {
        return (lang, true);
    }
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == LANG_COOKIE)
        .and_then(|(_, value)| parse(value));
    let browser = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse);
    (cookie.or(browser).unwrap_or(Lang::En), false)
}

/// A rendered page with the back office's headers (and the language cookie when it changed).
fn page(template: &impl Template, status: StatusCode, lang: (Lang, bool)) -> Response {
    let html = match template.render() {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(error = %e, "a page did not render");
            return (StatusCode::INTERNAL_SERVER_ERROR, "the page did not render").into_response();
        }
    };
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if lang.1 {
        if let Ok(cookie) = HeaderValue::from_str(&format!(
            "{LANG_COOKIE}={}; SameSite=Strict; Path=/; Max-Age=31536000",
            lang.0.code()
        )) {
            headers.insert(header::SET_COOKIE, cookie);
        }
    }
    response
}

/// Who is looking: the session, or the answer that sends them to sign in.
async fn viewer(hq: &Hq, headers: &HeaderMap, uri: &OriginalUri) -> Result<Session, Response> {
    match crate::sessions::session_of(hq, headers).await {
        Ok(Some(session)) => Ok(session),
        _ => {
            let next = uri
                .0
                .path_and_query()
                .map_or("/dashboard", |p| p.as_str())
                .to_owned();
            let target = format!(
                "/sign-in?next={}",
                next.replace('%', "%25")
                    .replace('&', "%26")
                    .replace('#', "%23")
            );
            Err(Redirect::to(&target).into_response())
        }
    }
}

/// [`enter`], or from the handler the answer instead of the page.
macro_rules! entered {
    ($($arg:expr),* $(,)?) => {
        match crate::pages::enter($($arg),*).await {
            Ok(entered) => entered,
            Err(answer) => return answer,
        }
    };
}
pub(crate) use entered;

/// Who opens page `here`, in which language, and the page's frame; or the answer instead: the
/// sign-in page for nobody signed in, the 403 page for a role without `scope`.
async fn enter(
    hq: &Hq,
    headers: &HeaderMap,
    uri: &OriginalUri,
    params: &Params,
    here: &'static str,
    scope: Option<Scope>,
) -> Result<(Session, Frame, (Lang, bool)), Response> {
    let lang = language(headers, params);
    let session = viewer(hq, headers, uri).await?;
    let frame = Frame::of(&session, lang.0, here);
    if scope.is_some_and(|s| !session.user.role.scopes().contains(&s)) {
        return Err(forbidden(frame, lang));
    }
    Ok((session, frame, lang))
}

/// The header every page shows: the language, the session's CSRF token, who is signed in and
/// the pages their role may open.
struct Frame {
    t: Lang,
    csrf: String,
    user: String,
    role: String,
    /// The page's own link.
    here: &'static str,
    /// `(href, word key)` of each page in the navigation.
    links: Vec<(&'static str, &'static str)>,
}

impl Frame {
    fn of(session: &Session, lang: Lang, here: &'static str) -> Frame {
        let scopes = session.user.role.scopes();
        let links = [
            ("/dashboard", "nav.dashboard", None),
            ("/catalog", "nav.catalog", Some(Scope::CatalogRead)),
            (
                "/price-changes",
                "nav.price_changes",
                Some(Scope::CatalogRead),
            ),
            ("/stock", "nav.stock", Some(Scope::StockRead)),
            ("/orders", "nav.orders", Some(Scope::OrdersRead)),
            ("/reorder", "nav.reorder", Some(Scope::StockRead)),
            ("/reports", "nav.reports", Some(Scope::ReportsRead)),
            (
                "/reconciliation",
                "nav.reconciliation",
                Some(Scope::ReportsRead),
            ),
            ("/exceptions", "nav.exceptions", Some(Scope::ReportsRead)),
            ("/stores", "nav.stores", Some(Scope::FleetRead)),
            ("/staff", "nav.staff", Some(Scope::FleetRead)),
            ("/fleet", "nav.fleet", Some(Scope::FleetRead)),
            ("/users", "nav.users", Some(Scope::AuditRead)),
            ("/audit-log", "nav.audit", Some(Scope::AuditRead)),
            ("/webhooks", "nav.webhooks", Some(Scope::WebhooksWrite)),
        ]
        .into_iter()
        .filter(|(_, _, scope)| scope.is_none_or(|s| scopes.contains(&s)))
        .map(|(href, key, _)| (href, key))
        .collect();
        Frame {
            t: lang,
            csrf: session.csrf.clone(),
            user: session.user.name.clone(),
            role: session.user.role.as_str().to_owned(),
            here,
            links,
        }
    }

    /// Whether `href` is this page's link.
    fn is_here(&self, href: &str) -> bool {
        self.here == href
    }

    /// The frame of a page nobody is signed in to.
    fn anonymous(lang: Lang, here: &'static str) -> Frame {
        Frame {
            t: lang,
            csrf: String::new(),
            user: String::new(),
            role: String::new(),
            here,
            links: Vec::new(),
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct Message {
    f: Frame,
    heading: String,
    text: String,
}

/// A page that only says why there is nothing to show.
fn message(frame: Frame, lang: (Lang, bool), status: StatusCode, key: &str) -> Response {
    let template = Message {
        heading: status.as_u16().to_string(),
        text: frame.t.get(key).to_owned(),
        f: frame,
    };
    page(&template, status, lang)
}

fn forbidden(frame: Frame, lang: (Lang, bool)) -> Response {
    message(frame, lang, StatusCode::FORBIDDEN, "err.forbidden")
}

fn not_found(frame: Frame, lang: (Lang, bool)) -> Response {
    message(frame, lang, StatusCode::NOT_FOUND, "err.not_found")
}

fn failed(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "a page's data could not be read");
    (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignIn {
    f: Frame,
    next: String,
}

/// Whether `next` is a path of this site, the only place a sign-in goes on to: browsers read
/// `//host` and `/\host` as another site.
fn own_path(next: &str) -> bool {
    next.starts_with('/') && !next.starts_with("//") && !next.contains('\\')
}

/// `GET /sign-in`.
async fn sign_in(headers: HeaderMap, Query(params): Query<Params>) -> Response {
    let lang = language(&headers, &params);
    let next = params
        .get("next")
        .filter(|n| own_path(n))
        .cloned()
        .unwrap_or_else(|| "/dashboard".into());
    let template = SignIn {
        f: Frame::anonymous(lang.0, "/sign-in"),
        next,
    };
    page(&template, StatusCode::OK, lang)
}

/// The stores a person sees: a store manager their own, everyone else all.
async fn visible_stores(hq: &Hq, session: &Session) -> Result<Vec<StoreDto>, sqlx::Error> {
    let mut conn = hq.db.pool.acquire().await?;
    let all = crate::catalog::stores(&mut conn).await?;
    Ok(all
        .into_values()
        .filter(|s| session.user.role != Role::StoreManager || session.user.stores.contains(&s.id))
        .collect())
}

fn zone_of(name: &str) -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get(name).unwrap_or(jiff::tz::TimeZone::UTC)
}

/// An instant in a time zone, as the back office shows it (`2026-12-04 14:05 Europe/Vienna`).
fn local(ms: i64, zone: &str) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(
        |_| "–".into(),
        |t| {
            format!(
                "{} {zone}",
                t.to_zoned(zone_of(zone)).strftime("%Y-%m-%d %H:%M")
            )
        },
    )
}

struct SalesRow {
    store: String,
    name: String,
    day: String,
    today: String,
    count: i64,
    last_week: String,
    change: String,
}

struct TillRow {
    id: String,
    store: String,
    last_contact: String,
    state: &'static str,
    state_text: &'static str,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    f: Frame,
    sales: Option<Vec<SalesRow>>,
    tills: Option<Vec<TillRow>>,
    exceptions: Option<Vec<(&'static str, i64)>>,
}

/// `GET /dashboard`: today's sales per store against the same weekday last week, the tills
/// with their last contact, and the open exceptions; each part only for a role that may read it
/// (a store manager: their stores).
async fn dashboard(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    uri: OriginalUri,
    Query(params): Query<Params>,
) -> Response {
    let (session, frame, lang) = entered!(&hq, &headers, &uri, &params, "/dashboard", None);
    match dashboard_data(&hq, &session, lang.0).await {
        Ok((sales, tills, exceptions)) => {
            let template = Dashboard {
                f: frame,
                sales,
                tills,
                exceptions,
            };
            page(&template, StatusCode::OK, lang)
        }
        Err(e) => failed(e),
    }
}

type DashboardData = (
    Option<Vec<SalesRow>>,
    Option<Vec<TillRow>>,
    Option<Vec<(&'static str, i64)>>,
);

async fn dashboard_data(hq: &Hq, session: &Session, t: Lang) -> Result<DashboardData, sqlx::Error> {
    let scopes = session.user.role.scopes();
    let stores = visible_stores(hq, session).await?;
    let ids: Vec<&str> = stores.iter().map(|s| s.id.as_str()).collect();
    let now = crate::now_ms();
    let sales = if scopes.contains(&Scope::ReportsRead) {
        let mut rows = Vec::new();
        for store in &stores {
            let today = jiff::Timestamp::from_millisecond(now)
                .map(|ts| ts.to_zoned(zone_of(&store.timezone)).date())
                .unwrap_or_default();
            let week_ago = today
                .checked_sub(jiff::Span::new().days(7))
                .unwrap_or(today);
            let figure = |day: jiff::civil::Date| {
                let store = store.id.clone();
                async move {
                    let row: Option<(i64, i64)> = sqlx::query_as(
                        "SELECT gross_minor, sales FROM sales_daily WHERE store = $1 AND day = $2",
                    )
                    .bind(store)
                    .bind(day.to_string())
                    .fetch_optional(&hq.db.pool)
                    .await?;
                    Ok::<_, sqlx::Error>(row.unwrap_or((0, 0)))
                }
            };
            let (gross, count) = figure(today).await?;
            let (before, _) = figure(week_ago).await?;
            let currency =
                domain::Currency::parse(&store.currency).unwrap_or(domain::Currency::EUR);
            let amount = |minor| domain::Money::from_minor(minor, currency).amount_string();
            let change = if before == 0 {
                "–".to_owned()
            } else {
                let percent = (gross - before) as f64 * 100.0 / before as f64;
                format!("{percent:+.1} %")
            };
            rows.push(SalesRow {
                store: store.id.clone(),
                name: store.name.clone(),
                day: today.to_string(),
                today: t.money(&amount(gross), &store.currency),
                count,
                last_week: t.money(&amount(before), &store.currency),
                change,
            });
        }
        Some(rows)
    } else {
        None
    };
    let tills = if scopes.contains(&Scope::FleetRead) || session.user.role == Role::StoreManager {
        let rows =
            sqlx::query("SELECT id, store, last_contact_ms FROM terminals ORDER BY store, id")
                .fetch_all(&hq.db.pool)
                .await?;
        let zones: BTreeMap<&str, &str> = stores
            .iter()
            .map(|s| (s.id.as_str(), s.timezone.as_str()))
            .collect();
        Some(
            rows.iter()
                .filter(|r| {
                    session.user.role != Role::StoreManager
                        || ids.contains(&r.get::<String, _>("store").as_str())
                })
                .map(|r| {
                    let store: String = r.get("store");
                    let last: Option<i64> = r.get("last_contact_ms");
                    let online = last.is_some_and(|ms| now - ms <= ONLINE_WITHIN_MS);
                    let zone = zones.get(store.as_str()).copied().unwrap_or("UTC");
                    TillRow {
                        id: r.get("id"),
                        last_contact: last
                            .map_or_else(|| t.get("dash.never").to_owned(), |ms| local(ms, zone)),
                        store,
                        state: if online { "online" } else { "offline" },
                        state_text: t.get(if online {
                            "dash.online"
                        } else {
                            "dash.offline"
                        }),
                    }
                })
                .collect(),
        )
    } else {
        None
    };
    // The inbox's exceptions not yet resolved, per kind, and the offline card approvals still
    // waiting for the terminal's word.
    let exceptions = if scopes.contains(&Scope::ReportsRead) {
        let scope = (session.user.role == Role::StoreManager)
            .then(|| ids.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        let found = crate::exceptions::exceptions(&hq.db, scope.as_deref()).await?;
        let mut out: Vec<(&'static str, i64)> = crate::exceptions::KINDS
            .iter()
            .map(|kind| {
                let open = found
                    .iter()
                    .filter(|e| e.kind == *kind && e.state != "resolved")
                    .count();
                (
                    t.get(&format!("exc.kind.{kind}")),
                    i64::try_from(open).unwrap_or(i64::MAX),
                )
            })
            .collect();
        let pending: Vec<(String, i64)> = sqlx::query_as(
            "SELECT store, COUNT(*) FROM card_payments WHERE settlement = 'pending' GROUP BY store",
        )
        .fetch_all(&hq.db.pool)
        .await?;
        out.push((
            t.get("exc.pending_cards"),
            pending
                .iter()
                .filter(|(store, _)| scope.is_none() || ids.contains(&store.as_str()))
                .map(|(_, n)| n)
                .sum(),
        ));
        Some(out)
    } else {
        None
    };
    Ok((sales, tills, exceptions))
}

#[derive(Template)]
#[template(path = "catalog.html")]
struct Catalog {
    f: Frame,
    q: String,
    found: Vec<crate::search::Found>,
    next: Option<String>,
}

/// `GET /catalog?q=…&after=…`: the catalog searched, 50 variants a page.
async fn catalog(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    uri: OriginalUri,
    Query(params): Query<Params>,
) -> Response {
    let (_, frame, lang) = entered!(
        &hq,
        &headers,
        &uri,
        &params,
        "/catalog",
        Some(Scope::CatalogRead)
    );
    let q: String = params
        .get("q")
        .map(|q| q.trim().chars().take(100).collect())
        .unwrap_or_default();
    let after = params.get("after").cloned().unwrap_or_default();
    match crate::search::find(&hq.db, &q.to_lowercase(), &after, 50).await {
        Ok(found) => {
            let template = Catalog {
                f: frame,
                q,
                found: found.variants,
                next: found.after_next,
            };
            page(&template, StatusCode::OK, lang)
        }
        Err(e) => failed(e),
    }
}

struct PriceRow {
    book: String,
    scope: String,
    from: String,
    until: String,
    price: String,
}

#[derive(Template)]
#[template(path = "variant.html")]
struct Variant {
    f: Frame,
    sku: String,
    name: String,
    product: String,
    /// The path of names to the product's category, when it has one.
    category: Option<String>,
    identifiers: String,
    prices: Vec<PriceRow>,
    changes: Vec<prices::ChangeRow>,
    /// The import batches that wrote the variant, the latest first.
    imports: Vec<ImportView>,
    /// What the edit form starts from and offers.
    edit: VariantEdit,
    can_write: bool,
    stores: Vec<String>,
    currencies: Vec<String>,
}

/// The variant edit form: the fields as they are and the choices.
struct VariantEdit {
    tax: String,
    taxes: Vec<String>,
    channels: String,
    category: String,
    /// (id, path of names) of every category.
    categories: Vec<(String, String)>,
    /// The GTINs, one per line (PLUs and legacy ids are kept as they are).
    gtins: String,
}

/// An import batch of a variant as the page shows it: where each field came from.
struct ImportView {
    label: String,
    batch: String,
    at: String,
    undone: bool,
    sources: Vec<String>,
}

/// The lines of an import's provenance of a variant: `system file:line (legacy id): fields`
/// for each source row, or the note it holds.
fn provenance_lines(provenance: &serde_json::Value) -> Vec<String> {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    match provenance {
        serde_json::Value::Array(rows) => rows
            .iter()
            .map(|row| {
                let fields: Vec<String> = row["fields"]
                    .as_array()
                    .map(|f| f.iter().map(text).collect())
                    .unwrap_or_default();
                format!(
                    "{} {}:{} ({}): {}",
                    text(&row["system"]),
                    text(&row["file"]),
                    text(&row["line"]),
                    text(&row["legacy_id"]),
                    fields.join(", ")
                )
            })
            .collect(),
        serde_json::Value::Null => Vec::new(),
        other => vec![text(other)],
    }
}

/// `GET /catalog/{sku}`: a variant with its prices in every book (their history), the price
/// changes made through the API, and (for a role that may) the form that schedules one.
async fn variant(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    uri: OriginalUri,
    Path(sku): Path<String>,
    Query(params): Query<Params>,
) -> Response {
    let (session, frame, lang) = entered!(
        &hq,
        &headers,
        &uri,
        &params,
        "/catalog",
        Some(Scope::CatalogRead)
    );
    let scopes = session.user.role.scopes();
    let t = lang.0;
    let data = async {
        let mut conn = hq.db.pool.acquire().await?;
        let held = crate::writes::held(&mut conn, "variant", &sku).await?;
        let entity = held
            .and_then(|h| h.payload)
            .and_then(|p| serde_json::from_str::<VariantEntity>(&p).ok());
        let books = crate::catalog::prices_of(&mut conn, &sku).await?;
        let changes = crate::catalog::changes_where(&mut conn, "sku = $1", &sku).await?;
        let stores = crate::catalog::stores(&mut conn).await?;
        let imports = crate::catalog::imports_of(&mut conn, &sku).await?;
        let categories = crate::categories::held(&mut conn).await?;
        let taxes = crate::catalog::tax_categories(&mut conn).await?;
        Ok::<_, sqlx::Error>((entity, books, changes, stores, imports, categories, taxes))
    };
    let (entity, books, changes, stores, imports, categories, taxes) = match data.await {
        Ok(data) => data,
        Err(e) => return failed(e),
    };
    let Some(entity) = entity else {
        return not_found(frame, lang);
    };
    // Instants of a store book in its store's zone; of a chain book in the zone of the stores
    // trading in its currency (UTC when they differ).
    let zone_for = |p: &PricesEntity| -> String {
        let zones: Vec<&str> = stores
            .values()
            .filter(|s| match &p.scope {
                protocol::seed::ScopeDto::Store { store } => &s.id == store,
                protocol::seed::ScopeDto::Chain(_) => s.currency == p.currency,
            })
            .map(|s| s.timezone.as_str())
            .collect();
        match zones.as_slice() {
            [first, rest @ ..] if rest.iter().all(|z| z == first) => (*first).to_owned(),
            _ => "UTC".to_owned(),
        }
    };
    let mut prices = Vec::new();
    for (_, book) in books.values() {
        let zone = zone_for(book);
        let at = |text: &Option<String>| {
            text.as_deref()
                .and_then(|s| s.parse::<jiff::Timestamp>().ok())
                .map_or_else(|| "–".to_owned(), |ts| local(ts.as_millisecond(), &zone))
        };
        for entry in &book.entries {
            prices.push(PriceRow {
                book: book.book.clone(),
                scope: match &book.scope {
                    protocol::seed::ScopeDto::Store { store } => store.clone(),
                    protocol::seed::ScopeDto::Chain(_) => t.get("var.chain").to_owned(),
                },
                from: at(&entry.from),
                until: at(&entry.to),
                price: t.money(&entry.price, &book.currency),
            });
        }
    }
    let can_write = scopes.contains(&Scope::CatalogWrite);
    let changes = prices::change_rows(t, &changes, can_write);
    let mut currencies: Vec<String> = stores.values().map(|s| s.currency.clone()).collect();
    currencies.sort();
    currencies.dedup();
    let template = Variant {
        f: frame,
        name: entity.variant.name.clone(),
        product: entity.product_name.clone(),
        category: entity
            .category
            .as_deref()
            .map(|c| crate::categories::path_of(&categories, c)),
        identifiers: crate::search::identifier_keys(&entity).join(", "),
        imports: imports
            .iter()
            .map(|i| ImportView {
                label: i.label.clone(),
                batch: i.batch.clone(),
                at: local(i.at_ms, "UTC"),
                undone: i.undone,
                sources: provenance_lines(&i.provenance),
            })
            .collect(),
        edit: VariantEdit {
            tax: entity.variant.tax.clone(),
            taxes,
            channels: entity.variant.channels.clone(),
            category: entity.category.clone().unwrap_or_default(),
            categories: categories
                .keys()
                .map(|id| (id.clone(), crate::categories::path_of(&categories, id)))
                .collect(),
            gtins: entity
                .variant
                .identifiers
                .iter()
                .filter_map(|i| match i {
                    protocol::seed::IdentifierDto::Gtin(g) => Some(g.as_str()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("\n"),
        },
        sku,
        prices,
        changes,
        can_write,
        stores: stores.keys().cloned().collect(),
        currencies,
    };
    page(&template, StatusCode::OK, lang)
}

struct FindingRow {
    kind: &'static str,
    label: &'static str,
    terminal: String,
    shift: String,
    expected: String,
    actual: String,
    difference: String,
}

#[derive(Template)]
#[template(path = "reconciliation.html")]
struct Reconciliation {
    f: Frame,
    stores: Vec<String>,
    store: String,
    day: String,
    tolerance: String,
    status: &'static str,
    status_text: &'static str,
    findings: Vec<FindingRow>,
    missing: Vec<(String, String)>,
    open_shifts: Vec<String>,
    shifts: Vec<(String, String, String, &'static str)>,
}

/// `GET /reconciliation?store=…&day=…&tolerance=…`: a store's business day reconciled (by
/// default the first store the person sees, yesterday in its time zone), recorded in the audit
/// log as the API's read is.
async fn reconciliation(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    uri: OriginalUri,
    Query(params): Query<Params>,
) -> Response {
    let (session, frame, lang) = entered!(
        &hq,
        &headers,
        &uri,
        &params,
        "/reconciliation",
        Some(Scope::ReportsRead)
    );
    let stores = match visible_stores(&hq, &session).await {
        Ok(stores) => stores,
        Err(e) => return failed(e),
    };
    let chosen = params
        .get("store")
        .and_then(|id| stores.iter().find(|s| &s.id == id))
        .or_else(|| stores.first());
    let Some(store) = chosen else {
        return not_found(frame, lang);
    };
    let day = params
        .get("day")
        .and_then(|d| d.parse::<jiff::civil::Date>().ok())
        .unwrap_or_else(|| {
            jiff::Timestamp::now()
                .to_zoned(zone_of(&store.timezone))
                .date()
                .yesterday()
                .unwrap_or_default()
        });
    let tolerance = params.get("tolerance").cloned().unwrap_or_default();
    let tolerance_minor = domain::Money::parse_major(
        if tolerance.trim().is_empty() {
            "0"
        } else {
            tolerance.trim()
        },
        domain::Currency::parse(&store.currency).unwrap_or(domain::Currency::EUR),
    )
    .map(|m| m.minor().max(0))
    .unwrap_or(0);
    let actor = crate::identity::Actor::User(session.user.name.clone()).to_string();
    let report =
        match crate::reconcile::recorded(&hq.db, &actor, &store.id, day, tolerance_minor).await {
            Ok(report) => report,
            Err(e) => return failed(e),
        };
    let t = lang.0;
    let money = |amount: &str| t.money(amount, &store.currency);
    let template = Reconciliation {
        stores: stores.iter().map(|s| s.id.clone()).collect(),
        store: store.id.clone(),
        day: report.day.clone(),
        tolerance,
        status: report.status,
        status_text: t.get(&format!("rec.status.{}", report.status)),
        findings: report
            .findings
            .iter()
            .map(|x| FindingRow {
                kind: x.kind,
                label: t.get(&format!("rec.kind.{}", x.kind)),
                terminal: x.terminal.clone(),
                shift: x.shift.clone(),
                expected: money(&x.expected),
                actual: money(&x.actual),
                difference: money(&x.difference),
            })
            .collect(),
        missing: report
            .missing
            .iter()
            .map(|m| (m.terminal.clone(), format!("{}–{}", m.from_seq, m.to_seq)))
            .collect(),
        open_shifts: report.open_shifts.clone(),
        shifts: report
            .shifts
            .iter()
            .map(|s| {
                (
                    s.terminal.clone(),
                    s.shift.clone(),
                    format!("{}–{}", s.from_seq, s.to_seq),
                    t.get(if s.complete {
                        "rec.complete"
                    } else {
                        "rec.incomplete"
                    }),
                )
            })
            .collect(),
        f: frame,
    };
    page(&template, StatusCode::OK, lang)
}

struct EntryRow {
    when: String,
    actor: String,
    action: String,
    target: String,
    source: String,
    summary: String,
    change: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditLog {
    f: Frame,
    actor: String,
    action: String,
    csv: String,
    entries: Vec<EntryRow>,
    older: Option<String>,
}

/// The lines the audit log page shows at once.
const AUDIT_PAGE: i64 = 100;

/// `GET /audit-log?actor=…&action=…&before=…`: the audit log, newest first, filtered and paged
/// as the API pages it; the reading is itself a line of the log.
async fn audit_log(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    uri: OriginalUri,
    Query(params): Query<Params>,
) -> Response {
    let (session, frame, lang) = entered!(
        &hq,
        &headers,
        &uri,
        &params,
        "/audit-log",
        Some(Scope::AuditRead)
    );
    let given = |name: &str| {
        params
            .get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let filter = crate::identity::AuditFilter {
        actor: given("actor"),
        action: given("action"),
        target: given("target"),
        from_ms: None,
        to_ms: None,
        before_id: given("before").and_then(|b| b.parse().ok()),
    };
    let reader = crate::identity::Actor::User(session.user.name.clone()).to_string();
    let entries =
        match crate::identity::read_audit(&hq.db, &reader, &filter, AUDIT_PAGE, "audit.read").await
        {
            Ok(entries) => entries,
            Err(e) => return failed(e),
        };
    let link = |extra: &[(&str, String)]| {
        let mut pairs: Vec<(&str, String)> = [
            ("actor", &filter.actor),
            ("action", &filter.action),
            ("target", &filter.target),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.clone().map(|v| (name, v)))
        .collect();
        pairs.extend(extra.iter().cloned());
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    };
    let older = (entries.len() as i64 == AUDIT_PAGE)
        .then(|| {
            entries
                .last()
                .map(|e| format!("/audit-log?{}", link(&[("before", e.id.to_string())])))
        })
        .flatten();
    let rows = entries
        .iter()
        .map(|e| {
            let change = [("before", &e.before), ("after", &e.after)]
                .into_iter()
                .filter_map(|(name, value)| value.as_ref().map(|v| format!("{name}: {v}")))
                .collect::<Vec<_>>()
                .join("\n");
            EntryRow {
                when: local(e.at_ms, "UTC"),
                actor: e.actor.clone(),
                action: e.action.clone(),
                target: e.target.clone().unwrap_or_default(),
                source: e.source.clone().unwrap_or_default(),
                summary: change.chars().take(60).collect(),
                change,
            }
        })
        .collect();
    let template = AuditLog {
        actor: filter.actor.clone().unwrap_or_default(),
        action: filter.action.clone().unwrap_or_default(),
        csv: format!(
            "/v1/audit-log?{}",
            link(&[("format", "csv".to_owned()), ("limit", "1000".to_owned())])
        ),
        entries: rows,
        older,
        f: frame,
    };
    page(&template, StatusCode::OK, lang)
}

struct FleetRow {
    id: String,
    store: String,
    acked: i64,
    gaps: String,
    held: usize,
    lost: String,
    key_since: i64,
    parked: i64,
    last_contact: String,
    push_lag: String,
    bytes_today: String,
    state: &'static str,
    state_text: &'static str,
}

#[derive(Template)]
#[template(path = "fleet.html")]
struct Fleet {
    f: Frame,
    silent_minutes: i64,
    rows: Vec<FleetRow>,
    nodes: Vec<NodeRow>,
    licence: crate::licence::Report,
    /// Whether the viewer may ask nodes for support (`support:write`).
    can_support: bool,
    support: Vec<SupportRow>,
    /// Whether HQ keeps the store backups the nodes send (`--store-backups`).
    keeps_backups: bool,
    backups: Vec<StoreBackupRow>,
}

/// A whole store backup HQ keeps, as the fleet page lists it for support.
struct StoreBackupRow {
    store: String,
    name: String,
    size: String,
    received: String,
}

/// A support request as the fleet page lists it.
struct SupportRow {
    id: i64,
    store: String,
    kind: String,
    reason: String,
    asked_by: String,
    asked: String,
    state: String,
}

/// `GET /fleet?silent_minutes=60`: every till with how far HQ holds its ledger, the sequences
/// it lacks, what it holds beyond them, the parked batches and the last contact; a till
/// silent past the threshold set on the page, or with a gap or a parked batch, needs attention.
async fn fleet(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    uri: OriginalUri,
    Query(params): Query<Params>,
) -> Response {
    let (session, frame, lang) = entered!(
        &hq,
        &headers,
        &uri,
        &params,
        "/fleet",
        Some(Scope::FleetRead)
    );
    let can_support = session.user.role.scopes().contains(&Scope::SupportWrite);
    let silent_minutes = params
        .get("silent_minutes")
        .and_then(|m| m.trim().parse::<i64>().ok())
        .filter(|m| (1..=525_600).contains(m))
        .unwrap_or(60);
    let licence = match crate::licence::report(&hq.db, crate::now_ms()).await {
        Ok(report) => report,
        Err(e) => return failed(e),
    };
    let (states, stores, nodes, support, backups) = match async {
        let states = crate::api::terminal_states(&hq.db).await?;
        let mut conn = hq.db.pool.acquire().await?;
        let stores = crate::catalog::stores(&mut conn).await?;
        let nodes: Vec<NodeStatus> = sqlx::query_as(
            "SELECT id, node_version, node_unsynced, node_clock_offset_ms, node_status_ms, node_oldest_unsynced_ms, client_cert_required FROM stores ORDER BY id",
        )
        .fetch_all(&mut *conn)
        .await?;
        let support: Vec<SupportRequestRow> = if can_support {
            sqlx::query_as(
                "SELECT id, store, kind, reason, asked_by, asked_ms, fetched_ms, answered_ms, done
                 FROM support_requests ORDER BY id DESC LIMIT 20",
            )
            .fetch_all(&mut *conn)
            .await?
        } else {
            Vec::new()
        };
        let backups: Vec<(String, String, i64, i64)> =
            if can_support && hq.store_backups.is_some() {
                sqlx::query_as(
                    "SELECT store, name, size, completed_ms FROM store_backups
                     WHERE completed_ms IS NOT NULL ORDER BY store, completed_ms DESC, name DESC",
                )
                .fetch_all(&mut *conn)
                .await?
            } else {
                Vec::new()
            };
        Ok::<_, sqlx::Error>((states, stores, nodes, support, backups))
    }
    .await
    {
        Ok(data) => data,
        Err(e) => return failed(e),
    };
    let t = lang.0;
    let now = crate::now_ms();
    let rows = states
        .into_iter()
        .map(|s| {
            let zone = stores.get(&s.store).map_or("UTC", |c| c.timezone.as_str());
            let silent = s
                .last_contact_ms
                .is_none_or(|at| now - at > silent_minutes * 60_000);
            let attention = silent || !s.gaps.is_empty() || s.parked > 0 || !s.lost.is_empty();
            FleetRow {
                gaps: s
                    .gaps
                    .iter()
                    .map(|(from, to)| format!("{from}–{to}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                lost: s
                    .lost
                    .iter()
                    .map(|(from, to)| format!("{from}–{to}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                key_since: s.key_since_seq,
                last_contact: s
                    .last_contact_ms
                    .map_or_else(|| t.get("dash.never").to_owned(), |ms| local(ms, zone)),
                push_lag: s.push_lag_ms.map_or_else(|| "–".into(), duration_text),
                bytes_today: format!("{:.1} kB", s.bytes_today as f64 / 1000.0),
                state: if attention { "offline" } else { "online" },
                state_text: t.get(if attention {
                    "fleet.attention"
                } else {
                    "fleet.ok"
                }),
                id: s.id,
                store: s.store,
                acked: s.acked_seq,
                held: s.held_beyond_gaps,
                parked: s.parked,
            }
        })
        .collect();
    let nodes = nodes
        .into_iter()
        .map(|(id, version, unsynced, offset, at, oldest, client_cert)| {
            let zone = stores.get(&id).map_or("UTC", |c| c.timezone.as_str());
            // The oldest unsynced event's age when the node reported, told in words.
            let age = oldest
                .zip(at)
                .filter(|_| unsynced.is_some_and(|n| n > 0))
                .map(|(oldest, at)| {
                    format!(
                        " ({} {})",
                        t.get("fleet.oldest"),
                        duration_text(at - oldest)
                    )
                })
                .unwrap_or_default();
            NodeRow {
                version: version.unwrap_or_else(|| "–".into()),
                unsynced: unsynced.map_or_else(|| "–".into(), |n| format!("{n}{age}")),
                offset: offset
                    .map_or_else(|| "–".into(), |ms| format!("{:+.1} s", ms as f64 / 1000.0)),
                skewed: offset.is_some_and(|ms| ms.abs() > CLOCK_SKEW_MS),
                reported: at.map_or_else(|| t.get("dash.never").to_owned(), |ms| local(ms, zone)),
                client_cert: t.get(if client_cert != 0 {
                    "fleet.client_cert_required"
                } else {
                    "fleet.client_cert_optional"
                }),
                id,
            }
        })
        .collect();
    let support = support
        .into_iter()
        .map(
            |(id, store, kind, reason, asked_by, asked_ms, fetched, answered, done)| {
                let zone = stores.get(&store).map_or("UTC", |c| c.timezone.as_str());
                SupportRow {
                    asked: local(asked_ms, zone),
                    state: t
                        .get(&format!(
                            "support.{}",
                            crate::support::state(fetched, answered, done)
                        ))
                        .to_owned(),
                    id,
                    store,
                    kind,
                    reason,
                    asked_by,
                }
            },
        )
        .collect();
    let backups = backups
        .into_iter()
        .map(|(store, name, size, completed_ms)| StoreBackupRow {
            received: local(
                completed_ms,
                stores.get(&store).map_or("UTC", |c| c.timezone.as_str()),
            ),
            size: format!("{:.1} MB", size as f64 / 1_000_000.0),
            store,
            name,
        })
        .collect();
    let template = Fleet {
        f: frame,
        silent_minutes,
        rows,
        nodes,
        licence,
        can_support,
        support,
        keeps_backups: hq.store_backups.is_some(),
        backups,
    };
    page(&template, StatusCode::OK, lang)
}

/// A span of milliseconds as people read it: `850 ms`, `12.3 s`, `4 min`, `3.5 h`.
fn duration_text(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min", ms / 60_000),
        _ => format!("{:.1} h", ms as f64 / 3_600_000.0),
    }
}

/// `(store, version, unsynced events, clock offset ms, reported at ms, oldest unsynced ms, client
/// certificate required)` as
/// HQ keeps them.
type NodeStatus = (
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    i64,
);

/// `(id, store, kind, reason, asked by, asked ms, fetched ms, answered ms, done)` of a support
/// request.
type SupportRequestRow = (
    i64,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// A store node whose clock is further from HQ's is marked on the fleet page.
const CLOCK_SKEW_MS: i64 = 60_000;

/// A store node as it last reported itself.
struct NodeRow {
    id: String,
    version: String,
    unsynced: String,
    offset: String,
    skewed: bool,
    reported: String,
    /// Whether HQ takes the store's credential only with its client certificate.
    client_cert: &'static str,
}

struct ExceptionRow {
    kind: &'static str,
    key: String,
    label: &'static str,
    store: String,
    summary: String,
    state: String,
    state_text: &'static str,
    note: String,
    by: String,
}

#[derive(Template)]
#[template(path = "exceptions.html")]
struct ExceptionsInbox {
    f: Frame,
    rows: Vec<ExceptionRow>,
    can_answer: bool,
}

/// `GET /exceptions`: the inbox of what is not resolved (a store manager: their stores), each
/// acknowledged or resolved with a note through the API.
async fn exceptions_inbox(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    uri: OriginalUri,
    Query(params): Query<Params>,
) -> Response {
    let (session, frame, lang) = entered!(
        &hq,
        &headers,
        &uri,
        &params,
        "/exceptions",
        Some(Scope::ReportsRead)
    );
    let scopes = session.user.role.scopes();
    let mine = (session.user.role == Role::StoreManager).then(|| session.user.stores.clone());
    let found = match crate::exceptions::exceptions(&hq.db, mine.as_deref()).await {
        Ok(found) => found,
        Err(e) => return failed(e),
    };
    let t = lang.0;
    let rows = found
        .into_iter()
        .filter(|e| e.state != "resolved")
        .map(|e| ExceptionRow {
            label: t.get(&format!("exc.kind.{}", e.kind)),
            state_text: t.get(&format!("exc.state.{}", e.state)),
            kind: e.kind,
            key: e.key,
            store: e.store,
            summary: e.summary,
            state: e.state,
            note: e.note.unwrap_or_default(),
            by: e.by.unwrap_or_default(),
        })
        .collect();
    let template = ExceptionsInbox {
        f: frame,
        rows,
        can_answer: scopes.contains(&Scope::ExceptionsWrite),
    };
    page(&template, StatusCode::OK, lang)
}

#[cfg(test)]
mod tests {
    use super::own_path;

    #[test]
    fn a_sign_in_goes_on_only_to_a_path_of_this_site() {
        assert!(own_path("/catalog?q=brot"));
        for other in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "evil",
        ] {
            assert!(!own_path(other), "{other}");
        }
    }
}
