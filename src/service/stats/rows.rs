//! How the rows the metric rules read ([`StatTicket`], [`StatEvent`]: plain domain structs) are
//! selected and loaded: `StatTicket::as_select()` and `StatEvent::as_select()` work as if they
//! were derived.

use chrono::NaiveDateTime;
use diesel::dsl::SqlTypeOf;
use diesel::prelude::*;

use crate::db::schema::{ticket_events, tickets};
use crate::db::MultiBackend;
use crate::domain::metrics::{StatEvent, StatTicket};
use crate::domain::role::ActorRole;
use crate::domain::ticket::{ClosedBy, EventKind, Level, Status};

/// `Selectable` and `Queryable` for a struct whose fields are the same-named columns of
/// `table`, in this order.
macro_rules! select_columns {
    ($ty:ident from $table:ident { $($field:ident: $rust:ty),+ $(,)? }) => {
        impl Selectable<MultiBackend> for $ty {
            type SelectExpression = ($($table::$field,)+);

            fn construct_selection() -> Self::SelectExpression {
                ($($table::$field,)+)
            }
        }

        impl Queryable<SqlTypeOf<($($table::$field,)+)>, MultiBackend> for $ty {
            type Row = ($($rust,)+);

            fn build(($($field,)+): Self::Row) -> diesel::deserialize::Result<Self> {
                Ok($ty { $($field),+ })
            }
        }
    };
}

select_columns!(StatTicket from tickets {
    id: i64,
    status: Status,
    level: Level,
    street_id: i64,
    community_id: i64,
    compound_id: i64,
    category_id: i64,
    escalation_count: i32,
    rating: Option<i32>,
    level_entered_at: NaiveDateTime,
    ack_due_at: Option<NaiveDateTime>,
    resolve_due_at: Option<NaiveDateTime>,
    paused_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    acknowledged_at: Option<NaiveDateTime>,
    resolved_at: Option<NaiveDateTime>,
    closed_at: Option<NaiveDateTime>,
    closed_by: Option<ClosedBy>,
});

select_columns!(StatEvent from ticket_events {
    ticket_id: i64,
    action: EventKind,
    level: Level,
    level_after: Level,
    status_before: Option<Status>,
    reason: Option<String>,
    actor_role: ActorRole,
    created_at: NaiveDateTime,
});
