-- The account's creation time as the checkout last reported it, on the customer's node of the identity
-- graph: the identity features count how many of a person's accounts are new (a ring opens fresh
-- accounts; a household's and an office's are old).
ALTER TABLE identity_nodes ADD COLUMN account_created_at timestamptz;

-- An identifier an analyst cut while splitting a person: it stays in the graph (its edges, the features)
-- but links nobody any more, so the split holds when the identifier is seen again.
ALTER TABLE identity_nodes ADD COLUMN unlinked boolean NOT NULL DEFAULT false;
