-- One row that readiness writes when the last write failed (a full disk, say): a write that
-- succeeds again tells the probe the store has recovered, even while no webhook arrives. It
-- writes `space` as large as a sizeable webhook, since a tiny write can still fit in the room
-- a failed one left in the log.
CREATE TABLE write_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at INTEGER NOT NULL,
    space BLOB
);
