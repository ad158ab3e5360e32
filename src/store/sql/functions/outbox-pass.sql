-- One relay pass in one call: mark the events just delivered as published, then claim the oldest
-- unpublished ones for p_lease_ms. Two relays (two nodes) never claim the same row at once
-- (SKIP LOCKED), and no transaction stays open while events are delivered: a relay that dies
-- holding a claim lets the lease run out and the events are delivered again. A function, so its
-- plans are cached per connection.
CREATE OR REPLACE FUNCTION promoguard_outbox_pass(p_published text[], p_limit integer, p_lease_ms integer)
RETURNS SETOF outbox LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $fn$
BEGIN
  IF cardinality(p_published) > 0 THEN
    UPDATE outbox SET published_at = now() WHERE id = ANY (p_published) AND published_at IS NULL;
  END IF;
  IF p_limit > 0 THEN
    RETURN QUERY
      UPDATE outbox SET claimed_until = now() + p_lease_ms * interval '1 millisecond'
       WHERE seq IN (
         SELECT o.seq FROM outbox o
          WHERE o.published_at IS NULL AND (o.claimed_until IS NULL OR o.claimed_until < now())
          ORDER BY o.seq
          LIMIT p_limit
          FOR UPDATE SKIP LOCKED)
      RETURNING *;
  END IF;
END $fn$;
