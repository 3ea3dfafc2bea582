-- What the operator must change before the destination can take anything again (the bot was
-- removed from the chat, a group moved to a new id), as the output said: the Status page shows
-- an output's latest until an attempt delivers without one.
ALTER TABLE attempts ADD COLUMN action TEXT;
