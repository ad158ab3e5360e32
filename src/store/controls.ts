import { type Kysely, sql } from 'kysely';

import type { Database } from './schema.js';

/** Revoke every code of a campaign (or of one partner) that has never been redeemed. One statement. */
export async function revokeUnredeemed(
  db: Kysely<Database>,
  campaignId: string,
  partner: string | null,
  now: Date,
): Promise<number> {
  let query = db
    .updateTable('codes')
    .set({ status: 'revoked', revoked_at: now })
    .where('campaign_id', '=', campaignId)
    .where('status', '=', 'active')
    .where('uses', '=', 0);
  if (partner !== null) query = query.where('partner', '=', partner);
  const result = await query.executeTakeFirst();
  return Number(result.numUpdatedRows);
}

export interface PartnerCap {
  partner: string;
  cap: number | null;
  used: number;
  codes: number;
}

export async function setPartnerCap(
  db: Kysely<Database>,
  campaignId: string,
  partner: string,
  cap: number | null,
): Promise<void> {
  // Only the cap is set: `used` is counted by every redemption of the partner's codes, capped or not,
  // in the redeem statement itself, so no count here can miss a redemption in flight.
  await db
    .insertInto('partner_caps')
    .values({ campaign_id: campaignId, partner, cap, used: 0 })
    .onConflict((oc) =>
      oc.columns(['campaign_id', 'partner']).doUpdateSet((eb) => ({ cap: eb.ref('excluded.cap') })),
    )
    .execute();
}

export async function listPartners(db: Kysely<Database>, campaignId: string): Promise<PartnerCap[]> {
  const { rows } = await sql<{ partner: string; cap: number | null; used: number | null; codes: number }>`
    SELECT p.partner, pc.cap, COALESCE(pc.used, p.used) AS used, p.codes
      FROM (SELECT partner, count(*) AS codes, sum(uses) AS used FROM codes
             WHERE campaign_id = ${campaignId} AND partner IS NOT NULL GROUP BY partner) p
      LEFT JOIN partner_caps pc ON pc.campaign_id = ${campaignId} AND pc.partner = p.partner
     ORDER BY p.partner`.execute(db);
  return rows.map((r) => ({ partner: r.partner, cap: r.cap, used: r.used ?? 0, codes: r.codes }));
}

export interface PersonLinks {
  personId: string | null;
  /** Each identifier shared by two or more of the person's customers, and who shares it. */
  sharedIdentifiers: { type: string; hash: string; customers: string[]; firstSeen: Date }[];
  customers: string[];
}

/** The person a customer belongs to, its other accounts, and the shared identifiers that link them. */
export async function personLinks(db: Kysely<Database>, customerId: string): Promise<PersonLinks> {
  return (await personLinksOf(db, [customerId])).get(customerId) as PersonLinks;
}

/**
 * personLinks of several customers in three queries whatever their number (a page of the review
 * inbox), each person's links read once however many of its customers are asked for.
 */
export async function personLinksOf(
  db: Kysely<Database>,
  customerIds: readonly string[],
): Promise<Map<string, PersonLinks>> {
  const wanted = [...new Set(customerIds)];
  const out = new Map<string, PersonLinks>();
  if (wanted.length === 0) return out;
  const nodes = await db
    .selectFrom('identity_nodes')
    .select(['key', 'person_id'])
    .where(
      'key',
      'in',
      wanted.map((c) => `customer:${c}`),
    )
    .execute();
  const personOf = new Map(nodes.map((n) => [n.key.slice('customer:'.length), n.person_id]));
  const persons = [...new Set(nodes.map((n) => n.person_id))];
  const shared = new Map<string, PersonLinks['sharedIdentifiers']>();
  const members = new Map<string, string[]>();
  if (persons.length > 0) {
    const { rows } = await sql<{
      person_id: string;
      identifier_key: string;
      customers: string[];
      first_seen: Date;
    }>`
      SELECT n.person_id, e.identifier_key,
             array_agg(DISTINCT e.customer_id ORDER BY e.customer_id) AS customers,
             min(e.first_seen) AS first_seen
        FROM identity_edges e
        JOIN identity_nodes n ON n.key = e.identifier_key
       WHERE n.person_id = ANY (${persons}::text[])
       GROUP BY n.person_id, e.identifier_key
      HAVING count(DISTINCT e.customer_id) > 1
       ORDER BY e.identifier_key`.execute(db);
    for (const r of rows) {
      const split = r.identifier_key.indexOf(':');
      const list = shared.get(r.person_id) ?? [];
      list.push({
        type: r.identifier_key.slice(0, split),
        hash: r.identifier_key.slice(split + 1),
        customers: r.customers,
        firstSeen: r.first_seen,
      });
      shared.set(r.person_id, list);
    }
    const accounts = await db
      .selectFrom('identity_nodes')
      .select(['person_id', 'key'])
      .where('person_id', 'in', persons)
      .where('key', 'like', 'customer:%')
      .orderBy('key')
      .execute();
    for (const a of accounts) {
      const list = members.get(a.person_id) ?? [];
      list.push(a.key.slice('customer:'.length));
      members.set(a.person_id, list);
    }
  }
  for (const customerId of wanted) {
    const personId = personOf.get(customerId) ?? null;
    out.set(
      customerId,
      personId === null
        ? { personId: null, sharedIdentifiers: [], customers: [customerId] }
        : {
            personId,
            sharedIdentifiers: shared.get(personId) ?? [],
            customers: members.get(personId) ?? [customerId],
          },
    );
  }
  return out;
}

export type SplitOutcome =
  | { ok: true; moved: string[]; unlinked: number }
  | { ok: false; reason: 'person_not_found' | 'not_in_person' | 'nobody_left' };

/**
 * Move `customers` out of person `personId` into `newPersonId`. Identifiers only the moved customers
 * used go with them; identifiers both sides used are marked unlinked (they stay, link nobody again),
 * or the next redemption through one of them would merge the two halves back. Both persons' usage is
 * recounted from the redemptions in force of the customers each holds now (as reconciliation counts
 * it). The person's nodes are locked first, in key order, as a redemption locks them.
 */
export async function splitPerson(
  trx: Kysely<Database>,
  personId: string,
  customers: readonly string[],
  newPersonId: string,
): Promise<SplitOutcome> {
  const { rows: nodes } = await sql<{ key: string }>`
    SELECT key FROM identity_nodes WHERE person_id = ${personId} ORDER BY key FOR UPDATE`.execute(trx);
  if (nodes.length === 0) return { ok: false, reason: 'person_not_found' };
  const members = new Set(nodes.filter((n) => n.key.startsWith('customer:')).map((n) => n.key.slice(9)));
  const moving = new Set(customers);
  if ([...moving].some((c) => !members.has(c))) return { ok: false, reason: 'not_in_person' };
  if ([...members].every((c) => moving.has(c))) return { ok: false, reason: 'nobody_left' };
  const { rows: edges } = await sql<{ identifier_key: string; customer_id: string }>`
    SELECT e.identifier_key, e.customer_id FROM identity_edges e
      JOIN identity_nodes n ON n.key = e.identifier_key
     WHERE n.person_id = ${personId} AND e.customer_id = ANY (${[...members]}::text[])`.execute(trx);
  const sides = new Map<string, { moved: boolean; stayed: boolean }>();
  for (const e of edges) {
    const side = sides.get(e.identifier_key) ?? { moved: false, stayed: false };
    if (moving.has(e.customer_id)) side.moved = true;
    else side.stayed = true;
    sides.set(e.identifier_key, side);
  }
  const goes = [...moving].map((c) => `customer:${c}`);
  const cut: string[] = [];
  for (const [key, side] of sides) {
    if (side.moved && !side.stayed) goes.push(key);
    else if (side.moved && side.stayed) cut.push(key);
  }
  await trx.updateTable('identity_nodes').set({ person_id: newPersonId }).where('key', 'in', goes).execute();
  if (cut.length > 0) {
    await trx.updateTable('identity_nodes').set({ unlinked: true }).where('key', 'in', cut).execute();
  }
  await sql`DELETE FROM person_usage WHERE person_id IN (${personId}, ${newPersonId})`.execute(trx);
  await sql`
    INSERT INTO person_usage (campaign_id, person_id, uses)
    SELECT r.campaign_id, n.person_id, count(*)
      FROM redemptions r JOIN identity_nodes n ON n.key = 'customer:' || r.customer_id
     WHERE n.person_id IN (${personId}, ${newPersonId}) AND r.status = 'redeemed' AND r.person_id IS NOT NULL
     GROUP BY r.campaign_id, n.person_id
     ORDER BY r.campaign_id, n.person_id`.execute(trx);
  return { ok: true, moved: [...moving].sort(), unlinked: cut.length };
}
