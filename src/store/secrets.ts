/** Named server secrets (the generated HMAC key and its fingerprint): the first value written wins. */
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

export function secretStore(db: Kysely<Database>) {
  return {
    async putIfAbsent(name: string, value: string): Promise<void> {
      await db
        .insertInto('server_secrets')
        .values({ name, value })
        .onConflict((oc) => oc.column('name').doNothing())
        .execute();
    },
    async get(name: string): Promise<string | null> {
      const row = await db
        .selectFrom('server_secrets')
        .select('value')
        .where('name', '=', name)
        .executeTakeFirst();
      return row?.value ?? null;
    },
  };
}
