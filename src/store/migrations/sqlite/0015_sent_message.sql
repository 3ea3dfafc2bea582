-- The message each attempt rendered and sent (its parts as JSON, each cut at 16 KiB): the
-- event page shows what went out, not what today's templates would make of the event.
ALTER TABLE attempts ADD COLUMN message TEXT;
