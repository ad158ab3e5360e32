import { type Kysely, sql } from 'kysely';
import { type Row, toDate, toNumber } from './rows.js';
import type { Database } from './schema.js';

/** Revoke every code of a campaign (or of one partner) that has never been redeemed. One statement. */
export async function revokeUnredeemed(
  db: Kysely<Database>,
  campaignId: string,
  partner: string | null,
  now: Date,
): Promise<number> {
  const result = await sql`
    UPDATE codes SET status = 'revoked', revoked_at = ${now}
     WHERE campaign_id = ${campaignId} AND status = 'active' AND uses = 0
       ${partner === null ? sql`` : sql`AND partner = ${partner}`}`.execute(db);
  return Number(result.numAffectedRows ?? 0n);
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
  await sql`
    INSERT INTO partner_caps (campaign_id, partner, cap, used) VALUES (${campaignId}, ${partner}, ${cap}, 0)
    ON CONFLICT (campaign_id, partner) DO UPDATE SET cap = EXCLUDED.cap`.execute(db);
}

export async function listPartners(db: Kysely<Database>, campaignId: string): Promise<PartnerCap[]> {
  const { rows } = await sql<Row>`
    SELECT p.partner, pc.cap, COALESCE(pc.used, p.used) AS used, p.codes
      FROM (SELECT partner, count(*) AS codes, sum(uses) AS used FROM codes
             WHERE campaign_id = ${campaignId} AND partner IS NOT NULL GROUP BY partner) p
      LEFT JOIN partner_caps pc ON pc.campaign_id = ${campaignId} AND pc.partner = p.partner
     ORDER BY p.partner`.execute(db);
  return rows.map((r) => ({
    partner: String(r.partner),
    cap: r.cap === null ? null : toNumber(r.cap),
    used: toNumber(r.used ?? 0),
    codes: toNumber(r.codes),
  }));
}

export interface PersonLinks {
  personId: string | null;
  /** Each identifier shared by two or more of the person's customers, and who shares it. */
  sharedIdentifiers: { type: string; hash: string; customers: string[]; firstSeen: Date }[];
  customers: string[];
}

/** The person a customer belongs to, its other accounts, and the shared identifiers that link them. */
export async function personLinks(db: Kysely<Database>, customerId: string): Promise<PersonLinks> {
  const person = await sql<{ person_id: string }>`
    SELECT person_id FROM identity_nodes WHERE key = ${`customer:${customerId}`}`.execute(db);
  const personId = person.rows[0]?.person_id ?? null;
  if (personId === null) return { personId: null, sharedIdentifiers: [], customers: [customerId] };
  const { rows } = await sql<Row>`
    SELECT e.identifier_key, array_agg(DISTINCT e.customer_id ORDER BY e.customer_id) AS customers,
           min(e.first_seen) AS first_seen
      FROM identity_edges e
      JOIN identity_nodes n ON n.key = e.identifier_key
     WHERE n.person_id = ${personId}
     GROUP BY e.identifier_key
    HAVING count(DISTINCT e.customer_id) > 1
     ORDER BY e.identifier_key`.execute(db);
  const members = await sql<{ key: string }>`
    SELECT key FROM identity_nodes WHERE person_id = ${personId} AND starts_with(key, 'customer:') ORDER BY key`.execute(
    db,
  );
  return {
    personId,
    sharedIdentifiers: rows.map((r) => {
      const key = String(r.identifier_key);
      const split = key.indexOf(':');
      return {
        type: key.slice(0, split),
        hash: key.slice(split + 1),
        customers: (r.customers as string[]).map(String),
        firstSeen: toDate(r.first_seen),
      };
    }),
    customers: members.rows.map((m) => m.key.slice('customer:'.length)),
  };
}
