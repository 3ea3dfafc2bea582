-- The events of a vendor plugin's `[sequence]` (a Jivo call: the call_events of one chat) carry
-- its key, so that classifying a later one can read what came before it. The index is partial:
-- an event in no sequence — every webhook but a few — writes no entry, and ingest's commits
-- stay the size they were.
ALTER TABLE events ADD COLUMN sequence_key TEXT;
CREATE INDEX events_by_sequence ON events (sequence_key, id) WHERE sequence_key IS NOT NULL;
