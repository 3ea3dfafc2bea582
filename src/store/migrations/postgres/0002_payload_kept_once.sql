-- A payload that is the raw body's JSON text is kept once, as the body: `payload` is NULL then
-- and readers parse `raw_body` (src/store/rows.rs). Saves a second copy of every JSON webhook.
ALTER TABLE events ALTER COLUMN payload DROP NOT NULL;
