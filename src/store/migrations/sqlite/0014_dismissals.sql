-- A dead letter the operator dismissed (state 'dismissed'): seen, and nothing is to be sent.
-- Who and why are kept with it; a retry clears them.
ALTER TABLE deliveries ADD COLUMN dismissed_at INTEGER;
ALTER TABLE deliveries ADD COLUMN dismissed_by TEXT;
ALTER TABLE deliveries ADD COLUMN dismiss_note TEXT;
