/**
 * Loyalty coupons beside generated batches. A batch with no prefix and 13 random symbols has the length
 * of a default-format coupon (`70934-XXXXXX-500`, 14 symbols); the coupon's amount (500) holds a 0,
 * which no generated code holds, so the shape guard must let every conversion through. An app of its
 * own: a batch changes which codes the shape guard refuses in the whole database.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { campaignBody, startTestApp, type TestApp, unique } from '../support/app.js';
import { backends } from '../support/backends.js';

describe.each(backends.map((b) => [b.name, b] as const))(
  'loyalty coupons beside generated batches on %s',
  (_name, backend) => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startTestApp(backend);
    });
    afterAll(async () => t?.close());

    it('converts points into coupons next to a generated batch with no prefix', async () => {
      const created = await t.call('POST', '/v1/campaigns', { body: campaignBody() });
      const batch = await t.call('POST', `/v1/campaigns/${created.json().id}/codes`, {
        body: { generate: { count: 1, random_length: 13 } },
      });
      expect(batch.statusCode, batch.body).toBe(201);
      const program = (
        await t.call('POST', '/v1/points-programs', { body: { name: 'Q', currency: 'JPY' } })
      ).json();
      const customer = 'cus_70934';
      await t.call('POST', `/v1/customers/${customer}/points`, {
        key: t.keys.checkout,
        headers: { 'idempotency-key': unique('earn-') },
        body: { type: 'credit', points: 5000, reason: 'order' },
      });
      for (let i = 0; i < 5; i++) {
        const res = await t.call('POST', `/v1/customers/${customer}/conversions`, {
          key: t.keys.checkout,
          headers: { 'idempotency-key': unique('conv-') },
          body: { program_id: program.id, points: 500 },
        });
        expect(res.statusCode, res.body).toBe(201);
      }
    });
  },
);
