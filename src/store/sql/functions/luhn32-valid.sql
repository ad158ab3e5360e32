-- The same Luhn mod 32 as src/domain/codes.ts; test/store/sql-functions.test.ts holds the two equal.
CREATE OR REPLACE FUNCTION promoguard_luhn32_valid(symbols text) RETURNS boolean
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
END $fn$;
