/**
 * The database functions and triggers, one per file under sql/. Tables change through numbered
 * migrations; these files are applied again whenever their text changes (a repeatable migration), in
 * one transaction under an advisory lock, so nodes starting together apply them once.
 *
 * Every function that changes a cap follows one rule: each counter moves by one conditional statement
 * (`… WHERE used < cap`), and the first refusal raises PGREF inside an inner block, which undoes
 * everything done before it and comes back as a value. Each is one database call: no row lock
 * outlives it.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Kysely, sql } from 'kysely';
import { lockUntilCommit } from './locks.js';

/** In the order they are applied: a trigger after its function. */
export const ROUTINES = [
  'functions/immutable',
  'triggers/ledger-entries-immutable',
  'triggers/points-movements-immutable',
  'triggers/audit-log-immutable',
  'functions/luhn32-valid',
  'functions/codes-shape-guard',
  'triggers/codes-shape-guard',
  'functions/redeem',
  'functions/context',
  'functions/outbox-pass',
  'functions/rollback',
  'functions/review',
  'functions/points-apply',
  'functions/convert',
  'functions/refund-expired',
  'functions/reconciliation-guard',
  'triggers/reconciliations-final',
  'triggers/reconciliation-items-append-only',
] as const;

export const SQL_DIR = fileURLToPath(new URL('./sql/', import.meta.url));

export function routineText(name: string): string {
  return readFileSync(`${SQL_DIR}${name}.sql`, 'utf8');
}

/** The function a functions/*.sql file creates. */
export function functionName(text: string): string {
  const match = /CREATE OR REPLACE FUNCTION (\w+)\(/.exec(text);
  if (!match?.[1]) throw new Error('a functions/*.sql file must CREATE OR REPLACE FUNCTION');
  return match[1];
}

/**
 * Apply every routine whose text differs from what the database last applied. A changed function's
 * other overloads are dropped first, so a changed signature replaces the old function instead of
 * adding a second one (trigger functions keep their one signature and are replaced in place).
 */
export async function applyRoutines(db: Kysely<unknown>): Promise<string[]> {
  return db.transaction().execute(async (trx) => {
    await lockUntilCommit(trx, 'routines');
    await sql`CREATE TABLE IF NOT EXISTS promoguard_routines (
      name text PRIMARY KEY, hash text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`.execute(trx);
    const applied = new Map(
      (
        await sql<{ name: string; hash: string }>`SELECT name, hash FROM promoguard_routines`.execute(trx)
      ).rows.map((r) => [r.name, r.hash]),
    );
    const changed: string[] = [];
    for (const name of ROUTINES) {
      const text = routineText(name);
      const hash = createHash('sha256').update(text).digest('hex');
      if (applied.get(name) === hash) continue;
      if (name.startsWith('functions/')) {
        const { rows } = await sql<{ signature: string }>`
          SELECT p.oid::regprocedure::text AS signature FROM pg_proc p
           WHERE p.proname = ${functionName(text)} AND p.pronamespace = current_schema()::regnamespace
             AND p.prorettype <> 'trigger'::regtype`.execute(trx);
        // The signature text comes from the catalog, not from input.
        for (const { signature } of rows) await sql.raw(`DROP FUNCTION ${signature}`).execute(trx);
      }
      await sql.raw(text).execute(trx);
      await sql`INSERT INTO promoguard_routines (name, hash) VALUES (${name}, ${hash})
        ON CONFLICT (name) DO UPDATE SET hash = EXCLUDED.hash, applied_at = now()`.execute(trx);
      changed.push(name);
    }
    await sql`DELETE FROM promoguard_routines WHERE NOT (name = ANY (${[...ROUTINES]}::text[]))`.execute(trx);
    return changed;
  });
}
