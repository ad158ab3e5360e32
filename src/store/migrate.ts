/**
 * Versioned migrations for tables (migrations/NNNN-name.sql), applied in order and recorded by
 * Kysely's Migrator under its lock, each in a transaction; then the functions and triggers of
 * sql/, re-applied when their text changed.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Kysely, type Migration, type MigrationResultSet, Migrator, sql } from 'kysely';
import { applyRoutines } from './routines.js';

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

/** Every migration file by its name without `.sql` (the key Kysely records). */
export function migrationFiles(): Record<string, Migration> {
  const files = readdirSync(MIGRATIONS_DIR)
    .filter((f) => /^\d{4}-[a-z0-9-]+\.sql$/.test(f))
    .sort();
  return Object.fromEntries(
    files.map((file) => {
      const text = readFileSync(`${MIGRATIONS_DIR}${file}`, 'utf8');
      const up = async (db: Kysely<unknown>) => {
        await sql.raw(text).execute(db);
      };
      return [file.slice(0, -'.sql'.length), { up }];
    }),
  );
}

export async function migrateToLatest(db: Kysely<unknown>): Promise<MigrationResultSet> {
  const migrations = migrationFiles();
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const result = await migrator.migrateToLatest();
  if (result.error) throw result.error instanceof Error ? result.error : new Error(String(result.error));
  await applyRoutines(db);
  return result;
}
