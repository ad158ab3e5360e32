/**
 * Change stamps: a counter per data set that nodes keep in memory (block/allow lists, risk rules).
 * Every change bumps it in the same transaction, so a node sees a change by reading one row.
 */
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

export type StampName = 'lists' | 'rules' | 'webhooks' | 'models' | 'remediations';

export async function bumpStamp(db: Kysely<Database>, name: StampName): Promise<void> {
  await db
    .insertInto('change_stamps')
    .values({ name, version: 1 })
    .onConflict((oc) =>
      oc.column('name').doUpdateSet((eb) => ({ version: eb('change_stamps.version', '+', 1) })),
    )
    .execute();
}

export async function readStamp(db: Kysely<Database>, name: StampName): Promise<number> {
  const row = await db
    .selectFrom('change_stamps')
    .select('version')
    .where('name', '=', name)
    .executeTakeFirst();
  return row?.version ?? 0;
}
