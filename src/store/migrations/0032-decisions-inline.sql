-- A stored decision (its features, rules and inputs; each fired rule with the features it read) can
-- pass the default toast_tuple_target of about 2 kB, where every insert would compress it (pglz) on
-- the redemption's path. Rows up to a page's worth stay inline and uncompressed; a larger one is
-- still compressed.
ALTER TABLE risk_decisions SET (toast_tuple_target = 8160);
ALTER TABLE loyalty_decisions SET (toast_tuple_target = 8160);
