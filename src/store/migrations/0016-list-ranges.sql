-- Block and allow lists may name an IP range. A range cannot be matched by the keyed hash of one
-- address, so its network is kept as `cidr` (an operator's range, not a client's address); its
-- identifier_hash is the keyed hash of the canonical range text, so adding a range twice updates it.
ALTER TABLE list_entries ADD COLUMN network cidr;

ALTER TABLE list_entries ADD CONSTRAINT list_entries_network_is_ip
  CHECK (network IS NULL OR identifier_type = 'ip');

-- Judging keeps the lists in memory; this serves the query a node falls back to when they are too
-- many to keep (`network >>= address`).
CREATE INDEX list_entries_network_idx ON list_entries USING gist (network inet_ops)
WHERE removed_at IS NULL AND network IS NOT NULL;
