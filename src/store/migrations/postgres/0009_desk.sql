-- The desk: each card's handling (who took the call, who called back) and every press on its
-- buttons. A card is the event that began its call (events.sequence_start), or the event.
CREATE TABLE handling (
    card              TEXT PRIMARY KEY,
    status            TEXT NOT NULL,
    taken_by_id       BIGINT,
    taken_by          TEXT,
    taken_at          BIGINT,
    done_by_id        BIGINT,
    done_by           TEXT,
    done_at           BIGINT,
    no_answers        BIGINT NOT NULL DEFAULT 0,
    last_no_answer_at BIGINT,
    updated_at        BIGINT NOT NULL
);
CREATE TABLE presses (
    id       BIGSERIAL PRIMARY KEY,
    card     TEXT NOT NULL,
    event_id TEXT NOT NULL,
    action   TEXT NOT NULL,
    by_id    BIGINT NOT NULL,
    by_name  TEXT NOT NULL,
    at       BIGINT NOT NULL,
    applied  BOOLEAN NOT NULL,
    -- Telegram's id for the press: a press read twice (a reload before its batch was
    -- confirmed, a webhook post sent again) is recorded and applied once.
    query_id TEXT NOT NULL UNIQUE
);
CREATE INDEX presses_by_card ON presses (card, at);
-- A delivery that redraws a card after a press: the message it edits in place.
ALTER TABLE deliveries ADD COLUMN redraws TEXT;
-- An escalation: a reminder due later, sent unless the card reached this status by then.
ALTER TABLE deliveries ADD COLUMN unless_status TEXT;
