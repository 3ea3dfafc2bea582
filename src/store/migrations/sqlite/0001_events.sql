-- Events as received and normalised. Times are Unix milliseconds (UTC).
CREATE TABLE events (
    id          TEXT PRIMARY KEY NOT NULL,  -- ULID: sorts by arrival
    received_at INTEGER NOT NULL,
    vendor      TEXT NOT NULL,
    event       TEXT NOT NULL,              -- the vendor's own event name
    kind        TEXT NOT NULL,              -- canonical kind
    fields      TEXT NOT NULL,              -- JSON object of canonical fields
    payload     TEXT NOT NULL,              -- JSON: the body as parsed
    dedup_key   TEXT NOT NULL,
    duplicates  INTEGER NOT NULL DEFAULT 0, -- repeats of this event the vendor sent later
    request     TEXT NOT NULL,              -- JSON: method, path, headers (secrets masked)
    raw_body    BLOB NOT NULL
);
CREATE INDEX events_by_dedup ON events (vendor, dedup_key, received_at);
CREATE INDEX events_by_time ON events (received_at);

-- Requests that were refused, kept (bounded) so an operator can see what was sent and why.
CREATE TABLE rejected_requests (
    id          TEXT PRIMARY KEY NOT NULL,
    received_at INTEGER NOT NULL,
    vendor      TEXT,
    status      INTEGER NOT NULL,
    reason      TEXT NOT NULL,              -- stable code: invalid_json, bad_secret, ...
    message     TEXT NOT NULL,
    request     TEXT NOT NULL,
    raw_body    BLOB NOT NULL               -- at most REJECTED_BODY_KEEP bytes
);
