/**
 * Change stamps: a counter per data set that nodes keep in memory (block/allow lists, risk rules).
 * Every change bumps it in the same transaction, so a node sees a change by reading one row.
 */
import { type Kysely, sql } from 'kysely';
import { type Row, toNumber } from './rows.js';
import type { Database } from './schema.js';

export type StampName = 'lists' | 'rules';

export async function bumpStamp(db: Kysely<Database>, name: StampName): Promise<void> {
  await sql`
    INSERT INTO change_stamps AS s (name, version) VALUES (${name}, 1)
    ON CONFLICT (name) DO UPDATE SET version = s.version + 1`.execute(db);
}

export async function readStamp(db: Kysely<Database>, name: StampName): Promise<number> {
  const { rows } = await sql<Row>`SELECT version FROM change_stamps WHERE name = ${name}`.execute(db);
  return rows[0] ? toNumber(rows[0].version) : 0;
}
