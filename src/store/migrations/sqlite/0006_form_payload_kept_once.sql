-- A form's payload is kept once too, as the body, like a JSON one since migration 4: where
-- `payload` is NULL, `body_encoding` says how `raw_body` is read back (`json`, or `form` for a
-- URL-encoded form; NULL in rows from before this column, which were all JSON). An Envybox
-- webhook wrote its form and the same fields again as JSON.
ALTER TABLE events ADD COLUMN body_encoding TEXT;
