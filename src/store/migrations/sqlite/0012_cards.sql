-- One live card per call: the events of one run of a sequence (a call from its `start`) share
-- the id of the event that began it, and an attempt keeps the destination's id of the message
-- it sent or edited (a Telegram message id). A later event of the run edits that message or
-- replies to it, even after a restart or from another instance.
ALTER TABLE events ADD COLUMN sequence_start TEXT;
CREATE INDEX events_by_sequence_start ON events (sequence_start) WHERE sequence_start IS NOT NULL;
ALTER TABLE attempts ADD COLUMN remote_id TEXT;
ALTER TABLE deliveries ADD COLUMN remote_id TEXT;
