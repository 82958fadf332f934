-- Ingest is the only writer of the inbox and reads the terminal's row FOR UPDATE in the same
-- transaction before it writes any event, and terminals are never removed: the foreign key's
-- check on every inserted event (a trigger and a look-up per row) proved nothing new and was
-- a large part of PostgreSQL's work per event (measured with `kassa bench sync`).
ALTER TABLE inbox DROP CONSTRAINT inbox_terminal_fkey;
