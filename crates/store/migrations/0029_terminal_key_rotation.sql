-- A terminal's signing key can be replaced (a `KeyRotated` event in its chain): `public_key` is
-- the key the till signs with now, `genesis_key` the one its chain began with, from which a
-- verifier follows the chain's rotations.
ALTER TABLE terminals ADD COLUMN genesis_key BLOB;
UPDATE terminals SET genesis_key = public_key;
