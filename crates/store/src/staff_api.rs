//! The till's staff and shift endpoints: the staff list, PIN sign-in and sign-out, opening a
//! shift with a counted float, paid-ins and paid-outs, a no-sale drawer opening, the X report
//! at any time and the blind close with its Z report; and the checks every write shares: who is
//! acting, and whether a supervisor's approval is needed.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::ledger::{Approval, CashMovementKind};
use domain::sale::PricedCart;
use domain::staff::{Permission, Role};
use domain::{Money, TerminalId};
use protocol::api::{
    ApprovalRequest, CashRequest, CloseShiftRequest, NoSaleRequest, OpenShiftRequest, SignInRequest,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{ApiError, ApiResult, RawBody, WriteRequest, context, recorded, replay, terminal};
use crate::auth::Caller;
use crate::ledger::Op;
use crate::node::Node;
use crate::shifts;
use crate::staff::{self, ApprovalError, PinError};

/// The staff and shift routes.
pub fn routes() -> Router<Arc<Node>> {
    Router::new()
        .route("/v1/staff", get(staff_list))
        .route("/v1/sign-in", post(sign_in))
        .route("/v1/sign-out", post(sign_out))
        .route("/v1/shifts/current", get(current_shift))
        .route("/v1/shifts/open", post(open_shift))
        .route("/v1/shifts/cash", post(cash))
        .route("/v1/shifts/no-sale", post(no_sale))
        .route("/v1/shifts/report", get(x_report))
        .route("/v1/shifts/report/print", post(print_x_report))
        .route("/v1/shifts/close", post(close_shift))
}

fn detail(key: &str, value: Value) -> serde_json::Map<String, Value> {
    let mut map = serde_json::Map::new();
    map.insert(key.into(), value);
    map
}

fn pin_error(e: PinError, field: &str) -> ApiError {
    match e {
        PinError::UnknownStaff(_) => ApiError::invalid("unknown_staff", field, e),
        // The numbers the message holds travel as fields too, so that the till can say it in
        // its own language.
        PinError::Wrong { attempts_left } => {
            ApiError::new(StatusCode::UNAUTHORIZED, "wrong_pin", &e)
                .at(format!("{field}.pin"))
                .with_detail(detail("attempts_left", json!(attempts_left)))
        }
        PinError::Locked { seconds } => ApiError::new(StatusCode::LOCKED, "locked", &e)
            .at(field)
            .with_detail(detail("retry_after_seconds", json!(seconds))),
        PinError::PepperMissing(_) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "pin_pepper_missing", e)
        }
        PinError::Write(w) => ApiError::from(w),
    }
}

/// The approvals a write needs: none when the actor may do it alone, else a supervisor's PIN.
pub(crate) async fn approve(
    node: &Node,
    terminal: &TerminalId,
    actor: &Caller,
    needed: &[Permission],
    approval: Option<&ApprovalRequest>,
) -> ApiResult<Vec<Approval>> {
    staff::authorise(
        node,
        terminal,
        actor.role,
        needed,
        approval.map(|a| (a.staff.as_str(), a.pin.as_str())),
    )
    .await
    .map_err(|e| match e {
        ApprovalError::Required { permission, .. } => {
            ApiError::approval_required(permission.as_str(), &e)
        }
        ApprovalError::TooLow {
            permission,
            minimum,
            ..
        } => {
            let mut more = detail("permission", json!(permission.as_str()));
            more.insert("minimum_role".into(), json!(minimum.as_str()));
            ApiError::new(StatusCode::FORBIDDEN, "approver_not_allowed", &e)
                .at("approval.staff")
                .with_detail(more)
        }
        ApprovalError::Pin(p) => pin_error(p, "approval"),
    })
}

/// What a priced cart needs approving: a discount above the free percentage.
pub(crate) fn sale_permissions(cart: &PricedCart) -> Vec<Permission> {
    let table = staff::table();
    let large_line = cart
        .lines
        .iter()
        .any(|l| table.is_large_discount(l.line_discount.minor(), l.extended.minor()));
    let after_lines: i64 = cart
        .lines
        .iter()
        .map(|l| l.extended.minor() - l.line_discount.minor())
        .sum();
    let cart_discount: i64 = cart.lines.iter().map(|l| l.cart_discount.minor()).sum();
    if large_line || table.is_large_discount(cart_discount, after_lines) {
        vec![Permission::LargeDiscount]
    } else {
        Vec::new()
    }
}

/// The staff list a till's sign-in screen shows: ids and names for anyone on the LAN (as on a
/// shop's rota), roles only for a signed-in member, so the list does not point at whose PIN
/// opens the most.
async fn staff_list(State(node): State<Arc<Node>>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let signed_in = crate::auth::caller(&node, crate::auth::bearer(&headers).as_deref())
        .await
        .is_ok_and(|c| !c.device);
    let members: Vec<Value> = staff::members(&node)
        .await?
        .into_iter()
        .map(|m| {
            let mut member = json!({"id": m.id.to_string(), "name": m.name});
            if signed_in {
                member["role"] = json!(m.role.as_str());
            }
            member
        })
        .collect();
    Ok(Json(json!({ "staff": members })))
}

async fn sign_in(State(node): State<Arc<Node>>, body: RawBody) -> ApiResult<Json<Value>> {
    let request: SignInRequest = body.parse()?;
    let terminal = terminal(&node, &request.terminal)?;
    let (token, session) = staff::sign_in(&node, &terminal, &request.staff, &request.pin)
        .await
        .map_err(|e| match e {
            PinError::Wrong { .. } => pin_error(e, "").at("pin"),
            other => pin_error(other, "staff"),
        })?;
    let shift = shifts::open_shift(&node.pools.reader, &terminal)
        .await?
        .map(|s| shifts::shift_view(&terminal, &s));
    let permissions: Vec<&str> = staff::table()
        .granted(session.role)
        .into_iter()
        .map(Permission::as_str)
        .collect();
    Ok(Json(json!({
        "session": token,
        "staff": {"id": session.staff.to_string(), "name": session.name, "role": session.role.as_str()},
        "permissions": permissions,
        "shift": shift,
    })))
}

async fn sign_out(State(node): State<Arc<Node>>, headers: HeaderMap) -> ApiResult<Response> {
    let token = crate::auth::bearer(&headers).unwrap_or_default();
    if node.sessions.remove(&token) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_session",
            "no such session",
        )
        .at("Authorization"))
    }
}

#[derive(Deserialize)]
struct TerminalQuery {
    terminal: String,
}

async fn current_shift(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Query(q): Query<TerminalQuery>,
) -> ApiResult<Json<Value>> {
    let terminal = terminal(&node, &q.terminal)?;
    caller.at(&terminal)?;
    match shifts::open_shift(&node.pools.reader, &terminal).await? {
        Some(s) => Ok(Json(shifts::shift_view(&terminal, &s))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_open_shift",
            format!("terminal {terminal} has no open shift"),
        )),
    }
}

fn money(node: &Node, value: &str, field: &str) -> ApiResult<Money> {
    let currency = context(node)?.config.currency;
    let amount = Money::parse_major(value, currency)
        .map_err(|e| ApiError::invalid("invalid_field", field, e))?;
    if amount.minor() < 0 {
        return Err(ApiError::invalid(
            "invalid_field",
            field,
            "must not be negative",
        ));
    }
    Ok(amount)
}

async fn open_shift(
    State(node): State<Arc<Node>>,
    WriteRequest { key, body, caller }: WriteRequest,
) -> ApiResult<Response> {
    let request: OpenShiftRequest = body.parse()?;
    let terminal = terminal(&node, &request.terminal)?;
    let who = caller.at(&terminal)?;
    let float = money(&node, &request.float, "float")?;
    let op = Op::OpenShift {
        terminal,
        staff: who.staff.clone(),
        float,
    };
    Ok(recorded(node.ledger.write(Some(key), op).await?))
}

async fn cash(
    State(node): State<Arc<Node>>,
    WriteRequest { key, body, caller }: WriteRequest,
) -> ApiResult<Response> {
    if let Some(response) = replay(&node, &key).await? {
        return Ok(response);
    }
    let request: CashRequest = body.parse()?;
    let terminal = terminal(&node, &request.terminal)?;
    let actor = caller.at(&terminal)?;
    let (kind, permission) = match request.kind.as_str() {
        "paid-in" => (CashMovementKind::PaidIn, Permission::PaidIn),
        "paid-out" => (CashMovementKind::PaidOut, Permission::PaidOut),
        other => {
            return Err(ApiError::invalid(
                "invalid_field",
                "kind",
                format!("`{other}` is not paid-in or paid-out"),
            ));
        }
    };
    let amount = money(&node, &request.amount, "amount")?;
    if amount.minor() == 0 {
        return Err(ApiError::invalid(
            "invalid_field",
            "amount",
            "must be more than zero",
        ));
    }
    let reason = request.reason.trim();
    if reason.is_empty() {
        return Err(ApiError::invalid(
            "reason_required",
            "reason",
            "a paid-in or paid-out needs a reason",
        ));
    }
    let approvals = approve(
        &node,
        &terminal,
        actor,
        &[permission],
        request.approval.as_ref(),
    )
    .await?;
    let op = Op::Cash {
        terminal,
        kind,
        amount,
        reason: reason.to_owned(),
        approvals,
    };
    Ok(recorded(node.ledger.write(Some(key), op).await?))
}

async fn no_sale(
    State(node): State<Arc<Node>>,
    WriteRequest { key, body, caller }: WriteRequest,
) -> ApiResult<Response> {
    if let Some(response) = replay(&node, &key).await? {
        return Ok(response);
    }
    let request: NoSaleRequest = body.parse()?;
    let terminal = terminal(&node, &request.terminal)?;
    let who = caller.at(&terminal)?;
    let approvals = approve(
        &node,
        &terminal,
        who,
        &[Permission::NoSale],
        request.approval.as_ref(),
    )
    .await?;
    let op = Op::NoSale {
        terminal: terminal.clone(),
        staff: who.staff.clone(),
        approvals,
    };
    let mut written = node.ledger.write(Some(key), op).await?;
    // Recorded first, then the drawer opens through the till's printer (the drawer hangs off
    // it); the answer says whether it did.
    let drawer = match crate::printing::printer_of(&node.pools.reader, &terminal).await? {
        None => "no_printer",
        Some(config) => {
            let mut document = printer::Document::new(config.paper);
            document.push(printer::Block::OpenDrawer);
            match crate::printing::print(&config, document).await {
                Ok(()) => "opened",
                Err(e) => {
                    tracing::warn!(%terminal, error = ?e, "no-sale: the drawer did not open");
                    "printer_unreachable"
                }
            }
        }
    };
    if let Some(body) = written.body.as_object_mut() {
        body.insert("drawer".into(), json!(drawer));
    }
    Ok(recorded(written))
}

/// The X report: the open shift's figures so far. The expected cash is shown to supervisors
/// and above only, so that a cashier's close stays blind.
#[derive(Debug, Deserialize)]
struct ReportQuery {
    terminal: String,
    /// The language of the report's labels (the till's): `en` or `de`; the store's otherwise.
    lang: Option<String>,
}

/// The X report: the open shift's figures so far, as JSON and as the formatted text the
/// printer prints, in the till's language. The expected cash (and the drawer it follows from)
/// is for supervisors and above only, so that a cashier's close stays blind.
async fn x_report(
    State(node): State<Arc<Node>>,
    caller: Caller,
    query: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let q = crate::api::query_params(query)?;
    let terminal = terminal(&node, &q.terminal)?;
    let who = caller.at(&terminal)?;
    let (shift, tally) = open_shift_so_far(&node, &terminal).await?;
    let mut view = shifts::report_view(&terminal, &shift, &tally, None);
    let sees_cash = who.role >= Role::Supervisor;
    let layout = shifts::ReportView {
        paper: printer::Paper::Mm80,
        language: q.lang,
        blind: !sees_cash,
    };
    let document = report_document(&node, &terminal, &shift, &tally, None, &layout).await?;
    if let Some(map) = view.as_object_mut() {
        if sees_cash && let Ok(expected) = tally.expected_cash() {
            map.insert("expected".into(), json!(expected.amount_string()));
        }
        map.insert("text".into(), json!(printer::render_text(&document)));
    }
    Ok(Json(view))
}

/// Prints the X report on the till's printer (supervisors and above: it shows the expected
/// cash).
async fn print_x_report(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Query(q): Query<TerminalQuery>,
) -> ApiResult<Json<Value>> {
    let terminal = terminal(&node, &q.terminal)?;
    let who = caller.at(&terminal)?;
    if who.role < Role::Supervisor {
        return Err(ApiError::approval_required(
            "x-report",
            "the printed X report shows the expected cash: a supervisor or above prints it",
        ));
    }
    let config = crate::printing::required_printer(&node, &terminal).await?;
    let (shift, tally) = open_shift_so_far(&node, &terminal).await?;
    let layout = shifts::ReportView {
        paper: config.paper,
        language: None,
        blind: false,
    };
    let document = report_document(&node, &terminal, &shift, &tally, None, &layout).await?;
    crate::printing::print(&config, document).await?;
    Ok(Json(json!({"printed": true})))
}

/// The open shift of `terminal` and its figures up to the terminal's last event.
async fn open_shift_so_far(
    node: &Node,
    terminal: &TerminalId,
) -> ApiResult<(shifts::OpenShift, domain::shift::ShiftTally)> {
    let shift = shifts::open_shift(&node.pools.reader, terminal)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no_open_shift",
                format!("terminal {terminal} has no open shift"),
            )
        })?;
    let last_seq: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events WHERE terminal = $1")
            .bind(terminal.as_str())
            .fetch_one(&node.pools.reader)
            .await?;
    let mut conn = node.pools.reader.acquire().await?;
    let tally = shifts::tally(
        &mut conn,
        terminal,
        &shift,
        u64::try_from(last_seq).unwrap_or(0),
    )
    .await?;
    Ok((shift, tally))
}

/// The printed report, in the store's language, on `paper`.
async fn report_document(
    node: &Node,
    terminal: &TerminalId,
    shift: &shifts::OpenShift,
    tally: &domain::shift::ShiftTally,
    counted: Option<Money>,
    view: &shifts::ReportView,
) -> ApiResult<printer::Document> {
    let ctx = context(node)?;
    let name: Option<String> = sqlx::query_scalar("SELECT name FROM staff WHERE id = $1")
        .bind(shift.staff.as_str())
        .fetch_optional(&node.pools.reader)
        .await?;
    let document = shifts::report_document(
        (
            &ctx.config,
            terminal,
            shift,
            name.as_deref().unwrap_or(shift.staff.as_str()),
        ),
        tally,
        counted,
        node.clock.now().millis(),
        view,
    )
    .map_err(|e| ApiError::invalid("invalid_count", "counted", e))?;
    Ok(document)
}

async fn close_shift(
    State(node): State<Arc<Node>>,
    WriteRequest { key, body, caller }: WriteRequest,
) -> ApiResult<Response> {
    let request: CloseShiftRequest = body.parse()?;
    let terminal = terminal(&node, &request.terminal)?;
    let who = caller.at(&terminal)?;
    let currency = context(&node)?.config.currency;
    let mut counted = Vec::with_capacity(request.counted.len());
    for (i, c) in request.counted.iter().enumerate() {
        let field = format!("counted[{i}].denomination");
        let value = money(&node, &c.denomination, &field)?;
        if value.minor() == 0 {
            return Err(ApiError::invalid(
                "invalid_field",
                field,
                "must be more than zero",
            ));
        }
        counted.push((value, c.count));
    }
    let counted = domain::shift::count_cash(currency, &counted)
        .map_err(|e| ApiError::invalid("invalid_field", "counted", e))?;
    let op = Op::CloseShift {
        terminal: terminal.clone(),
        staff: who.staff.clone(),
        counted,
    };
    let mut z = node.ledger.write(Some(key), op).await?;
    // The Z report as printed, from the shift as closed (also for a retried request).
    if let Some((shift, up_to, counted)) =
        shifts::last_closed(&node.pools.reader, &terminal).await?
    {
        if z.body["shift"] == json!(shift.id) {
            let mut conn = node.pools.reader.acquire().await?;
            let tally = shifts::tally(&mut conn, &terminal, &shift, up_to).await?;
            let config = crate::printing::printer_of(&node.pools.reader, &terminal).await?;
            let paper = config.as_ref().map_or(printer::Paper::Mm80, |p| p.paper);
            // Paper in the store's language; the screen's copy in the till's.
            let mut view = shifts::ReportView {
                paper,
                language: None,
                blind: false,
            };
            let document =
                report_document(&node, &terminal, &shift, &tally, Some(counted), &view).await?;
            let text = match request.lang {
                Some(lang) => {
                    view.language = Some(lang);
                    let on_screen =
                        report_document(&node, &terminal, &shift, &tally, Some(counted), &view)
                            .await?;
                    printer::render_text(&on_screen)
                }
                None => printer::render_text(&document),
            };
            // The till's printer prints the Z report; a printer that is down does not undo the
            // close, the report stays on screen.
            let printed = match &config {
                None => false,
                Some(config) => match crate::printing::print(config, document).await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(terminal = %terminal, error = ?e, "Z report not printed");
                        false
                    }
                },
            };
            if let Some(map) = z.body.as_object_mut() {
                map.insert("text".into(), json!(text));
                map.insert("printed".into(), json!(printed));
            }
        }
    }
    Ok(recorded(z))
}
