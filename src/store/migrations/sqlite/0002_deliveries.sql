-- Which routes took each event (JSON list of route names); an empty list is "unrouted".
ALTER TABLE events ADD COLUMN routes TEXT NOT NULL DEFAULT '[]';

-- One row per (event, route, output): the unit of delivery. Its id travels as the idempotency
-- key. Created in the same transaction as its event, so an acknowledged event has its
-- deliveries on disk too.
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY NOT NULL,  -- ULID
    event_id        TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    route           TEXT NOT NULL,
    output          TEXT NOT NULL,
    template        TEXT NOT NULL,
    state           TEXT NOT NULL,              -- pending | delivered | dead | expired
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,           -- Unix ms: not before
    lease_until     INTEGER,                    -- Unix ms: a worker holds it until then
    expires_at      INTEGER,                    -- Unix ms: the route's ttl; later is "expired"
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    last_error      TEXT
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
CREATE INDEX deliveries_by_event ON deliveries (event_id);

-- Every attempt and its answer: the history an operator reads when an alert did not arrive.
CREATE TABLE attempts (
    delivery_id TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    number      INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    outcome     TEXT NOT NULL,                  -- delivered | retry | dead | expired
    reason      TEXT,                           -- closed set: network, timeout, rate_limited, ...
    detail      TEXT NOT NULL,                  -- the remote answer or receipt, capped
    PRIMARY KEY (delivery_id, number)
);
