-- How many times an attempt at a delivery was cut short — the daemon killed while it held the
-- delivery's lease — so the destination may have got the message already: the dashboard says
-- so beside a later attempt, which would be a duplicate (at-least-once).
ALTER TABLE deliveries ADD COLUMN interrupted INTEGER NOT NULL DEFAULT 0;
