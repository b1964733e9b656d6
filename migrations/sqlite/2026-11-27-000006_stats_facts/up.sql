-- Dashboard statistics from stored facts (docs/metrics.md, "Performance"). Each ticket's
-- judgement (what docs/metrics.md derives from its history) is written in the same transaction
-- as every timeline event, so GET /stats/* aggregates these narrow rows in SQL instead of
-- replaying every ticket's events in Rust. Rows of existing tickets are back-filled by
-- `huying migrate` / `serve` right after this migration (the rules live in Rust,
-- service::stats::outcome, and are not duplicated in SQL).

-- One row per ticket. Copies of status, level, rating etc. are kept so that the covering
-- indexes below answer every cohort aggregate without touching the wide tickets rows.
CREATE TABLE ticket_stats (
    ticket_id INTEGER PRIMARY KEY REFERENCES tickets (id),
    -- service::stats::facts::FACTS_VERSION the row was computed with; rows below it are recomputed.
    version INTEGER NOT NULL,
    street_id BIGINT NOT NULL,
    community_id BIGINT NOT NULL,
    compound_id BIGINT NOT NULL,
    category_id BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    status TEXT NOT NULL,
    level TEXT NOT NULL,
    -- escalation_count > 0 (小事不出小区率).
    went_up BOOLEAN NOT NULL,
    rating INTEGER,
    -- 响应率 verdict without the clock of the current stay; NULL = not judged.
    response BOOLEAN,
    -- The current stay's unanswered answer deadline: once past, the verdict is "late".
    response_due TIMESTAMP,
    -- 解决率 verdict without the running settle clock; NULL = not counted.
    resolution BOOLEAN,
    -- The running settle deadline: once past, the verdict is "not met".
    resolution_due TIMESTAMP,
    -- created → first answer at any level.
    first_answer_secs BIGINT,
    -- created → resolution, for closed tickets.
    settle_secs BIGINT
);
CREATE INDEX ticket_stats_street ON ticket_stats (street_id, created_at, status, level, went_up,
    rating, response, response_due, resolution, resolution_due, first_answer_secs, settle_secs,
    community_id, compound_id, category_id);
CREATE INDEX ticket_stats_community ON ticket_stats (community_id, created_at, status, level,
    went_up, rating, response, response_due, resolution, resolution_due, first_answer_secs,
    settle_secs, compound_id, category_id);
CREATE INDEX ticket_stats_created ON ticket_stats (created_at, status, level, went_up, rating,
    response, response_due, resolution, resolution_due, first_answer_secs, settle_secs,
    community_id, compound_id, category_id);

-- The answered stays of each ticket (per-level medians): arrival → first answer / resolve.
CREATE TABLE ticket_stays (
    ticket_id BIGINT NOT NULL REFERENCES tickets (id),
    seq INTEGER NOT NULL,
    street_id BIGINT NOT NULL,
    community_id BIGINT NOT NULL,
    -- The ticket's creation (the cohort), not the stay's.
    created_at TIMESTAMP NOT NULL,
    level TEXT NOT NULL,
    answer_secs BIGINT NOT NULL,
    settle_secs BIGINT,
    PRIMARY KEY (ticket_id, seq)
);
CREATE INDEX ticket_stays_street ON ticket_stays (street_id, level, created_at, answer_secs, settle_secs);
CREATE INDEX ticket_stays_community ON ticket_stays (community_id, level, created_at, answer_secs, settle_secs);
CREATE INDEX ticket_stays_created ON ticket_stays (level, created_at, answer_secs, settle_secs);

-- Active tickets now (open_now_by_level, overdue): only the active set, covering.
CREATE INDEX tickets_active_street ON tickets (street_id, level, overdue, due_at, community_id, compound_id, status)
    WHERE status IN ('open', 'acknowledged');
CREATE INDEX tickets_active_community ON tickets (community_id, level, overdue, due_at, compound_id, status)
    WHERE status IN ('open', 'acknowledged');

-- Trend "closed": status joins the closed_at indexes so they cover the count.
DROP INDEX tickets_street_closed;
DROP INDEX tickets_community_closed;
CREATE INDEX tickets_street_closed ON tickets (street_id, closed_at, status);
CREATE INDEX tickets_community_closed ON tickets (community_id, closed_at, status);
CREATE INDEX tickets_closed_status ON tickets (closed_at, status);

-- Flows: only the moves between levels, covering (the literal list matches the query's).
CREATE INDEX ticket_events_moves ON ticket_events (created_at, ticket_id, action, level, level_after, actor_role)
    WHERE action IN ('escalate', 'dispute', 'return');
