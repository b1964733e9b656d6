//! What clients send: a call and the body of an action, checked at the boundary and turned
//! into the domain's command.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::domain::ids::{UnitId, UserId};
use crate::domain::ticket::{Action, Command, EscalationReason, Source, Urgency};
use crate::domain::validate;
use crate::error::{AppError, AppResult};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Location {
    /// Address or description of the place.
    pub text: Option<String>,
    /// WGS 84 degrees, −90–90 (as the browser's geolocation gives it).
    pub latitude: Option<f64>,
    /// WGS 84 degrees, −180–180.
    pub longitude: Option<f64>,
    /// The accuracy of the coordinates in metres (0 < value ≤ 100,000); only with them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy_m: Option<f64>,
}

/// A call: a resident's own, or one staff enter on a resident's behalf or as their own finding.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTicket {
    pub compound_id: i64,
    pub building_id: Option<i64>,
    pub category_id: i64,
    #[serde(default = "default_urgency")]
    pub urgency: Urgency,
    /// 1–80 characters.
    pub title: String,
    /// 1–2,000 characters.
    pub description: String,
    pub location: Option<Location>,
    /// How the call came in. Residents: `app` (the default). Staff: `phone`, `desk`
    /// (service-station walk-in), `visit` (door-to-door), `hotline` (passed on from 12345 or
    /// another platform; needs `external_ref`) or `own_finding` (a problem the branch found
    /// itself; no resident).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// Staff entering a call on a resident's behalf: the resident's mobile number (an account
    /// is created for a new number, as with SMS sign-in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resident_phone: Option<String>,
    /// The resident's name, optional; kept on a new account only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resident_name: Option<String>,
    /// The reference number on the platform a hotline call came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<String>,
    /// Hide the resident's identity from the compound branch (e.g. a complaint about a
    /// neighbour): the compound sees 匿名居民 and no phone; community and street still see the
    /// masked phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hide_identity: Option<bool>,
}

fn default_urgency() -> Urgency {
    Urgency::Normal
}

/// The body of `POST /tickets/{id}/{action}`; which fields an action needs is in its description.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// Text of a comment, the resolution note (resolve), guidance (return), the explanation of a
    /// call up (escalate) or of a dispute, or the rating comment (confirm). Alias: `comment`.
    #[serde(alias = "comment", alias = "text")]
    pub note: Option<String>,
    /// Comment only: an internal note residents never see.
    pub internal: Option<bool>,
    /// Escalate: `beyond_authority` | `needs_resources` | `needs_enforcement` | `cross_compound` | `other`.
    /// Decline: the reason given to the resident.
    pub reason: Option<String>,
    /// Assign: a staff member of the accountable unit.
    pub assignee_id: Option<i64>,
    /// Assign: a named handler instead, e.g. the property company or a volunteer team.
    pub handler: Option<String>,
    /// Confirm: satisfaction 1–5 (residents; the raising level confirms its own finding
    /// without one).
    pub rating: Option<i32>,
    /// Transfer: the compound (of the same community) the ticket belongs to.
    pub compound_id: Option<i64>,
    /// Request extension: the resolve deadline asked for (RFC 3339), at most 10 working days
    /// after the current one.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// An optional one-line text (a handler, a place); absent or blank = none.
fn optional_line(field: &'static str, v: &Option<String>, max: usize) -> AppResult<Option<String>> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Ok(Some(validate::text(field, s, max)?)),
        None => Ok(None),
    }
}

/// An optional note or comment (line breaks allowed); absent or blank = none.
fn optional_text(field: &'static str, v: &Option<String>, max: usize) -> AppResult<Option<String>> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Ok(Some(validate::long_text(field, s, max)?)),
        None => Ok(None),
    }
}

fn required_text(field: &'static str, v: &Option<String>, max: usize) -> AppResult<String> {
    let text = validate::long_text(field, v.as_deref().unwrap_or(""), max)?;
    Ok(text)
}

/// The command an action's body asks for, or 422 naming what is missing or wrong.
pub fn command(action: Action, b: &ActionRequest) -> AppResult<Command> {
    Ok(match action {
        Action::Acknowledge => Command::Acknowledge {
            note: optional_text("note", &b.note, 2000)?,
        },
        Action::Comment => Command::Comment {
            note: required_text("note", &b.note, 2000)?,
            internal: b.internal.unwrap_or(false),
        },
        Action::Assign => {
            let handler = optional_line("handler", &b.handler, 80)?;
            if b.assignee_id.is_none() && handler.is_none() {
                return Err(AppError::validation(
                    "missing_field",
                    "请指定处理人 assignee_id 或处理单位 handler",
                ));
            }
            Command::Assign {
                assignee: b.assignee_id.map(UserId),
                handler,
            }
        }
        Action::Resolve => Command::Resolve {
            note: required_text("note（办结说明）", &b.note, 2000)?,
        },
        Action::Escalate => {
            let reason = b
                .reason
                .as_deref()
                .and_then(EscalationReason::parse)
                .ok_or_else(|| {
                    AppError::validation(
                        "invalid_reason",
                        "上报原因 reason 须为 beyond_authority、needs_resources、needs_enforcement、cross_compound 或 other",
                    )
                })?;
            Command::Escalate {
                reason,
                note: required_text("note（上报说明）", &b.note, 2000)?,
            }
        }
        Action::Decline => Command::Decline {
            reason: required_text("reason（不予受理理由）", &b.reason, 500)?,
        },
        Action::Return => Command::Return {
            note: required_text("note（退回指导意见）", &b.note, 2000)?,
        },
        Action::Confirm => {
            if b.rating.is_some_and(|r| !(1..=5).contains(&r)) {
                return Err(AppError::validation(
                    "invalid_rating",
                    "评分 rating 须为 1–5",
                ));
            }
            Command::Confirm {
                rating: b.rating,
                comment: optional_text("comment", &b.note, 500)?,
            }
        }
        Action::Dispute => Command::Dispute {
            note: optional_text("note", &b.note, 2000)?,
        },
        Action::Withdraw => Command::Withdraw {
            note: optional_text("note", &b.note, 500)?,
        },
        Action::RevealPhone => Command::RevealPhone,
        Action::WaitOnResident => Command::WaitOnResident {
            note: required_text("note（需要居民补充的内容）", &b.note, 2000)?,
        },
        Action::Transfer => Command::Transfer {
            compound_id: UnitId(b.compound_id.ok_or_else(|| {
                AppError::validation("missing_field", "请选择转办的小区 compound_id")
            })?),
            note: required_text("note（转办说明）", &b.note, 2000)?,
        },
        Action::Urge => Command::Urge {
            note: required_text("note（催办意见）", &b.note, 500)?,
        },
        Action::TakeOver => Command::TakeOver {
            note: required_text("note（提级领办理由）", &b.note, 2000)?,
        },
        Action::RequestExtension => Command::RequestExtension {
            note: required_text("note（延期理由）", &b.note, 2000)?,
            due_at: b.due_at.ok_or_else(|| {
                AppError::validation("missing_field", "请填写申请延至的期限 due_at")
            })?,
        },
        Action::ApproveExtension => Command::ApproveExtension {
            note: optional_text("note", &b.note, 2000)?,
        },
        Action::RejectExtension => Command::RejectExtension {
            note: required_text("note（驳回理由）", &b.note, 2000)?,
        },
        Action::UpholdDecline => Command::UpholdDecline {
            note: optional_text("note（复核意见）", &b.note, 2000)?,
        },
        Action::OverturnDecline => Command::OverturnDecline {
            note: optional_text("note（复核意见）", &b.note, 2000)?,
        },
    })
}

/// A call's texts, checked: (title, description, place).
pub struct CheckedCall {
    pub title: String,
    pub description: String,
    pub location_text: Option<String>,
}

/// Validates everything that needs no database before the transaction starts.
pub fn check_call(input: &CreateTicket) -> AppResult<CheckedCall> {
    let title = validate::text("title（标题）", &input.title, 80)?;
    let description = validate::long_text("description（描述）", &input.description, 2000)?;
    let mut location_text = None;
    if let Some(loc) = &input.location {
        location_text = optional_line("location.text", &loc.text, 200)?;
        if loc
            .latitude
            .is_some_and(|v| !(-90.0..=90.0).contains(&v) || v.is_nan())
            || loc
                .longitude
                .is_some_and(|v| !(-180.0..=180.0).contains(&v) || v.is_nan())
        {
            return Err(AppError::validation("invalid_location", "经纬度超出范围"));
        }
        if loc.latitude.is_some() != loc.longitude.is_some() {
            return Err(AppError::validation(
                "invalid_location",
                "经度和纬度须同时提供",
            ));
        }
        if let Some(a) = loc.accuracy_m {
            if !(a.is_finite() && a > 0.0 && a <= 100_000.0) {
                return Err(AppError::validation(
                    "invalid_location",
                    "定位精度 accuracy_m 须为 0–100000 米之间的正数",
                ));
            }
            if loc.latitude.is_none() {
                return Err(AppError::validation(
                    "invalid_location",
                    "定位精度 accuracy_m 须与经纬度一同提供",
                ));
            }
        }
    }
    Ok(CheckedCall {
        title,
        description,
        location_text,
    })
}

/// What an Idempotency-Key is bound to: the request's canonical JSON (field order fixed by the
/// struct), so a retry of the same request matches and any changed field does not.
pub fn request_hash(input: &CreateTicket) -> AppResult<String> {
    let canonical = serde_json::to_vec(input)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("serialising a call: {e}")))?;
    Ok(hex::encode(Sha256::digest(&canonical)))
}
