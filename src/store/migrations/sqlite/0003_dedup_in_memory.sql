-- The dedup window is kept in memory by the writer thread (src/store/sqlite/dedup.rs) and
-- filled from events_by_time at start. This index put every new event on a random leaf, one
-- more page written per webhook.
DROP INDEX events_by_dedup;
