/**
 * The check-symbol shortcut refuses, without a database read, a code that has the shape of a
 * generated batch (its prefix and length) but fails that batch's check. That is only sound if no
 * stored code is ever like that, on any node. The database enforces it:
 *  - a code inserted outside a batch is refused if it has some batch's shape and passes no such
 *    batch's check (the same Luhn mod 32 as src/domain/codes.ts);
 *  - creating a batch and inserting such codes are ordered by one advisory lock (exclusive for a new
 *    batch, shared for code inserts), so a batch and a clashing code can never commit side by side.
 */
import { type Kysely, sql } from 'kysely';

export const SHAPE_LOCK_KEY = 7302;

const statements = [
  `CREATE FUNCTION promoguard_luhn32_valid(symbols text) RETURNS boolean
   LANGUAGE plpgsql IMMUTABLE STRICT AS $fn$
  DECLARE
    alphabet constant text := '23456789ABCDEFGHJKLMNPQRSTUVWXYZ';
    factor integer := 1;
    total integer := 0;
    v integer;
    addend integer;
  BEGIN
    IF length(symbols) < 2 THEN RETURN false; END IF;
    FOR i IN REVERSE length(symbols)..1 LOOP
      v := strpos(alphabet, substr(symbols, i, 1)) - 1;
      IF v < 0 THEN RETURN false; END IF;
      addend := factor * v;
      total := total + addend / 32 + addend % 32;
      factor := 3 - factor;
    END LOOP;
    RETURN total % 32 = 0;
  END $fn$`,
  `CREATE FUNCTION promoguard_codes_shape_guard() RETURNS trigger LANGUAGE plpgsql AS $fn$
  BEGIN
    IF NEW.batch_id IS NOT NULL THEN RETURN NEW; END IF;
    PERFORM pg_advisory_xact_lock_shared(${SHAPE_LOCK_KEY});
    IF EXISTS (SELECT 1 FROM code_batches b
                WHERE starts_with(NEW.normalized, b.prefix)
                  AND length(NEW.normalized) = length(b.prefix) + b.random_length + 1)
       AND NOT EXISTS (SELECT 1 FROM code_batches b
                WHERE starts_with(NEW.normalized, b.prefix)
                  AND length(NEW.normalized) = length(b.prefix) + b.random_length + 1
                  AND promoguard_luhn32_valid(substr(NEW.normalized, length(b.prefix) + 1))) THEN
      RAISE EXCEPTION USING ERRCODE = 'PGSHP', MESSAGE = 'code has the shape of a generated batch',
        DETAIL = NEW.normalized;
    END IF;
    RETURN NEW;
  END $fn$`,
  `CREATE TRIGGER codes_shape_guard BEFORE INSERT ON codes
    FOR EACH ROW EXECUTE FUNCTION promoguard_codes_shape_guard()`,
];

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await sql.raw(statement).execute(db);
}
