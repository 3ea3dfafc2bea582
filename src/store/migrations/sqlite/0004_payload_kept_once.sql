-- no-transaction
-- A payload that is the raw body's JSON text is kept once, as the body: `payload` is NULL then
-- and readers parse `raw_body` (src/store/rows.rs). A JSON webhook was written twice, ~30% of
-- the bytes every commit and checkpoint wrote.
--
-- SQLite cannot drop a NOT NULL in place: the table is rebuilt the way its documentation says
-- (https://www.sqlite.org/lang_altertable.html#otheralter), with foreign keys off so that
-- deliveries keep pointing at `events` — which is why this file runs outside sqlx's transaction
-- and opens its own.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
CREATE TABLE events_rebuilt (
    id          TEXT PRIMARY KEY NOT NULL,  -- ULID: sorts by arrival
    received_at INTEGER NOT NULL,
    vendor      TEXT NOT NULL,
    event       TEXT NOT NULL,              -- the vendor's own event name
    kind        TEXT NOT NULL,              -- canonical kind
    fields      TEXT NOT NULL,              -- JSON object of canonical fields
    payload     TEXT,                       -- JSON: the body as parsed; NULL when that is raw_body
    dedup_key   TEXT NOT NULL,
    duplicates  INTEGER NOT NULL DEFAULT 0, -- repeats of this event the vendor sent later
    request     TEXT NOT NULL,              -- JSON: method, path, headers (secrets masked)
    raw_body    BLOB NOT NULL,
    routes      TEXT NOT NULL DEFAULT '[]'  -- JSON list of the routes that took the event
);
INSERT INTO events_rebuilt (id, received_at, vendor, event, kind, fields, payload, dedup_key, duplicates, request,
                            raw_body, routes)
    SELECT id, received_at, vendor, event, kind, fields, payload, dedup_key, duplicates, request, raw_body, routes
    FROM events;
DROP TABLE events;
ALTER TABLE events_rebuilt RENAME TO events;
CREATE INDEX events_by_time ON events (received_at);
COMMIT;
PRAGMA foreign_keys = ON;
