use std::sync::Arc;

use actix_web::http::header::ContentType;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Serialize;
use tracing::Instrument;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::doc::JsonBody;
use crate::auth::AuthUser;
use crate::domain::ticket::Action;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::service::tickets::query::{self, TicketFilter};
use crate::service::tickets::totals as kept;
use crate::service::tickets::view::{self, EventView, TicketView};
use crate::service::tickets::{self as svc, Acted, ActionRequest, CreateTicket, Created};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct TicketPage {
    pub items: Vec<TicketView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// How many tickets match the filter in all.
    pub total: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActionResponse {
    pub ticket: TicketView,
    /// `reveal-phone` only: the resident's full number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

fn idempotency_key(req: &HttpRequest) -> AppResult<Option<String>> {
    match req.headers().get("Idempotency-Key") {
        None => Ok(None),
        Some(v) => {
            let s = v.to_str().map_err(|_| {
                AppError::validation("invalid_idempotency_key", "Idempotency-Key 格式不正确")
            })?;
            let s = s.trim();
            if s.is_empty() || s.len() > 100 {
                return Err(AppError::validation(
                    "invalid_idempotency_key",
                    "Idempotency-Key 须为 1–100 个字符",
                ));
            }
            Ok(Some(s.to_string()))
        }
    }
}

/// A resident calls (呼): create a ticket at compound level. Send an `Idempotency-Key` header so
/// a retried request never creates a second ticket; a replay answers with the same ticket.
#[utoipa::path(
    tag = "tickets",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Client-chosen key, 1–100 characters")),
    request_body = CreateTicket,
    responses(
        (status = 201, body = TicketView),
        JsonBody,
        (status = 403, description = "Only residents create tickets", body = ErrorBody),
        (status = 409, description = "Idempotency-Key reused for a different request", body = ErrorBody),
        (status = 422, description = "Invalid body or Idempotency-Key", body = ErrorBody),
        (status = 429, description = "The resident created `limits.tickets_per_resident_per_day` tickets in the last 24 hours (`Retry-After`)", body = ErrorBody),
    )
)]
#[post("/tickets")]
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    body: web::Json<CreateTicket>,
) -> AppResult<HttpResponse> {
    let key = idempotency_key(&req)?;
    let input = body.into_inner();
    svc::input::check_call(&input)?;
    let mut attempt = 0;
    let (row, replayed) = loop {
        attempt += 1;
        let (u, i, k, sla) = (user.clone(), input.clone(), key.clone(), state.sla.clone());
        let now = state.clock.now();
        let per_day = state.settings.limits.tickets_per_resident_per_day;
        let (u2, i2, k2) = (u.clone(), i.clone(), k.clone());
        let result = state
            .db
            .write_after(
                move |c| svc::create::reserve(c, &u, &i, k.as_deref(), per_day, now),
                move |c, reserved| svc::create(c, &u2, &i2, k2.as_deref(), reserved, &sla, now),
            )
            .await;
        match result {
            Ok(Created::New(t)) => break (t, false),
            Ok(Created::Replayed(t)) => break (t, true),
            // A concurrent request with the same key (or the same reference sequence) won the
            // race; the retry sees its result.
            Err(AppError::Conflict {
                code: "conflict", ..
            }) if attempt < 3 => continue,
            Err(e) => return Err(e),
        }
    };
    let now = state.clock.now();
    let auto_close = state.sla.auto_close_after;
    let u = user.clone();
    let mut views = state
        .db
        .run(move |c| view::tickets(c, &u, &[row], now, auto_close))
        .await?;
    let v = views.pop().ok_or(AppError::NotFound)?;
    let mut resp = HttpResponse::Created();
    if replayed {
        resp.insert_header(("Idempotent-Replayed", "true"));
    }
    Ok(resp.json(v))
}

/// The caller's queue: residents see their own tickets, staff their unit's scope, admins all.
#[utoipa::path(
    tag = "tickets",
    security(("bearer" = [])),
    params(TicketFilter),
    responses((status = 200, body = TicketPage))
)]
#[get("/tickets")]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<TicketFilter>,
) -> AppResult<HttpResponse> {
    let filter = q.into_inner();
    let now = state.clock.now();
    let auto_close = state.sla.auto_close_after;
    // Read before reading the tickets: a change committed meanwhile makes them unfit to keep.
    let generation = state.live.generation();
    let page_key = kept::page_key(&user, &filter);
    if let Some(kept) = page_key
        .as_deref()
        .and_then(|k| state.pages.get(k, generation))
    {
        if let Some(json) = &kept.json {
            let body = kept_page_json(&user, &kept, json, now)
                .map_err(|e| AppError::Internal(e.into()))?;
            return Ok(HttpResponse::Ok()
                .content_type(ContentType::json())
                .body(body));
        }
        let items = view::build(&user, &kept.page.rows, &kept.lookups, now, auto_close);
        return Ok(HttpResponse::Ok().json(TicketPage {
            items,
            next_cursor: kept.page.next_cursor.clone(),
            total: kept.page.total,
        }));
    }
    let key = kept::scope_key(&user, &filter);
    let known = key.as_deref().and_then(|k| state.totals.get(k, generation));
    let (items, page, lookups) = state
        .db
        .run(move |c| {
            let page = query::list(c, &user, &filter, now, known)?;
            let lookups = view::Lookups::read(c, &page.rows)?;
            let items = view::build(&user, &page.rows, &lookups, now, auto_close);
            Ok((items, page, lookups))
        })
        .await?;
    let out = TicketPage {
        items,
        next_cursor: page.next_cursor.clone(),
        total: page.total,
    };
    if let (Some(key), None) = (key, known) {
        state.totals.put(key, generation, page.total);
    }
    if let Some(key) = page_key {
        // The page key names the role, and a view differs between callers of one role only
        // in its clock fields: the rest is written once here.
        let json = out.items.iter().map(TicketView::kept_json).collect();
        let entry = kept::KeptPage {
            page,
            lookups,
            json,
        };
        state.pages.put(key, generation, Arc::new(entry));
    }
    Ok(HttpResponse::Ok().json(out))
}

/// The response for a kept page, [`TicketPage`]'s JSON: each view's kept part followed by its
/// clock fields at `now` (the `queue_totals` tests compare it with a page read afresh).
fn kept_page_json(
    user: &AuthUser,
    kept: &kept::KeptPage,
    json: &[Vec<u8>],
    now: chrono::DateTime<chrono::Utc>,
) -> serde_json::Result<Vec<u8>> {
    // The kept parts plus about a hundred bytes of clock fields per view.
    let size = json.iter().map(|j| j.len() + 128).sum::<usize>() + 96;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(br#"{"items":["#);
    for (i, (row, part)) in kept.page.rows.iter().zip(json).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        view::write_kept_view(&mut out, part, &view::Clock::of(user, row, now))?;
    }
    out.extend_from_slice(br#"],"next_cursor":"#);
    serde_json::to_writer(&mut out, &kept.page.next_cursor)?;
    out.extend_from_slice(br#","total":"#);
    serde_json::to_writer(&mut out, &kept.page.total)?;
    out.push(b'}');
    Ok(out)
}

/// One ticket, with the actions the caller may take now.
#[utoipa::path(
    tag = "tickets",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = TicketView), (status = 404, description = "Missing or not visible to the caller", body = ErrorBody))
)]
#[get("/tickets/{id}")]
pub async fn get_one(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let now = state.clock.now();
    let auto_close = state.sla.auto_close_after;
    let v = state
        .db
        .run(move |c| {
            let (t, _) = svc::load_visible(c, &user, id)?;
            view::tickets(c, &user, &[t], now, auto_close)
        })
        .await?;
    Ok(HttpResponse::Ok().json(v.into_iter().next()))
}

/// The timeline: who did what, when, at which level. Residents never see internal notes.
#[utoipa::path(
    tag = "tickets",
    security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<EventView>))
)]
#[get("/tickets/{id}/events")]
pub async fn events(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let v = state
        .db
        .run(move |c| {
            let (t, _) = svc::load_visible(c, &user, id)?;
            let rows = query::events(c, id)?;
            view::events(c, &user, Some(&t), rows)
        })
        .await?;
    Ok(HttpResponse::Ok().json(v))
}

/// Act on a ticket. Residents: `comment`, `confirm` (`rating` 1–5, optional `comment`),
/// `dispute`, `withdraw`. Staff of the accountable level: `acknowledge` (应), `comment`
/// (`internal: true` for a note residents never see), `assign` (`assignee_id` or `handler`),
/// `resolve` (`note` required), `escalate` (呼: `reason` + `note`), `decline` (`reason`),
/// `return` (community/street: `note`, once per level; in `decline_review` it overturns the
/// decline and sends the ticket back down with guidance), `reveal-phone`, `wait-on-resident`,
/// `transfer` (`compound_id` of the same community + `note`; at most twice), `request-extension`
/// (`note` + `due_at`, at most 10 working days later; one pending, two granted per level),
/// `uphold-decline` / `overturn-decline` (decline review, optional `note`), `confirm` of an own
/// finding by the level that raised it (no rating). Staff of a level above, in scope: `urge`
/// (`note`; once per level and hour, else 429 `urge_too_soon`), `take-over` (`note` = reason),
/// `approve-extension` / `reject-extension` (the level directly above; reject needs `note`).
#[utoipa::path(
    tag = "tickets",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path),
        ("action" = String, Path, description = "acknowledge | comment | assign | resolve | escalate | decline | return | confirm | dispute | withdraw | reveal-phone | wait-on-resident | transfer | urge | take-over | request-extension | approve-extension | reject-extension | uphold-decline | overturn-decline"),
    ),
    request_body = ActionRequest,
    responses(
        (status = 200, body = ActionResponse),
        (status = 403, description = "The caller's role may not take this action on this ticket", body = ErrorBody),
        (status = 404, description = "No such ticket or action, or the ticket is not visible to the caller", body = ErrorBody),
        (status = 409, description = "Not allowed in the current status (details.allowed_actions), or changed meanwhile", body = ErrorBody),
        (status = 422, description = "Malformed body, or a field the action needs is missing or invalid", body = ErrorBody),
        (status = 429, description = "`urge_too_soon`: this level urged the ticket within the last hour (`Retry-After`)", body = ErrorBody),
    )
)]
#[post("/tickets/{id}/{action}")]
pub async fn act(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(i64, String)>,
    req: HttpRequest,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let (id, action) = path.into_inner();
    let action = Action::from_path(&action).ok_or(AppError::NotFound)?;
    crate::error::check_json_content_type(&req, &body)?;
    // Actions without fields may be posted with an empty body.
    let body: ActionRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ActionRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| AppError::validation("invalid_json", format!("请求数据格式不正确：{e}")))?
    };
    let now = state.clock.now();
    let auto_close = state.sla.auto_close_after;
    let sla = state.sla.clone();
    let u = user.clone();
    let span = tracing::info_span!("ticket_action", ticket_id = id, action = action.as_str());
    async move {
        let outcome = state
            .db
            .write(move |c| svc::act(c, &u, id, action, &body, &sla, now))
            .await?;
        let (row, phone) = match outcome {
            Acted::Ticket(t) => (t, None),
            Acted::Phone(t, p) => (t, Some(p)),
        };
        let ticket = state
            .db
            .run(move |c| view::tickets(c, &user, &[row], now, auto_close))
            .await?
            .into_iter()
            .next()
            .ok_or(AppError::NotFound)?;
        Ok(HttpResponse::Ok().json(ActionResponse { ticket, phone }))
    }
    .instrument(span)
    .await
}

/// The ticket routes and their photos. `act` matches any `POST /tickets/{id}/{word}`, so it
/// comes after the photo upload; `get_one` after the other reads, to keep the specific first.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create)
        .service(list)
        .service(events)
        .configure(super::attachments::configure)
        .service(get_one)
        .service(act);
}
