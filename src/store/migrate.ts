/**
 * Versioned migrations for tables, applied in order and recorded by Kysely's Migrator (under its
 * lock); then the functions and triggers of routines.ts, re-applied when their text changed.
 */
import { type Kysely, type Migration, type MigrationResultSet, Migrator } from 'kysely';
import * as core from './migrations/0001-core.js';
import * as points from './migrations/0002-points.js';
import * as defenses from './migrations/0003-defenses.js';
import * as risk from './migrations/0004-risk.js';
import * as hotRows from './migrations/0005-hot-rows.js';
import { applyRoutines } from './routines.js';

const migrations: Record<string, Migration> = {
  '0001-core': core,
  '0002-points': points,
  '0003-defenses': defenses,
  '0004-risk': risk,
  '0005-hot-rows': hotRows,
};

export async function migrateToLatest(db: Kysely<unknown>): Promise<MigrationResultSet> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const result = await migrator.migrateToLatest();
  if (result.error) throw result.error instanceof Error ? result.error : new Error(String(result.error));
  await applyRoutines(db);
  return result;
}
