-- The variant page shows which import batches wrote a variant and where each field came from:
-- the batches' entities found by kind and key.
CREATE INDEX import_batch_entities_by_entity ON import_batch_entities (kind, key);
