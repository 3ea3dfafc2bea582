-- Arrival-time ranges of events are read as ranges of their ids (ULIDs, which sort by arrival
-- time; see EventId::first_at_millis): the dedup window's fill and prune.
-- This index put one more page in every commit of webhooks — the right-most leaf, rewritten
-- whole for a few new entries — and one more B-tree insert per event.
DROP INDEX events_by_time;
