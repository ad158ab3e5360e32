import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ContextQuery,
  ContextReader,
  loadRedemptionContext,
} from '../../src/store/redemption-context.js';
import type { Database } from '../../src/store/schema.js';
import { campaignWithCode, checkoutBody, startTestApp, type TestApp, unique } from '../support/app.js';
import { backends } from '../support/backends.js';

const single = (t: TestApp, q: ContextQuery) => loadRedemptionContext(t.app.db, q);

describe.each(backends.map((b) => [b.name, b] as const))('context reads on %s', (_name, backend) => {
  let t: TestApp;
  let code: string;
  let otherCode: string;
  const key = unique('ctx-key-');

  beforeAll(async () => {
    t = await startTestApp(backend);
    ({ code } = await campaignWithCode(t, { per_customer_cap: 2 }));
    ({ code: otherCode } = await campaignWithCode(t));
    const made = await t.call('POST', '/v1/redemptions', {
      key: t.keys.checkout,
      body: checkoutBody(code, { customer: { id: 'cus_ctx_a' } }),
      headers: { 'idempotency-key': key },
    });
    expect(made.statusCode).toBe(201);
  });
  afterAll(() => t.close());

  const query = (overrides: Partial<ContextQuery>): ContextQuery => ({
    normalized: code,
    customerId: 'cus_ctx_a',
    idempotencyKey: null,
    identityKeys: ['customer:cus_ctx_a'],
    currency: 'USD',
    now: new Date(),
    ...overrides,
  });

  it('reads the requests of one turn in one statement, each as its own read would', async () => {
    const queries = [
      query({}),
      query({ customerId: 'cus_ctx_b', identityKeys: ['customer:cus_ctx_b'] }),
      query({ normalized: otherCode }),
      query({ normalized: 'NO-SUCH-CODE' }),
      query({ idempotencyKey: key }),
      query({ identityKeys: [] }),
    ];
    const reader = new ContextReader(t.app.db);
    const batched = await Promise.all(queries.map((q) => reader.read(q)));
    expect(reader.stats).toEqual({ statements: 1, reads: queries.length });

    const alone = [];
    for (const q of queries) alone.push(await single(t, q));
    expect(batched).toEqual(alone);
    // What each read found, so the comparison above is about something.
    expect(batched[0]?.context?.customerUses).toBe(1);
    expect(batched[1]?.context?.customerUses).toBe(0);
    expect(batched[2]?.context?.code.normalized).toBe(otherCode);
    expect(batched[3]).toEqual({ context: null, existing: null });
    expect(batched[4]?.existing?.customerId).toBe('cus_ctx_a');
    expect(batched[4]?.context).toBeNull();
  });

  it('sends reads of different turns separately, and a read alone as the single statement', async () => {
    const reader = new ContextReader(t.app.db);
    const first = await reader.read(query({}));
    const second = await reader.read(query({ normalized: otherCode }));
    expect(reader.stats).toEqual({ statements: 2, reads: 2 });
    expect(first).toEqual(await single(t, query({})));
    expect(second.context?.code.normalized).toBe(otherCode);
  });

  it('splits a turn with more reads than a statement carries', async () => {
    const reader = new ContextReader(t.app.db, 4);
    const results = await Promise.all(Array.from({ length: 10 }, () => reader.read(query({}))));
    expect(reader.stats).toEqual({ statements: 3, reads: 10 });
    expect(results.every((r) => r.context?.customerUses === 1)).toBe(true);
  });

  it('sends the reads of a failed statement again one by one: one bad read fails alone', async () => {
    const reader = new ContextReader(t.app.db);
    // A lone surrogate: the JSON the batch is sent as cannot carry it; the single-read statement can.
    const reads = [
      reader.read(query({})),
      reader.read(query({ customerId: 'cus_\ud800' })),
      reader.read(query({})),
    ];
    const [first, odd, third] = await Promise.all(reads);
    expect(first?.context?.customerUses).toBe(1);
    expect(third?.context?.customerUses).toBe(1);
    expect(odd?.context?.customerUses).toBe(0);
    expect(reader.stats).toEqual({ statements: 4, reads: 3 });
  });

  it('fails the reads that fail alone too, and the next turn reads afresh', async () => {
    // A database without the schema: the function the reads call does not exist there.
    const bare = await backend.open<Database>();
    try {
      const reader = new ContextReader(bare.db);
      const reads = [reader.read(query({})), reader.read(query({ normalized: otherCode }))];
      for (const read of reads) await expect(read).rejects.toThrow(/promoguard_context/);
      await expect(reader.read(query({}))).rejects.toThrow(/promoguard_context/);
      expect(reader.stats).toEqual({ statements: 4, reads: 3 });
    } finally {
      await bare.close();
    }
  });
});
