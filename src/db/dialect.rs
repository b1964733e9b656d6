//! What differs between SQLite and PostgreSQL in the SQL written by hand: placeholders, the
//! hour a timestamp falls in, planner hints, and multi-row INSERTs. Everything else runs
//! unchanged on both through [`DbConn`]; code outside `db/` asks here instead of matching on
//! the connection.

use chrono::NaiveDateTime;
use diesel::backend::Backend;
use diesel::connection::SimpleConnection;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{BoxedSqlQuery, InsertStatement, QueryFragment, SqlQuery};
use diesel::query_dsl::methods::ExecuteDsl;
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, HasSqlType, Text, Timestamp};
use diesel::sqlite::Sqlite;
use diesel::{Insertable, Table};

use super::{DbConn, Engine};
use crate::error::AppResult;

impl DbConn {
    pub fn engine(&self) -> Engine {
        match self {
            DbConn::Sqlite(_) => Engine::Sqlite,
            DbConn::Pg(_) => Engine::Postgres,
        }
    }
}

enum Bind {
    Id(i64),
    Ts(NaiveDateTime),
    Text(String),
}

/// SQL text for one backend, with the values bound to its placeholders in order.
pub struct Sql {
    engine: Engine,
    text: String,
    binds: Vec<Bind>,
}

impl Sql {
    /// An empty statement for the backend of `conn`.
    pub fn new(conn: &DbConn) -> Sql {
        Sql {
            engine: conn.engine(),
            text: String::new(),
            binds: Vec::new(),
        }
    }

    pub fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    fn placeholder(&mut self, b: Bind) -> &mut Self {
        self.binds.push(b);
        match self.engine {
            Engine::Sqlite => self.text.push('?'),
            // PostgreSQL numbers its placeholders.
            Engine::Postgres => {
                self.text.push('$');
                self.text.push_str(&self.binds.len().to_string());
            }
        }
        self
    }

    pub fn id(&mut self, v: i64) -> &mut Self {
        self.placeholder(Bind::Id(v))
    }

    pub fn ts(&mut self, v: NaiveDateTime) -> &mut Self {
        self.placeholder(Bind::Ts(v))
    }

    pub fn text(&mut self, v: &str) -> &mut Self {
        self.placeholder(Bind::Text(v.to_string()))
    }

    /// Asks SQLite to read `index` (` INDEXED BY …`, after the table name): its planner may
    /// otherwise pick an index that reads far more rows. PostgreSQL has no such hint.
    pub fn index_hint(&mut self, index: &str) -> &mut Self {
        if self.engine == Engine::Sqlite {
            self.push(" INDEXED BY ").push(index);
        }
        self
    }

    /// ` JOIN `, in the written order: SQLite may otherwise start from the other table
    /// (`CROSS JOIN` fixes its order); PostgreSQL plans joins well on its own.
    pub fn join_in_order(&mut self) -> &mut Self {
        self.push(match self.engine {
            Engine::Sqlite => " CROSS JOIN ",
            Engine::Postgres => " JOIN ",
        })
    }

    fn boxed<DB>(&self) -> BoxedSqlQuery<'_, DB, SqlQuery>
    where
        DB: Backend + HasSqlType<BigInt> + HasSqlType<Timestamp> + HasSqlType<Text>,
        i64: ToSql<BigInt, DB>,
        NaiveDateTime: ToSql<Timestamp, DB>,
        String: ToSql<Text, DB>,
    {
        let mut q = diesel::sql_query(self.text.clone()).into_boxed();
        for b in &self.binds {
            q = match b {
                Bind::Id(v) => q.bind::<BigInt, _>(*v),
                Bind::Ts(v) => q.bind::<Timestamp, _>(*v),
                Bind::Text(v) => q.bind::<Text, _>(v.clone()),
            };
        }
        q
    }

    pub fn execute(&self, conn: &mut DbConn) -> AppResult<usize> {
        Ok(match conn {
            DbConn::Sqlite(c) => self.boxed::<Sqlite>().execute(c)?,
            DbConn::Pg(c) => self.boxed::<Pg>().execute(c)?,
        })
    }

    pub fn load<R>(&self, conn: &mut DbConn) -> AppResult<Vec<R>>
    where
        R: QueryableByName<Sqlite> + QueryableByName<Pg> + 'static,
    {
        Ok(match conn {
            DbConn::Sqlite(c) => self.boxed::<Sqlite>().load(c)?,
            DbConn::Pg(c) => self.boxed::<Pg>().load(c)?,
        })
    }
}

/// A count per UTC hour.
#[derive(Debug, QueryableByName)]
pub struct HourCount {
    /// `YYYY-MM-DD HH` in UTC.
    #[diesel(sql_type = Text)]
    pub hour: String,
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

/// `SELECT <hour of column> AS hour, COUNT(*) AS n <from> GROUP BY <hour of column>`, loading
/// [`HourCount`]s; `from` writes the FROM and WHERE clauses.
pub fn count_per_utc_hour(
    conn: &mut DbConn,
    column: &str,
    from: impl FnOnce(&mut Sql),
) -> AppResult<Vec<HourCount>> {
    let mut q = Sql::new(conn);
    match q.engine {
        Engine::Sqlite => {
            // Diesel stores SQLite timestamps as text `YYYY-MM-DD HH:MM:SS[.ffffff]`.
            let bucket = format!("substr({column}, 1, 13)");
            q.push("SELECT ")
                .push(&bucket)
                .push(" AS hour, COUNT(*) AS n");
            from(&mut q);
            q.push(" GROUP BY ").push(&bucket);
        }
        Engine::Postgres => {
            // Truncate per row (cheap), format per hour only (to_char per row is not).
            let bucket = format!("date_trunc('hour', {column})");
            q.push("SELECT to_char(h, 'YYYY-MM-DD HH24') AS hour, n FROM (SELECT ")
                .push(&bucket)
                .push(" AS h, COUNT(*) AS n");
            from(&mut q);
            q.push(" GROUP BY ").push(&bucket).push(") AS b");
        }
    }
    q.load(conn)
}

/// Rows per INSERT statement: SQLite allows 32,766 bound parameters, and 500 rows of up to 64
/// columns stay below.
const INSERT_CHUNK: usize = 500;

/// Rows that SQLite inserts one at a time with the one-row statement diesel keeps prepared
/// rather than with a multi-row statement compiled anew on each call (a call's few outbox rows:
/// compiling their INSERT cost more than running it). No round trips to save on SQLite.
const SQLITE_ROW_BY_ROW: usize = 8;

/// Inserts `rows` into `table` with multi-row INSERTs, which `MultiConnection` does not offer:
/// each statement goes to the backend's own connection. Name the row type at the call
/// (`insert_all::<_, Row>(…)`): inferring it from `rows` overflows the trait solver. A single
/// row (on SQLite up to [`SQLITE_ROW_BY_ROW`]) is inserted row by row: diesel keeps the one-row
/// statement prepared, never a slice's.
pub fn insert_all<'r, T, V>(conn: &mut DbConn, table: T, rows: &'r [V]) -> AppResult<()>
where
    T: Table + Copy,
    &'r [V]: Insertable<T>,
    InsertStatement<T, <&'r [V] as Insertable<T>>::Values>:
        ExecuteDsl<SqliteConnection> + ExecuteDsl<PgConnection>,
    &'r V: Insertable<T>,
    InsertStatement<T, <&'r V as Insertable<T>>::Values>:
        ExecuteDsl<SqliteConnection> + ExecuteDsl<PgConnection>,
{
    let row_by_row = match conn {
        DbConn::Sqlite(_) => rows.len() <= SQLITE_ROW_BY_ROW,
        DbConn::Pg(_) => rows.len() == 1,
    };
    if row_by_row {
        for one in rows {
            let q = diesel::insert_into(table).values(one);
            match conn {
                DbConn::Sqlite(c) => q.execute(c)?,
                DbConn::Pg(c) => q.execute(c)?,
            };
        }
        return Ok(());
    }
    for chunk in rows.chunks(INSERT_CHUNK) {
        let q = diesel::insert_into(table).values(chunk);
        match conn {
            DbConn::Sqlite(c) => q.execute(c)?,
            DbConn::Pg(c) => q.execute(c)?,
        };
    }
    Ok(())
}

/// Inserts new tickets with multi-row INSERTs and returns their ids in order (bulk loads: the
/// benchmarks' fills; the service stores one ticket at a time through the commit path).
pub fn insert_tickets_returning_ids(
    conn: &mut DbConn,
    rows: &[super::models::TicketRow],
) -> AppResult<Vec<i64>> {
    use super::schema::tickets;
    let mut ids = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(INSERT_CHUNK) {
        let q = diesel::insert_into(tickets::table)
            .values(chunk)
            .returning(tickets::id);
        ids.extend(match conn {
            DbConn::Sqlite(c) => q.get_results::<i64>(c)?,
            DbConn::Pg(c) => q.get_results::<i64>(c)?,
        });
    }
    Ok(ids)
}

/// Inserts timeline events with multi-row INSERTs and returns their ids in the rows' order.
/// Neither engine promises the order of RETURNING's rows, but both number a statement's rows in
/// the order they are listed: sorted, the ids line up with the rows (checked by ticket).
pub fn insert_events_returning_ids(
    conn: &mut DbConn,
    rows: &[super::models::NewTicketEvent],
) -> AppResult<Vec<i64>> {
    use super::schema::ticket_events;
    if let [one] = rows {
        // One row: a statement the connection keeps prepared (a slice's is built each time).
        let q = diesel::insert_into(ticket_events::table)
            .values(one)
            .returning(ticket_events::id);
        return Ok(vec![match conn {
            DbConn::Sqlite(c) => q.get_result(c)?,
            DbConn::Pg(c) => q.get_result(c)?,
        }]);
    }
    let mut ids = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(INSERT_CHUNK) {
        let q = diesel::insert_into(ticket_events::table)
            .values(chunk)
            .returning((ticket_events::id, ticket_events::ticket_id));
        let mut got: Vec<(i64, i64)> = match conn {
            DbConn::Sqlite(c) => q.get_results(c)?,
            DbConn::Pg(c) => q.get_results(c)?,
        };
        got.sort_unstable();
        if got.len() != chunk.len() || got.iter().zip(chunk).any(|(g, r)| g.1 != r.ticket_id) {
            return Err(anyhow::anyhow!("event ids returned out of the rows' order").into());
        }
        ids.extend(got.into_iter().map(|(id, _)| id));
    }
    Ok(ids)
}

/// Refreshes the planner's statistics of the tickets (after a bulk load).
pub fn analyze_tickets(conn: &mut DbConn) -> AppResult<()> {
    match conn {
        DbConn::Sqlite(c) => c.batch_execute("ANALYZE")?,
        DbConn::Pg(c) => c.batch_execute("VACUUM ANALYZE tickets")?,
    }
    Ok(())
}

#[derive(QueryableByName)]
struct SqlitePlanRow {
    #[diesel(sql_type = Text)]
    detail: String,
}

#[derive(QueryableByName)]
struct PgPlanRow {
    #[diesel(sql_type = Text)]
    #[diesel(column_name = "QUERY PLAN")]
    line: String,
}

/// The query plan of `sql` as the engine prints it (PostgreSQL runs it: `EXPLAIN ANALYZE`).
pub fn explain(conn: &mut DbConn, sql: &str) -> AppResult<Vec<String>> {
    Ok(match conn {
        DbConn::Sqlite(c) => diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
            .load::<SqlitePlanRow>(c)?
            .into_iter()
            .map(|r| r.detail)
            .collect(),
        DbConn::Pg(c) => diesel::sql_query(format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"))
            .load::<PgPlanRow>(c)?
            .into_iter()
            .map(|r| r.line)
            .collect(),
    })
}

/// `UPDATE tickets SET <changes> WHERE id = ? AND version = ?`, kept prepared by the
/// connection. diesel compiles every UPDATE statement again on each run (an optional changeset
/// may change its columns), so a sweep compiled one UPDATE per ticket; this statement is written
/// here from the changeset's own SQL and reports nothing that stops the cache, which keys it by
/// its text. Only for changesets without optional or skipped columns (their text never changes).
struct VersionedUpdate<C> {
    changes: C,
    id: i64,
    version: i32,
}

impl<C, DB> QueryFragment<DB> for VersionedUpdate<C>
where
    DB: Backend + HasSqlType<BigInt> + HasSqlType<diesel::sql_types::Integer>,
    C: QueryFragment<DB>,
    i64: ToSql<BigInt, DB>,
    i32: ToSql<diesel::sql_types::Integer, DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> diesel::QueryResult<()> {
        out.push_sql("UPDATE tickets SET ");
        self.changes.walk_ast(out.reborrow())?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<BigInt, _>(&self.id)?;
        out.push_sql(" AND version = ");
        out.push_bind_param::<diesel::sql_types::Integer, _>(&self.version)?;
        Ok(())
    }
}

impl<C> diesel::query_builder::QueryId for VersionedUpdate<C> {
    type QueryId = ();
    // Cached by its SQL text, not by type.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<C> RunQueryDsl<SqliteConnection> for VersionedUpdate<C> {}
impl<C> RunQueryDsl<PgConnection> for VersionedUpdate<C> {}

/// Applies `changes` to the ticket `id` if its version is still `version`; returns the rows
/// changed (0 or 1). The statement stays prepared (see [`VersionedUpdate`]).
pub fn update_ticket_if_version<C>(
    conn: &mut DbConn,
    changes: C,
    id: i64,
    version: i32,
) -> AppResult<usize>
where
    C: AsChangeset<Target = super::schema::tickets::table>,
    C::Changeset: QueryFragment<Sqlite> + QueryFragment<Pg>,
{
    let q = VersionedUpdate {
        changes: changes.as_changeset(),
        id,
        version,
    };
    Ok(match conn {
        DbConn::Sqlite(c) => q.execute(c)?,
        DbConn::Pg(c) => q.execute(c)?,
    })
}

/// Several [`VersionedUpdate`]s in one PostgreSQL statement: one data-modifying `WITH` part
/// per ticket (each its own row, which PostgreSQL allows), answering how many rows changed.
/// A sweep's chunk on PostgreSQL paid a round trip per ticket otherwise, more than the
/// UPDATEs themselves cost the server. SQLite has no data-modifying `WITH` and no round trips.
struct VersionedUpdates<C>(Vec<VersionedUpdate<C>>);

impl<C: QueryFragment<Pg>> QueryFragment<Pg> for VersionedUpdates<C> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, Pg>,
    ) -> diesel::QueryResult<()> {
        for (i, u) in self.0.iter().enumerate() {
            out.push_sql(&format!("{} u{i} AS (", if i == 0 { "WITH" } else { "," }));
            u.walk_ast(out.reborrow())?;
            out.push_sql(" RETURNING id)");
        }
        out.push_sql(" SELECT COUNT(*) FROM (");
        for i in 0..self.0.len() {
            if i > 0 {
                out.push_sql(" UNION ALL ");
            }
            out.push_sql(&format!("SELECT id FROM u{i}"));
        }
        out.push_sql(") AS changed");
        Ok(())
    }
}

impl<C> diesel::query_builder::QueryId for VersionedUpdates<C> {
    type QueryId = ();
    // Cached by its SQL text: one statement per chunk size.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<C> diesel::query_builder::Query for VersionedUpdates<C> {
    type SqlType = BigInt;
}

impl<C> RunQueryDsl<PgConnection> for VersionedUpdates<C> {}

/// [`update_ticket_if_version`] for each `(changes, id, version)`; returns the rows changed in
/// all (as many as items when nobody changed any of the tickets meanwhile). PostgreSQL: one
/// statement; SQLite: one prepared UPDATE per ticket.
pub fn update_tickets_if_version<C>(
    conn: &mut DbConn,
    items: Vec<(C, i64, i32)>,
) -> AppResult<usize>
where
    C: AsChangeset<Target = super::schema::tickets::table>,
    C::Changeset: QueryFragment<Sqlite> + QueryFragment<Pg>,
{
    if items.is_empty() {
        return Ok(0);
    }
    let updates: Vec<VersionedUpdate<C::Changeset>> = items
        .into_iter()
        .map(|(changes, id, version)| VersionedUpdate {
            changes: changes.as_changeset(),
            id,
            version,
        })
        .collect();
    Ok(match conn {
        DbConn::Sqlite(c) => {
            let mut changed = 0;
            for u in updates {
                changed += u.execute(c)?;
            }
            changed
        }
        DbConn::Pg(c) => {
            let changed: i64 = VersionedUpdates(updates).get_result(c)?;
            usize::try_from(changed).unwrap_or(0)
        }
    })
}

/// `UPDATE ticket_sequences SET last_value = last_value + 1 … RETURNING last_value`, kept
/// prepared by the connection (diesel compiles every UPDATE again; this one runs on every
/// create).
struct BumpSequence<'a> {
    street_id: i64,
    day: &'a str,
}

impl<DB> QueryFragment<DB> for BumpSequence<'_>
where
    DB: Backend + HasSqlType<BigInt> + HasSqlType<Text>,
    i64: ToSql<BigInt, DB>,
    str: ToSql<Text, DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> diesel::QueryResult<()> {
        out.push_sql("UPDATE ticket_sequences SET last_value = last_value + 1 WHERE street_id = ");
        out.push_bind_param::<BigInt, _>(&self.street_id)?;
        out.push_sql(" AND day = ");
        out.push_bind_param::<Text, _>(self.day)?;
        out.push_sql(" RETURNING last_value");
        Ok(())
    }
}

impl diesel::query_builder::QueryId for BumpSequence<'_> {
    type QueryId = ();
    // Cached by its SQL text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl diesel::query_builder::Query for BumpSequence<'_> {
    type SqlType = diesel::sql_types::Integer;
}

impl RunQueryDsl<SqliteConnection> for BumpSequence<'_> {}
impl RunQueryDsl<PgConnection> for BumpSequence<'_> {}

/// The street's next number of the day `day` (`None`: the day has no row yet).
pub fn bump_ticket_sequence(
    conn: &mut DbConn,
    street_id: i64,
    day: &str,
) -> AppResult<Option<i32>> {
    let q = BumpSequence { street_id, day };
    Ok(match conn {
        DbConn::Sqlite(c) => q.get_result(c).optional()?,
        DbConn::Pg(c) => q.get_result(c).optional()?,
    })
}

/// One row of [`view_lookups`]: what a ticket's view shows besides the ticket row.
#[derive(Debug, QueryableByName)]
pub struct ViewLookup {
    /// Which of [`LookupKind`] (its number, as the statement writes it).
    #[diesel(sql_type = diesel::sql_types::Integer)]
    kind: i32,
    /// The unit's, person's or category's id; for an attachment its ticket's.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// A unit's name, a person's display name, a category's code.
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub a: Option<String>,
    /// A person's phone, a category's name.
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub b: Option<String>,
    /// A person's role.
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub role: Option<crate::domain::role::Role>,
}

/// What a [`ViewLookup`] row is; the numbers are the ones [`VIEW_LOOKUP_PARTS`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupKind {
    Unit = 1,
    Person = 2,
    Category = 3,
    Attachment = 4,
}

impl ViewLookup {
    /// `None` only for a number the statement does not write.
    pub fn kind(&self) -> Option<LookupKind> {
        [
            LookupKind::Unit,
            LookupKind::Person,
            LookupKind::Category,
            LookupKind::Attachment,
        ]
        .into_iter()
        .find(|k| *k as i32 == self.kind)
    }
}

/// The ids [`view_lookups`] looks up.
pub struct ViewIds<'a> {
    pub units: &'a [i64],
    pub people: &'a [i64],
    pub categories: &'a [i64],
    /// Tickets whose attachments are counted.
    pub tickets: &'a [i64],
}

/// The four lookups of a page of ticket views as one statement of fixed text, which the
/// connection keeps prepared: on PostgreSQL one round trip instead of four, on SQLite no
/// statement compiled per page (diesel compiles an `IN (…)` list again on every run). The id
/// lists travel as arrays on PostgreSQL and as JSON arrays read by `json_each` on SQLite.
struct ViewLookups<'a>(ViewIds<'a>);

const VIEW_LOOKUP_PARTS: [&str; 4] = [
    "SELECT 1 AS kind, id, name AS a, CAST(NULL AS TEXT) AS b, CAST(NULL AS TEXT) AS role \
     FROM org_units WHERE id ",
    " UNION ALL SELECT 2, id, display_name, phone, role FROM users WHERE id ",
    " UNION ALL SELECT 3, id, code, name, NULL FROM categories WHERE id ",
    " UNION ALL SELECT 4, ticket_id, NULL, NULL, NULL FROM ticket_attachments WHERE ticket_id ",
];

impl ViewLookups<'_> {
    fn lists(&self) -> [&[i64]; 4] {
        let ids = &self.0;
        [ids.units, ids.people, ids.categories, ids.tickets]
    }
}

impl QueryFragment<Pg> for ViewLookups<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, Pg>,
    ) -> diesel::QueryResult<()> {
        for (part, ids) in VIEW_LOOKUP_PARTS.iter().zip(self.lists()) {
            out.push_sql(part);
            out.push_sql("= ANY(");
            out.push_bind_param::<diesel::sql_types::Array<BigInt>, _>(ids)?;
            out.push_sql(")");
        }
        Ok(())
    }
}

/// SQLite: the lists as JSON arrays, bound as text.
struct JsonIds([String; 4]);

impl QueryFragment<Sqlite> for JsonIds {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, Sqlite>,
    ) -> diesel::QueryResult<()> {
        for (part, json) in VIEW_LOOKUP_PARTS.iter().zip(&self.0) {
            out.push_sql(part);
            out.push_sql("IN (SELECT value FROM json_each(");
            out.push_bind_param::<Text, _>(json)?;
            out.push_sql("))");
        }
        Ok(())
    }
}

impl diesel::query_builder::QueryId for ViewLookups<'_> {
    type QueryId = ();
    // Cached by its SQL text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl diesel::query_builder::QueryId for JsonIds {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl diesel::query_builder::Query for ViewLookups<'_> {
    type SqlType = diesel::sql_types::Untyped;
}

impl diesel::query_builder::Query for JsonIds {
    type SqlType = diesel::sql_types::Untyped;
}

impl RunQueryDsl<PgConnection> for ViewLookups<'_> {}
impl RunQueryDsl<SqliteConnection> for JsonIds {}

/// Names of units, people and categories, and the tickets' attachments, for ticket views.
pub fn view_lookups(conn: &mut DbConn, ids: ViewIds<'_>) -> AppResult<Vec<ViewLookup>> {
    let q = ViewLookups(ids);
    Ok(match conn {
        DbConn::Pg(c) => q.load(c)?,
        DbConn::Sqlite(c) => {
            let json = q.lists().map(|ids| {
                let list: Vec<String> = ids.iter().map(i64::to_string).collect();
                format!("[{}]", list.join(","))
            });
            JsonIds(json).load(c)?
        }
    })
}

#[cfg(test)]
mod tests {
    use super::{LookupKind, VIEW_LOOKUP_PARTS};

    /// Each part of the view's statement selects the number of its kind, in `LookupKind`'s order.
    #[test]
    fn view_lookup_parts_write_their_kinds_numbers() {
        let kinds = [
            LookupKind::Unit,
            LookupKind::Person,
            LookupKind::Category,
            LookupKind::Attachment,
        ];
        for (part, kind) in VIEW_LOOKUP_PARTS.iter().zip(kinds) {
            let selected = part
                .split("SELECT ")
                .nth(1)
                .and_then(|rest| rest.split([',', ' ']).next())
                .and_then(|n| n.parse::<i32>().ok());
            assert_eq!(selected, Some(kind as i32), "{part}");
        }
    }
}
