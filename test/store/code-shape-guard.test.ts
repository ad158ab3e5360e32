/**
 * The invariant behind refusing codes by their check symbol alone: no stored code has a generated
 * batch's shape while failing that batch's check. The database holds it on every node and under races.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CODE_ALPHABET, checkCharacter } from '../../src/domain/codes.js';
import { campaignBody, checkoutBody, startTestApp, type TestApp } from '../support/app.js';
import { backends } from '../support/backends.js';

function wrongCheck(body: string): string {
  const good = checkCharacter(body);
  return CODE_ALPHABET[(CODE_ALPHABET.indexOf(good) + 1) % 32] as string;
}

describe.each(backends.map((b) => [b.name, b] as const))('code shape guard on %s', (_name, backend) => {
  let t: TestApp;
  let campaignId: string;
  beforeAll(async () => {
    t = await startTestApp(backend);
    campaignId = (await t.call('POST', '/v1/campaigns', { body: campaignBody() })).json().id;
  });
  afterAll(async () => t?.close());

  const addCode = (code: string) => t.call('POST', `/v1/campaigns/${campaignId}/codes`, { body: { code } });
  const generate = (prefix: string) =>
    t.call('POST', `/v1/campaigns/${campaignId}/codes`, {
      body: { generate: { count: 3, prefix, random_length: 8 } },
    });

  it('refuses a chosen code with a batch shape and a wrong check symbol, accepts a right one', async () => {
    expect((await generate('SHA')).statusCode).toBe(201);
    const body = 'ABCDEFGH';
    const bad = await addCode(`SHA${body}${wrongCheck(body)}`);
    expect(bad.statusCode).toBe(409);
    expect(bad.json()).toMatchObject({ code: 'code_conflicts_with_pattern' });
    const good = await addCode(`SHA${body}${checkCharacter(body)}`);
    expect(good.statusCode, good.body).toBe(201);
    const redeemable = await t.call('POST', '/v1/validations', {
      key: t.keys.checkout,
      body: checkoutBody(`sha-${body}${checkCharacter(body)}`),
    });
    expect(redeemable.json()).toMatchObject({ valid: true });
  });

  it('refuses a batch whose shape existing chosen codes would break', async () => {
    const body = 'JKLMNPQR';
    expect((await addCode(`SHB${body}${wrongCheck(body)}`)).statusCode).toBe(201);
    const res = await generate('SHB');
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ code: 'code_conflicts_with_pattern' });
  });

  it('holds in the database itself, below the application', async () => {
    await generate('SHC');
    const body = '23456789';
    const insert = sql`INSERT INTO codes (id, campaign_id, code, normalized, kind)
      VALUES ('code_direct', ${campaignId}, 'x', ${`SHC${body}${wrongCheck(body)}`}, 'public')`;
    await expect(insert.execute(t.app.db)).rejects.toMatchObject({ code: 'PGSHP' });
  });

  it('lets a batch and a clashing chosen code race: never both', async () => {
    const rounds = backend.name === 'postgres' ? 8 : 2;
    for (let i = 0; i < rounds; i++) {
      const prefix = `RC${CODE_ALPHABET[i]}`;
      const body = 'STUVWXYZ';
      const [batch, code] = await Promise.all([
        generate(prefix),
        addCode(`${prefix}${body}${wrongCheck(body)}`),
      ]);
      const bothWon = batch.statusCode === 201 && code.statusCode === 201;
      expect(bothWon, `${batch.body} ${code.body}`).toBe(false);
      expect([batch.statusCode, code.statusCode]).toContain(201);
    }
  });
});
