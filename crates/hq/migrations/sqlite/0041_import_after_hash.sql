-- A batch keeps the SHA-256 of each payload it wrote instead of a copy of it (a million-row
-- import wrote every payload twice): a rollback compares it with the entity's payload now.
-- Batches committed before keep their `after_payload`.
ALTER TABLE import_batch_entities ADD COLUMN after_hash TEXT;
