-- Switchboard on PostgreSQL: the same tables as SQLite, shared by every instance.
-- Times are Unix milliseconds (UTC); integers are BIGINT so both stores decode them alike.
CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL,
    vendor      TEXT NOT NULL,
    event       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    fields      TEXT NOT NULL,
    payload     TEXT NOT NULL,
    dedup_key   TEXT NOT NULL,
    duplicates  BIGINT NOT NULL DEFAULT 0,
    request     TEXT NOT NULL,
    raw_body    BYTEA NOT NULL,
    routes      TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX events_by_time ON events (received_at);

-- One row per (vendor, dedup key): the latest stored event with that key. The primary key is
-- what makes dedup hold across instances.
CREATE TABLE dedup_keys (
    vendor    TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    event_id  TEXT NOT NULL,
    seen_at   BIGINT NOT NULL,
    PRIMARY KEY (vendor, dedup_key)
);

CREATE TABLE rejected_requests (
    id          TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL,
    vendor      TEXT,
    status      BIGINT NOT NULL,
    reason      TEXT NOT NULL,
    message     TEXT NOT NULL,
    request     TEXT NOT NULL,
    raw_body    BYTEA NOT NULL
);

CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    event_id        TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    route           TEXT NOT NULL,
    output          TEXT NOT NULL,
    template        TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    expires_at      BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    last_error      TEXT
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
CREATE INDEX deliveries_by_event ON deliveries (event_id);

CREATE TABLE attempts (
    delivery_id TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    number      BIGINT NOT NULL,
    started_at  BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    outcome     TEXT NOT NULL,
    reason      TEXT,
    detail      TEXT NOT NULL,
    PRIMARY KEY (delivery_id, number)
);
