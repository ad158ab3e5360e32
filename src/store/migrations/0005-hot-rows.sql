-- Storage settings for the rows every redemption updates. A hot campaign row (or a public code, or a
-- customer's usage row) is updated thousands of times a minute; each update leaves a dead version
-- behind, and with PostgreSQL's defaults autovacuum waits for 20% of a table to be dead — on a table
-- of a few hundred campaigns that is soon, but on the codes table of millions it is never, while the
-- hot row's chain of dead versions slows every update of it. So: vacuum these tables after a fixed
-- number of dead rows, and leave room in the small ones' pages so an update can stay on its page
-- (a HOT update, no index change). PGlite accepts the settings (it runs no autovacuum).

ALTER TABLE campaigns SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0,
  autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0.05);

ALTER TABLE customer_usage SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0,
  autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0.05);

ALTER TABLE person_usage SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0,
  autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0.05);

ALTER TABLE partner_caps SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0,
  autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0.05);

ALTER TABLE campaign_minute SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0,
  autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0.05);

ALTER TABLE points_accounts SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0,
  autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0.05);

ALTER TABLE points_daily SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0,
  autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0.05);

ALTER TABLE codes SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000);

ALTER TABLE identity_nodes SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000);
