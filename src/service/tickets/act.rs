//! The answers: an action by a person, checked (404, 403, 409 with the allowed actions) and
//! applied by the domain, stored through the commit path.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::commit::{self, Author};
use super::input::{self, ActionRequest};
use super::load_visible;
use crate::auth::AuthUser;
use crate::db::models::TicketRow;
use crate::db::schema::users;
use crate::db::DbConn;
use crate::domain::org::OrgKind;
use crate::domain::ticket::{self, Action, Actor, Command, Refusal};
use crate::error::{AppError, AppResult};
use crate::service::sla::SlaEngine;

/// What an action returns besides the ticket.
pub enum Acted {
    Ticket(TicketRow),
    /// `reveal_phone`: the resident's phone, now on the timeline as revealed.
    Phone(TicketRow, String),
}

/// The API's answer to a refused command.
pub fn refusal_error(r: Refusal, now: DateTime<Utc>) -> AppError {
    match r {
        Refusal::TooSoon { action, until } => {
            let secs = (until - now).num_seconds().max(1);
            AppError::TooManyRequests {
                code: "urge_too_soon",
                message: format!(
                    "本级一小时内已{}过该工单，请 {} 后再试",
                    action.label_zh(),
                    crate::limits::wait_zh(secs)
                ),
                retry_after: Some(secs),
            }
        }
        Refusal::Invalid { code, message } => AppError::validation(code, message),
        Refusal::Forbidden => AppError::Forbidden,
        Refusal::NotAllowed {
            status,
            level,
            action,
            allowed,
        } => {
            let allowed: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
            AppError::Conflict {
                code: "action_not_allowed",
                message: format!(
                    "工单当前状态（{}，{}）不允许“{}”操作",
                    status.as_str(),
                    level.label_zh(),
                    action.label_zh()
                ),
                details: Some(serde_json::json!({ "allowed_actions": allowed })),
            }
        }
        Refusal::NotDue => AppError::conflict("conflict", "工单已被他人处理，请刷新后重试"),
    }
}

/// Applies `action` by `user` to ticket `id`: checks the body (422), visibility (404), role
/// (403), state (409 with the allowed actions), then stores the change only if nobody changed
/// the ticket meanwhile.
pub fn act(
    conn: &mut DbConn,
    user: &AuthUser,
    id: i64,
    action: Action,
    body: &ActionRequest,
    sla: &SlaEngine,
    now: DateTime<Utc>,
) -> AppResult<Acted> {
    let cmd = input::command(action, body)?;
    let (old, relation) = load_visible(conn, user, id)?;
    let before = old.to_domain();
    let transition = ticket::apply(&before, Actor::Person(relation), cmd.clone(), sla, now)
        .map_err(|r| refusal_error(r, now))?;
    match &cmd {
        Command::Assign {
            assignee: Some(a), ..
        } => check_assignee(conn, &old, a.0)?,
        Command::Transfer { compound_id, .. } => check_transfer(conn, &old, compound_id.0)?,
        _ => {}
    }
    let phone = match cmd {
        Command::RevealPhone => Some(
            users::table
                .find(old.resident_id)
                .select(users::phone)
                .first::<Option<String>>(conn)?
                .unwrap_or_default(),
        ),
        _ => None,
    };
    let t = commit::commit(conn, &old, &transition, Author::from(user), sla, now)?;
    if phone.is_some() {
        crate::service::privacy::audit(
            conn,
            crate::service::privacy::Actor::from(user),
            crate::domain::privacy::AuditAction::RevealPhone,
            Some(old.resident_id),
            Some(t.id),
            None,
            crate::db::round_ts(now),
        )?;
    }
    tracing::info!(
        ticket_id = t.id,
        action = action.as_str(),
        user_id = user.id,
        "ticket action"
    );
    Ok(match phone {
        Some(p) => Acted::Phone(t, p),
        None => Acted::Ticket(t),
    })
}

/// A transfer goes to an active compound of the ticket's own community.
fn check_transfer(conn: &mut DbConn, t: &TicketRow, compound_id: i64) -> AppResult<()> {
    let target =
        crate::service::org::require_kind(conn, compound_id, OrgKind::Compound, "compound_id")?;
    if target.parent_id != Some(t.community_id) || target.archived_at.is_some() {
        return Err(AppError::validation(
            "invalid_compound",
            "只能转办给本社区内在用的其他小区",
        ));
    }
    Ok(())
}

/// An assignee must be active staff of the unit accountable now.
fn check_assignee(conn: &mut DbConn, t: &TicketRow, assignee: i64) -> AppResult<()> {
    let unit = t.to_domain().unit_at(t.level);
    let ok: i64 = users::table
        .filter(users::id.eq(assignee))
        .filter(users::role.eq(t.level.staff_role()))
        .filter(users::org_unit_id.eq(unit.0))
        .filter(users::disabled_at.is_null())
        .count()
        .get_result(conn)?;
    if ok == 0 {
        return Err(AppError::validation(
            "invalid_assignee",
            "处理人须为本单位的在职工作人员",
        ));
    }
    Ok(())
}
