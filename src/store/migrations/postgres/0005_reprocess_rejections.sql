-- A refused request can be processed again once the operator has fixed what refused it: the
-- row records how large the body was (to tell a whole kept body from a cut one) and the last
-- time it was processed again, with the event it became when it was accepted.
ALTER TABLE rejected_requests ADD COLUMN body_size BIGINT;
ALTER TABLE rejected_requests ADD COLUMN reprocessed_at BIGINT;
ALTER TABLE rejected_requests ADD COLUMN reprocessed_event TEXT;
