/**
 * The published event schemas: one JSON Schema file per event type under schemas/events/, as
 * scripts/event-schemas.mjs writes them, and the events the app really emits (on every backend),
 * in their wire form, validate against them with an independent validator (Ajv, JSON Schema 2020-12).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain script without type declarations
import { schemaOf } from '../../scripts/event-schemas.mjs';
import { type DomainEvent, EVENT_TYPES } from '../../src/domain/events.js';
import { toWire } from '../../src/events/wire.js';
import { campaignWithCode, checkoutBody, startTestApp, type TestApp, unique } from '../support/app.js';
import { backends } from '../support/backends.js';

const DIR = path.resolve(import.meta.dirname, '../../schemas/events');
const fileOf = (type: string) => JSON.parse(readFileSync(path.join(DIR, `${type}.json`), 'utf8')) as object;

function validator() {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  ajv.addFormat('date-time', (s: string) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(s));
  for (const type of EVENT_TYPES) ajv.addSchema(fileOf(type), type);
  return ajv;
}

describe('the event schema files', () => {
  it('has one file per event type, as the generator writes it', () => {
    for (const type of EVENT_TYPES) expect(fileOf(type), type).toEqual(schemaOf(type));
  });

  it('refuses an event whose payload lacks a documented field', () => {
    const ajv = validator();
    const wire = JSON.parse(
      JSON.stringify(
        toWire({
          id: 'evt_1',
          type: 'code.created',
          aggregateId: 'cod_1',
          payload: { campaign_id: 'cmp_1' },
          createdAt: new Date(),
        }),
      ),
    );
    expect(ajv.validate('code.created', wire)).toBe(false);
  });
});

for (const backend of backends) {
  describe(`emitted events on ${backend.name}`, () => {
    let t: TestApp;
    const seen: DomainEvent[] = [];

    beforeAll(async () => {
      t = await startTestApp(backend);
      t.app.bus.subscribe((e) => {
        seen.push(e);
      });
    });
    afterAll(async () => {
      await t?.close();
    });

    it('validate against the schema of their type, in their wire form', async () => {
      const { campaignId, code } = await campaignWithCode(t);
      const redeemed = await t.call('POST', '/v1/redemptions', {
        key: t.keys.checkout,
        body: checkoutBody(code),
        headers: { 'idempotency-key': unique('idem-') },
      });
      expect(redeemed.statusCode, redeemed.body).toBe(201);
      const rolled = await t.call('POST', `/v1/redemptions/${redeemed.json().id}/rollback`, {
        key: t.keys.checkout,
      });
      expect(rolled.statusCode, rolled.body).toBe(200);
      expect((await t.call('POST', `/v1/campaigns/${campaignId}/pause`)).statusCode).toBe(200);
      expect((await t.call('POST', `/v1/campaigns/${campaignId}/resume`)).statusCode).toBe(200);
      const batch = await t.call('POST', `/v1/campaigns/${campaignId}/codes`, {
        body: { generate: { count: 3, prefix: 'SCH' } },
      });
      expect(batch.statusCode, batch.body).toBeLessThan(300);
      // The batch's event is written once its codes are in, which may finish after the answer.
      for (let i = 0; i < 100 && !seen.some((e) => e.type === 'code.batch_generated'); i++) {
        await t.app.relay.drain();
        if (!seen.some((e) => e.type === 'code.batch_generated')) await new Promise((r) => setTimeout(r, 50));
      }

      const ajv = validator();
      const types = new Set<string>();
      for (const event of seen) {
        const wire = JSON.parse(JSON.stringify(toWire(event)));
        const ok = ajv.validate(event.type, wire);
        expect(ok, `${event.type}: ${ajv.errorsText()}`).toBe(true);
        types.add(event.type);
      }
      expect([...types].sort()).toEqual(
        [
          'campaign.created',
          'code.created',
          'redemption.created',
          'redemption.rolled_back',
          'campaign.paused',
          'campaign.resumed',
          'code.batch_generated',
        ].sort(),
      );
    });
  });
}
