//! What the pages need to speak the domain's words: the zh-CN labels of every closed set; and
//! whether a map tile server is configured (`[map]`).

use std::collections::BTreeMap;

use actix_web::{get, http::header, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::domain::callback::{CallbackFlag, CallbackReason, CallbackState, CallbackVerdict};
use crate::domain::channel::Channel;
use crate::domain::ledger::LedgerKind;
use crate::domain::org::OrgKind;
use crate::domain::role::Role;
use crate::domain::text_enum::TextEnum;
use crate::domain::ticket::{
    Action, ClosedBy, EscalationReason, EventKind, Level, Source, Status, SystemReason, Urgency,
};
use crate::state::AppState;

/// `{value: label}` for one closed set.
pub type LabelMap = BTreeMap<&'static str, &'static str>;

/// The zh-CN label of every value the API sends, one map per closed set.
#[derive(Debug, Serialize, ToSchema)]
pub struct Labels {
    /// Ticket statuses (`status`).
    #[schema(value_type = BTreeMap<String, String>)]
    pub status: LabelMap,
    /// Accountable levels (`level`, `level_after`).
    #[schema(value_type = BTreeMap<String, String>)]
    pub level: LabelMap,
    #[schema(value_type = BTreeMap<String, String>)]
    pub urgency: LabelMap,
    /// The actions of `POST /tickets/{id}/{action}` and `allowed_actions`.
    #[schema(value_type = BTreeMap<String, String>)]
    pub action: LabelMap,
    /// Timeline entries (`action` of `GET /tickets/{id}/events`).
    #[schema(value_type = BTreeMap<String, String>)]
    pub event_kind: LabelMap,
    /// Why a level called a ticket up (`reason` of an escalate).
    #[schema(value_type = BTreeMap<String, String>)]
    pub escalation_reason: LabelMap,
    /// Coded reasons the system writes on timeline entries.
    #[schema(value_type = BTreeMap<String, String>)]
    pub system_reason: LabelMap,
    #[schema(value_type = BTreeMap<String, String>)]
    pub closed_by: LabelMap,
    /// Account roles; `system` is the sweeper's entries.
    #[schema(value_type = BTreeMap<String, String>)]
    pub role: LabelMap,
    #[schema(value_type = BTreeMap<String, String>)]
    pub org_kind: LabelMap,
    /// Notification channels.
    #[schema(value_type = BTreeMap<String, String>)]
    pub channel: LabelMap,
    /// How a call came in (`source` of a ticket).
    #[schema(value_type = BTreeMap<String, String>)]
    pub source: LabelMap,
    /// Why a closure is called back (`reason` of a callback).
    #[schema(value_type = BTreeMap<String, String>)]
    pub callback_reason: LabelMap,
    /// What looks pressed about a closure (`flag` of a callback).
    #[schema(value_type = BTreeMap<String, String>)]
    pub callback_flag: LabelMap,
    #[schema(value_type = BTreeMap<String, String>)]
    pub callback_state: LabelMap,
    /// What the resident says in a callback (`verdict`; `pressed` and `unreachable` appear as
    /// the `reason` of a callback timeline entry too).
    #[schema(value_type = BTreeMap<String, String>)]
    pub callback_verdict: LabelMap,
    /// The columns of the accountability ledger (`columns` of `GET /stats/ledger`).
    #[schema(value_type = BTreeMap<String, String>)]
    pub ledger_column: LabelMap,
}

fn map<T: TextEnum>() -> LabelMap {
    T::labels().into_iter().collect()
}

pub fn labels() -> Labels {
    let mut role = map::<Role>();
    role.insert("system", "系统");
    Labels {
        status: map::<Status>(),
        level: map::<Level>(),
        urgency: map::<Urgency>(),
        action: map::<Action>(),
        event_kind: map::<EventKind>(),
        escalation_reason: map::<EscalationReason>(),
        system_reason: map::<SystemReason>(),
        closed_by: map::<ClosedBy>(),
        role,
        org_kind: map::<OrgKind>(),
        channel: map::<Channel>(),
        source: map::<Source>(),
        callback_reason: map::<CallbackReason>(),
        callback_flag: map::<CallbackFlag>(),
        callback_state: map::<CallbackState>(),
        callback_verdict: {
            let mut v = map::<CallbackVerdict>();
            v.insert("pressed", "反映被诱导");
            v.insert("unreachable", "无法联系");
            v
        },
        ledger_column: map::<LedgerKind>(),
    }
}

/// The zh-CN labels of every closed set (public; the pages load it once).
#[utoipa::path(tag = "meta", responses((status = 200, body = Labels)))]
#[get("/meta/labels")]
pub async fn get_labels() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(labels())
}

/// The map tile server the pages may use (`[map]` in the configuration).
#[derive(Debug, Serialize, ToSchema)]
pub struct MapMeta {
    /// Web Mercator tile URL template with `{z}`, `{x}`, `{y}`; null = no map is configured and
    /// the pages fetch nothing from outside.
    #[schema(
        example = "https://t0.tianditu.gov.cn/vec_w/wmts?…&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=…"
    )]
    pub tile_url: Option<String>,
    /// The provider's credit to show under the map; null = none.
    pub attribution: Option<String>,
}

/// Whether a map tile server is configured, and its URL template (public; the staff ticket page
/// shows a small map of a ticket's coordinates only when it is).
#[utoipa::path(tag = "meta", responses((status = 200, body = MapMeta)))]
#[get("/meta/map")]
pub async fn get_map(state: web::Data<AppState>) -> HttpResponse {
    let m = &state.settings.map;
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(MapMeta {
            tile_url: some(&m.tile_url),
            attribution: some(&m.attribution),
        })
}

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_labels).service(get_map);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_has_a_label_and_the_seed_words_are_used() {
        let l = labels();
        assert_eq!(l.status.len(), Status::ALL.len());
        assert_eq!(l.event_kind.len(), EventKind::ALL.len());
        assert!(l.status.values().all(|v| !v.is_empty()));
        assert_eq!(l.level["street"], "街党工委");
        assert_eq!(l.level["compound"], "小区党支部");
        assert_eq!(l.level["community"], "社区党支部");
        assert_eq!(l.action["dispute"], l.event_kind["dispute"]);
    }
}
