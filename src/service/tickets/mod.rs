//! Tickets: the call (create) and the answers (actions). The rules are the domain's
//! (`domain::ticket`); every change is stored by `commit`, in one write transaction that checks
//! the version it read.

pub mod act;
pub mod commit;
pub mod create;
pub mod input;
pub mod query;
pub mod totals;
pub mod view;

use diesel::prelude::*;

pub use crate::domain::ticket::no_deadline;
pub use act::{act, Acted};
pub use create::{create, Created};
pub use input::{ActionRequest, CreateTicket, Location};

use crate::auth::AuthUser;
use crate::db::models::TicketRow;
use crate::db::schema::tickets;
use crate::db::DbConn;
use crate::domain::ids::{UnitId, UserId};
use crate::domain::ticket::{self, Relation};
use crate::error::{AppError, AppResult};

pub fn relation_of(user: &AuthUser, t: &TicketRow) -> Relation {
    ticket::relation(
        user.role,
        UserId(user.id),
        user.org_unit_id.map(UnitId),
        &t.to_domain().units(),
    )
}

/// A ticket the caller may see, else 404 (so ids cannot be probed).
pub fn load_visible(
    conn: &mut DbConn,
    user: &AuthUser,
    id: i64,
) -> AppResult<(TicketRow, Relation)> {
    let t: Option<TicketRow> = tickets::table
        .find(id)
        .select(TicketRow::as_select())
        .first(conn)
        .optional()?;
    let t = t.ok_or(AppError::NotFound)?;
    match relation_of(user, &t) {
        Relation::None => Err(AppError::NotFound),
        r => Ok((t, r)),
    }
}
