/**
 * Codes in bulk on each store: a generated batch is exactly as many distinct, valid codes as asked
 * for (also when the random source repeats itself), and the CSV export is every code of the
 * campaign, once, with the values the database holds, page after page.
 */
import { randomBytes } from 'node:crypto';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { displayGeneratedCode, isPlausibleForPattern, type RandomBytes } from '../../src/domain/codes.js';
import { codesCsv, EXPORT_COLUMNS } from '../../src/formats/code-csv.js';
import { systemClock } from '../../src/lib/clock.js';
import { CodeService } from '../../src/services/codes.js';
import { campaignBody, startTestApp, type TestApp } from '../support/app.js';
import { backends } from '../support/backends.js';

/** A CSPRNG whose first `repeats` draws are all zero bytes: every code of those draws is the same. */
function repeatingSource(repeats: number): RandomBytes {
  let left = repeats;
  return (size) => {
    if (left > 0) {
      left -= 1;
      return new Uint8Array(size);
    }
    return randomBytes(size);
  };
}

async function collect(chunks: AsyncIterable<string>): Promise<string> {
  let text = '';
  for await (const chunk of chunks) text += chunk;
  return text;
}

describe.each(backends.map((b) => [b.name, b] as const))('codes in bulk on %s', (_name, backend) => {
  let t: TestApp;
  const newCampaign = async () => (await t.call('POST', '/v1/campaigns', { body: campaignBody() })).json().id;
  beforeAll(async () => {
    t = await startTestApp(backend);
  });
  afterAll(async () => t?.close());

  it('generating N codes stores N distinct codes, each valid for its batch, and audits the batch', async () => {
    const campaignId = await newCampaign();
    const count = 30_000; // more than one statement's worth
    const pattern = { prefix: 'BULK', randomLength: 10 };
    const seen: number[] = [];
    const result = await t.app.codes.generate(
      campaignId,
      { count, prefix: pattern.prefix, randomLength: pattern.randomLength, maxUses: 2, partner: 'news' },
      'test',
      { atomic: false, onProgress: (done) => seen.push(done) },
    );
    expect(result.count).toBe(count);
    expect(seen.at(-1)).toBe(count);
    expect(seen.length).toBeGreaterThan(1);

    const rows = await t.app.db
      .selectFrom('codes')
      .select(['id', 'code', 'normalized', 'batch_id', 'kind', 'max_uses', 'partner', 'status', 'uses'])
      .where('campaign_id', '=', campaignId)
      .execute();
    expect(rows).toHaveLength(count);
    expect(new Set(rows.map((r) => r.normalized)).size).toBe(count);
    expect(new Set(rows.map((r) => r.id)).size).toBe(count);
    const wrong = rows.filter(
      (r) =>
        !isPlausibleForPattern(r.normalized, pattern) ||
        r.code !== displayGeneratedCode(r.normalized, pattern) ||
        r.batch_id !== result.batchId ||
        r.kind !== 'unique' ||
        r.max_uses !== 2 ||
        r.partner !== 'news' ||
        r.status !== 'active' ||
        r.uses !== 0,
    );
    expect(wrong).toEqual([]);

    const audit = await t.app.db
      .selectFrom('audit_log')
      .select(['action', 'actor', 'details'])
      .where('target_id', '=', result.batchId)
      .execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ action: 'code.batch_generated', actor: 'test' });
    const details = audit[0]?.details;
    expect(typeof details === 'string' ? JSON.parse(details) : details).toMatchObject({
      campaign_id: campaignId,
      count,
      prefix: 'BULK',
    });
  });

  it('a code drawn twice, in one chunk or already stored, is drawn again until the count is reached', async () => {
    const campaignId = await newCampaign();
    const repeating = new CodeService(
      { db: t.app.db, clock: systemClock, afterCommit: () => {} },
      t.app.codes.patterns,
      repeatingSource(1),
    );
    const spec = { count: 50, prefix: 'REP', randomLength: 8 };
    // The first chunk is one code fifty times; the second batch's first chunk is that same code again.
    await repeating.generate(campaignId, spec, 'test', { atomic: true });
    const again = new CodeService(
      { db: t.app.db, clock: systemClock, afterCommit: () => {} },
      t.app.codes.patterns,
      repeatingSource(1),
    );
    await again.generate(campaignId, spec, 'test', { atomic: false });
    const rows = await t.app.db
      .selectFrom('codes')
      .select(['normalized', 'batch_id'])
      .where('campaign_id', '=', campaignId)
      .execute();
    expect(rows).toHaveLength(100);
    expect(new Set(rows.map((r) => r.normalized)).size).toBe(100);
    const perBatch = new Map<string | null, number>();
    for (const r of rows) perBatch.set(r.batch_id, (perBatch.get(r.batch_id) ?? 0) + 1);
    expect([...perBatch.values()]).toEqual([50, 50]);
    expect(rows.filter((r) => r.normalized.startsWith('REP22222222'))).toHaveLength(1);
  });

  it('the CSV export holds every code of the campaign once, with the values the database has', async () => {
    const campaignId = await newCampaign();
    const other = await newCampaign();
    await t.app.codes.generate(campaignId, { count: 3_000, prefix: 'EXP' }, 'test', { atomic: false });
    await t.app.codes.generate(other, { count: 200, prefix: 'OTH' }, 'test', { atomic: true });
    await t.app.codes.importCodes(
      campaignId,
      [
        { code: 'exp public' },
        { code: 'EXP-BOUND', customerId: 'cus,"quoted"', maxUses: 3, partner: 'tv.spot' },
        { code: 'exp/revoked', maxUses: 1, status: 'revoked' },
      ],
      'test',
    );
    // A use counted, and a time with microseconds (the database's own now()): shown to the millisecond.
    await sql`UPDATE codes SET uses = 2, created_at = '2026-06-01 12:00:00.123987+00'
               WHERE normalized = 'EXPBOUND'`.execute(t.app.db);

    const csv = await collect(codesCsv(t.app.codes.exportCsv(campaignId, 700)));

    const stored = await t.app.db
      .selectFrom('codes')
      .select(['code', 'customer_id', 'max_uses', 'partner', 'uses', 'status', 'created_at'])
      .where('campaign_id', '=', campaignId)
      .orderBy('id')
      .execute();
    expect(stored).toHaveLength(3_003);
    // The same text a general-purpose CSV writer makes of the stored rows, in id order.
    const expected = stringify([
      [...EXPORT_COLUMNS],
      ...stored.map((r) => [
        r.code,
        r.customer_id ?? '',
        r.max_uses ?? '',
        r.partner ?? '',
        r.uses,
        r.status,
        new Date(r.created_at).toISOString(),
      ]),
    ]);
    expect(csv).toBe(expected);

    const records: Record<string, string>[] = parse(csv, { columns: true });
    expect(records).toHaveLength(3_003);
    expect(new Set(records.map((r) => r.code)).size).toBe(3_003);
    expect(records.find((r) => r.code === 'EXP-BOUND')).toEqual({
      code: 'EXP-BOUND',
      customer_id: 'cus,"quoted"',
      max_uses: '3',
      partner: 'tv.spot',
      uses: '2',
      status: 'active',
      created_at: '2026-06-01T12:00:00.123Z',
    });
    expect(records.find((r) => r.code === 'exp/revoked')?.status).toBe('revoked');
    expect(records.some((r) => r.code?.startsWith('OTH'))).toBe(false);
    expect(await t.app.codes.count(campaignId)).toBe(3_003);
  });

  it('a campaign without codes exports the header alone', async () => {
    const campaignId = await newCampaign();
    expect(await collect(codesCsv(t.app.codes.exportCsv(campaignId)))).toBe(`${EXPORT_COLUMNS.join(',')}\n`);
    expect(await t.app.codes.count(campaignId)).toBe(0);
  });
});
