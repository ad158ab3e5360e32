-- The check-symbol shortcut refuses, without a database read, a code with a generated batch's
-- shape (its prefix, its length, only code-alphabet symbols after the prefix) that fails the
-- batch's check. That is sound only if no stored code is like that, on any node. So a code
-- inserted outside a batch is refused here if it has some batch's shape and passes no such
-- batch's check; and new batches (exclusive) and these inserts (shared) are ordered by one
-- advisory lock, so a batch and a clashing code never both commit.
CREATE OR REPLACE FUNCTION promoguard_codes_shape_guard() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF NEW.batch_id IS NOT NULL THEN RETURN NEW; END IF;
  PERFORM pg_advisory_xact_lock_shared(hashtextextended('promoguard:code_shapes', 0));
  IF EXISTS (SELECT 1 FROM code_batches b
              WHERE starts_with(NEW.normalized, b.prefix)
                AND length(NEW.normalized) = length(b.prefix) + b.random_length + 1
                AND substr(NEW.normalized, length(b.prefix) + 1) ~ '^[23456789ABCDEFGHJKLMNPQRSTUVWXYZ]+$')
     AND NOT EXISTS (SELECT 1 FROM code_batches b
              WHERE starts_with(NEW.normalized, b.prefix)
                AND length(NEW.normalized) = length(b.prefix) + b.random_length + 1
                AND promoguard_luhn32_valid(substr(NEW.normalized, length(b.prefix) + 1))) THEN
    RAISE EXCEPTION USING ERRCODE = 'PGSHP', MESSAGE = 'code has the shape of a generated batch',
      DETAIL = NEW.normalized;
  END IF;
  RETURN NEW;
END $fn$;
