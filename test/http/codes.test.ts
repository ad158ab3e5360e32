/**
 * Codes through the HTTP API: matching as customers type codes, chosen codes, generated batches with
 * their check symbol, imports (JSON and CSV, all or nothing), CSV export and re-import, codes bound to
 * a customer, revocation and per-code use limits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CampaignCreateBody,
  type CheckoutOverrides,
  campaignBody,
  campaignWithCode,
  checkoutBody,
  startTestApp,
  type TestApp,
  unique,
} from '../support/app.js';
import { backends } from '../support/backends.js';

/** The published alphabet of generated codes (no 0/O, 1/I). */
const ALPHABET = '23456789ABCDEFGHJKLMNPQRSTUVWXYZ';

/**
 * Luhn mod 32 over ALPHABET, written from the algorithm's definition rather than taken from src:
 * from the right, every second symbol's value is doubled and its base-32 digits summed; the total
 * of a valid body-plus-check is a multiple of 32.
 */
function luhnMod32Valid(symbols: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = symbols.length - 1; i >= 0; i--) {
    const value = ALPHABET.indexOf(symbols.charAt(i));
    if (value < 0) return false;
    const addend = double ? value * 2 : value;
    sum += Math.floor(addend / 32) + (addend % 32);
    double = !double;
  }
  return sum % 32 === 0;
}

interface CodeJson {
  id: string;
  campaign_id: string;
  batch_id: string | null;
  code: string;
  normalized: string;
  kind: 'public' | 'unique';
  max_uses: number | null;
  uses: number;
  customer_id: string | null;
  status: 'active' | 'revoked';
}

describe.each(backends.map((b) => [b.name, b] as const))('codes API on %s', (_name, backend) => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp(backend);
  });
  afterAll(async () => t?.close());

  async function newCampaign(overrides: Partial<CampaignCreateBody> = {}): Promise<string> {
    const res = await t.call('POST', '/v1/campaigns', {
      key: t.keys.marketing,
      body: campaignBody(overrides),
    });
    expect(res.statusCode, res.body).toBe(201);
    return res.json().id;
  }

  function addCodes(campaignId: string, body: unknown, key = t.keys.marketing) {
    return t.call('POST', `/v1/campaigns/${campaignId}/codes`, { key, body });
  }

  async function allCodes(campaignId: string): Promise<CodeJson[]> {
    const res = await t.call('GET', `/v1/campaigns/${campaignId}/codes?limit=200`, { key: t.keys.marketing });
    expect(res.statusCode, res.body).toBe(200);
    return res.json().data;
  }

  function validate(code: string, overrides: CheckoutOverrides = {}) {
    return t.call('POST', '/v1/validations', { key: t.keys.checkout, body: checkoutBody(code, overrides) });
  }

  function redeem(code: string, overrides: CheckoutOverrides = {}) {
    return t.call('POST', '/v1/redemptions', {
      key: t.keys.checkout,
      body: checkoutBody(code, overrides),
      headers: { 'idempotency-key': unique('idem-') },
    });
  }

  describe('a public code', () => {
    it('matches ignoring case and separators', async () => {
      const { campaignId } = await campaignWithCode(t, {}, { code: 'SUMMER25' });
      for (const typed of ['SUMMER25', 'summer25', 'sum-mer 25', ' Summer_25 ', 'summer.25', 'SUM/MER/25']) {
        const res = await validate(typed);
        expect(res.statusCode, typed).toBe(200);
        expect(res.json(), typed).toEqual({
          valid: true,
          discount_minor: 500,
          currency: 'USD',
          campaign_id: campaignId,
          decision: expect.objectContaining({ action: 'allow' }),
        });
      }
      const redeemed = await redeem('sum-mer 25');
      expect(redeemed.statusCode, redeemed.body).toBe(201);
      expect(redeemed.json().campaign_id).toBe(campaignId);
    });

    it('is created as shown and read back normalized, public and multi-use', async () => {
      const campaignId = await newCampaign();
      const res = await addCodes(campaignId, { code: 'Autumn-Deal 7' });
      expect(res.statusCode, res.body).toBe(201);
      expect(res.json()).toMatchObject({
        campaign_id: campaignId,
        batch_id: null,
        code: 'Autumn-Deal 7',
        normalized: 'AUTUMNDEAL7',
        kind: 'public',
        max_uses: null,
        uses: 0,
        customer_id: null,
        status: 'active',
      });
      for (let i = 0; i < 3; i++) {
        expect((await redeem('autumndeal7', { customer: { id: `cus_${i}` } })).statusCode).toBe(201);
      }
      expect((await allCodes(campaignId))[0]?.uses).toBe(3);
    });

    it('a duplicate (in any spelling, in any campaign) is 409 code_already_exists', async () => {
      const { code } = await campaignWithCode(t, {}, { code: 'WINTER-10' });
      expect(code).toBe('WINTER-10');
      const other = await newCampaign();
      for (const dup of ['WINTER-10', 'winter10', 'Winter 10']) {
        const res = await addCodes(other, { code: dup });
        expect(res.statusCode, `${dup}: ${res.body}`).toBe(409);
        expect(res.json().code).toBe('code_already_exists');
      }
      expect(await allCodes(other)).toEqual([]);
    });

    it('refuses text that cannot be a code', async () => {
      const campaignId = await newCampaign();
      for (const bad of ['héllo!', '---', 'A'.repeat(65), 'emoji🎉']) {
        const res = await addCodes(campaignId, { code: bad });
        expect(res.statusCode, `${bad}: ${res.body}`).toBe(400);
        expect(res.json().code).toBe('validation_failed');
      }
    });
  });

  describe('generated codes', () => {
    it('a batch of N: unique, the prefix, a valid check symbol, single-use', async () => {
      const campaignId = await newCampaign();
      const res = await addCodes(campaignId, { generate: { count: 40, prefix: 'gen' } });
      expect(res.statusCode, res.body).toBe(201);
      const batch = res.json();
      expect(batch).toMatchObject({ count: 40, prefix: 'GEN', random_length: 12 });
      expect(batch.batch_id).toEqual(expect.any(String));

      const codes = await allCodes(campaignId);
      expect(codes).toHaveLength(40);
      expect(new Set(codes.map((c) => c.normalized)).size).toBe(40);
      for (const c of codes) {
        expect(c).toMatchObject({ batch_id: batch.batch_id, kind: 'unique', max_uses: 1, uses: 0 });
        // GEN + 12 random symbols + 1 check symbol, shown as GEN-XXXX-XXXX-XXXX-C.
        expect(c.normalized).toMatch(/^GEN[23456789ABCDEFGHJKLMNPQRSTUVWXYZ]{13}$/);
        expect(c.code).toMatch(/^GEN-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]$/);
        expect(c.code.replaceAll('-', '')).toBe(c.normalized);
        expect(luhnMod32Valid(c.normalized.slice(3)), c.normalized).toBe(true);
      }

      const first = codes[0] as CodeJson;
      // Typed loosely by a customer, it still matches; once used, it is used up.
      const typed = first.normalized.toLowerCase().replace(/(.{4})/g, '$1 ');
      expect((await validate(typed)).json()).toMatchObject({ valid: true, campaign_id: campaignId });
      expect((await redeem(typed)).statusCode).toBe(201);
      const second = await redeem(first.code, { customer: { id: 'cus_other' } });
      expect(second.statusCode, second.body).toBe(422);
      expect(second.json().reason).toBe('code_used_up');
      expect((await validate(first.code)).json()).toMatchObject({ valid: false, reason: 'code_used_up' });
      // The others are untouched.
      expect((await validate((codes[1] as CodeJson).code)).json().valid).toBe(true);
    });

    it('honours random_length and max_uses', async () => {
      const campaignId = await newCampaign();
      const res = await addCodes(campaignId, {
        generate: { count: 3, prefix: 'LEN', random_length: 8, max_uses: 2 },
      });
      expect(res.statusCode, res.body).toBe(201);
      for (const c of await allCodes(campaignId)) {
        expect(c.normalized).toMatch(/^LEN[2-9A-HJ-NP-Z]{9}$/);
        expect(luhnMod32Valid(c.normalized.slice(3))).toBe(true);
        expect(c.max_uses).toBe(2);
      }
      const tooShort = await addCodes(campaignId, { generate: { count: 3, random_length: 7 } });
      expect(tooShort.statusCode).toBe(400);
    });

    it('a code with a batch shape but a wrong check symbol answers code_not_found', async () => {
      const campaignId = await newCampaign();
      expect((await addCodes(campaignId, { generate: { count: 5, prefix: 'CHK' } })).statusCode).toBe(201);
      const real = (await allCodes(campaignId))[0] as CodeJson;
      expect((await validate(real.normalized)).json().valid).toBe(true);

      const body = real.normalized.slice(0, -1);
      const check = real.normalized.slice(-1);
      const wrongChecks = [...ALPHABET].filter((s) => s !== check);
      expect(wrongChecks).toHaveLength(31);
      for (const wrong of wrongChecks.slice(0, 5)) {
        const res = await validate(body + wrong);
        expect(res.statusCode).toBe(200);
        expect(res.json()).toEqual({ valid: false, reason: 'code_not_found', message: expect.any(String) });
      }
      // One mistyped symbol in the random part.
      const pos = 5;
      const typo = real.normalized.charAt(pos) === 'A' ? 'B' : 'A';
      const mistyped = real.normalized.slice(0, pos) + typo + real.normalized.slice(pos + 1);
      expect((await validate(mistyped)).json()).toMatchObject({ valid: false, reason: 'code_not_found' });

      const redeemed = await redeem(body + wrongChecks[0]);
      expect(redeemed.statusCode, redeemed.body).toBe(422);
      expect(redeemed.json()).toMatchObject({ code: 'redemption_refused', reason: 'code_not_found' });
      expect((await allCodes(campaignId)).every((c) => c.uses === 0)).toBe(true);
    });

    it('refuses a pattern that existing chosen codes already have (409 code_conflicts_with_pattern)', async () => {
      const campaignId = await newCampaign();
      // PAT + 8 symbols + 1: the shape of a batch with prefix PAT and random_length 8.
      expect((await addCodes(campaignId, { code: 'PATAAAAAAAAA' })).statusCode).toBe(201);
      const res = await addCodes(campaignId, { generate: { count: 2, prefix: 'PAT', random_length: 8 } });
      expect(res.statusCode, res.body).toBe(409);
      expect(res.json().code).toBe('code_conflicts_with_pattern');
      expect(await allCodes(campaignId)).toHaveLength(1);
    });
  });

  describe('listing codes', () => {
    it('pages with limit and next_cursor; each code once; null on the last page', async () => {
      const campaignId = await newCampaign();
      expect((await addCodes(campaignId, { generate: { count: 5, prefix: 'PG' } })).statusCode).toBe(201);
      const sizes: number[] = [];
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const url: string = `/v1/campaigns/${campaignId}/codes?limit=2${cursor ? `&cursor=${cursor}` : ''}`;
        const res = await t.call('GET', url, { key: t.keys.marketing });
        expect(res.statusCode, res.body).toBe(200);
        const page = res.json();
        sizes.push(page.data.length);
        seen.push(...page.data.map((c: CodeJson) => c.id));
        cursor = page.next_cursor;
      } while (cursor !== null && sizes.length < 10);
      expect(sizes).toEqual([2, 2, 1]);
      expect(new Set(seen).size).toBe(5);
    });

    it('the last full page already has next_cursor null (README: "null on the last")', async () => {
      const campaignId = await newCampaign();
      expect((await addCodes(campaignId, { generate: { count: 4, prefix: 'FULL' } })).statusCode).toBe(201);
      const first = await t.call('GET', `/v1/campaigns/${campaignId}/codes?limit=2`);
      expect(first.json().data).toHaveLength(2);
      expect(first.json().next_cursor).not.toBeNull();
      const second = await t.call(
        'GET',
        `/v1/campaigns/${campaignId}/codes?limit=2&cursor=${first.json().next_cursor}`,
      );
      expect(second.json().data).toHaveLength(2);
      // There is nothing after this page: a client following next_cursor gets an empty page otherwise.
      expect(second.json().next_cursor).toBeNull();
    });
  });

  describe('imports are all or nothing', () => {
    it('imports a JSON list with per-code customer and max_uses', async () => {
      const campaignId = await newCampaign();
      const res = await addCodes(campaignId, {
        codes: [
          { code: 'IMP-ONE' },
          { code: 'IMP-TWO', max_uses: 3 },
          { code: 'imp three', customer_id: 'cus_9' },
        ],
      });
      expect(res.statusCode, res.body).toBe(201);
      expect(res.json()).toEqual({ imported: 3 });
      const byNorm = new Map((await allCodes(campaignId)).map((c) => [c.normalized, c]));
      expect(byNorm.get('IMPONE')).toMatchObject({ kind: 'public', max_uses: null, customer_id: null });
      expect(byNorm.get('IMPTWO')).toMatchObject({ kind: 'unique', max_uses: 3 });
      expect(byNorm.get('IMPTHREE')).toMatchObject({ customer_id: 'cus_9', code: 'imp three' });
    });

    it('one bad code in a JSON list: 400 naming it, nothing imported', async () => {
      const campaignId = await newCampaign();
      const res = await addCodes(campaignId, {
        codes: [{ code: 'GOOD-A1' }, { code: 'bad code!' }, { code: 'GOOD-A2' }],
      });
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json().code).toBe('validation_failed');
      expect(res.json().errors).toEqual([expect.objectContaining({ index: 1, code: 'bad code!' })]);
      expect(await allCodes(campaignId)).toEqual([]);
      expect((await validate('GOOD-A1')).json()).toMatchObject({ valid: false, reason: 'code_not_found' });

      const twice = await addCodes(campaignId, { codes: [{ code: 'TWICE-1' }, { code: 'twice1' }] });
      expect(twice.statusCode, twice.body).toBe(400);
      expect(twice.json().errors).toEqual([expect.objectContaining({ index: 1, code: 'twice1' })]);
      expect(await allCodes(campaignId)).toEqual([]);
    });

    it('one existing code in a JSON list: 409 naming it, nothing imported', async () => {
      await campaignWithCode(t, {}, { code: 'TAKEN-77' });
      const campaignId = await newCampaign();
      const res = await addCodes(campaignId, {
        codes: [{ code: 'FRESH-1' }, { code: 'taken 77' }, { code: 'FRESH-2' }],
      });
      expect(res.statusCode, res.body).toBe(409);
      expect(res.json()).toMatchObject({ code: 'code_already_exists', codes: ['taken 77'] });
      expect(await allCodes(campaignId)).toEqual([]);
    });

    it('imports CSV with a header of code, customer_id, max_uses', async () => {
      const campaignId = await newCampaign();
      const csv = 'code,customer_id,max_uses\nCSV-A,,\nCSV-B,cus_7,1\r\n"CSV C",,5\n';
      const res = await addCodes(campaignId, { csv });
      expect(res.statusCode, res.body).toBe(201);
      expect(res.json()).toEqual({ imported: 3 });
      const byNorm = new Map((await allCodes(campaignId)).map((c) => [c.normalized, c]));
      expect(byNorm.get('CSVA')).toMatchObject({ kind: 'public', max_uses: null, customer_id: null });
      expect(byNorm.get('CSVB')).toMatchObject({ kind: 'unique', max_uses: 1, customer_id: 'cus_7' });
      expect(byNorm.get('CSVC')).toMatchObject({ max_uses: 5 });

      // As a spreadsheet saves it: a byte order mark, CRLF line ends, a blank last line.
      const excel = await addCodes(campaignId, {
        csv: '\uFEFFcode,max_uses\r\nCSV-XL-1,2\r\nCSV-XL-2,\r\n\r\n',
      });
      expect(excel.statusCode, excel.body).toBe(201);
      expect(excel.json()).toEqual({ imported: 2 });
      expect((await validate('csv xl 1')).json()).toMatchObject({ valid: true, campaign_id: campaignId });
    });

    it('one bad CSV row: 400 naming the problem, nothing imported', async () => {
      const campaignId = await newCampaign();
      const badNumber = await addCodes(campaignId, { csv: 'code,max_uses\nROW-A,1\nROW-B,zero\nROW-C,2\n' });
      expect(badNumber.statusCode, badNumber.body).toBe(400);
      expect(badNumber.json().code).toBe('validation_failed');
      expect(badNumber.json().detail).toMatch(/line 3/);
      expect(badNumber.json().detail).toMatch(/max_uses/);

      const badCode = await addCodes(campaignId, { csv: 'code\nROW-D\nno way!\n' });
      expect(badCode.statusCode, badCode.body).toBe(400);
      expect(JSON.stringify(badCode.json().errors)).toContain('no way!');

      const badHeader = await addCodes(campaignId, { csv: 'coupon,amount\nROW-E,5\n' });
      expect(badHeader.statusCode, badHeader.body).toBe(400);
      expect(badHeader.json().detail).toMatch(/header/);

      const noRows = await addCodes(campaignId, { csv: 'code\n' });
      expect(noRows.statusCode, noRows.body).toBe(400);

      expect(await allCodes(campaignId)).toEqual([]);
    });

    it('one existing code in a CSV: 409 naming it, nothing imported', async () => {
      await campaignWithCode(t, {}, { code: 'CSVTAKEN' });
      const campaignId = await newCampaign();
      const res = await addCodes(campaignId, { csv: 'code\nCSV-NEW-1\ncsv-taken\nCSV-NEW-2\n' });
      expect(res.statusCode, res.body).toBe(409);
      expect(res.json()).toMatchObject({ code: 'code_already_exists', codes: ['csv-taken'] });
      expect(await allCodes(campaignId)).toEqual([]);
    });
  });

  describe('CSV export', () => {
    it('streams text/csv with a header and one line per code', async () => {
      const campaignId = await newCampaign();
      expect((await addCodes(campaignId, { generate: { count: 7, prefix: 'EXP' } })).statusCode).toBe(201);
      expect((await addCodes(campaignId, { code: 'EXPORT-PUBLIC' })).statusCode).toBe(201);
      expect(
        (await addCodes(campaignId, { code: 'EXPORT-BOUND', customer_id: 'cus, "quoted"' })).statusCode,
      ).toBe(201);

      const res = await t.call('GET', `/v1/campaigns/${campaignId}/codes?format=csv`, {
        key: t.keys.marketing,
      });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/csv/);
      const lines = res.body.trimEnd().split(/\r?\n/);
      expect(lines[0]).toBe('code,customer_id,max_uses,partner,uses,status,created_at');
      expect(lines).toHaveLength(1 + 9);
      const listed = await allCodes(campaignId);
      for (const c of listed) {
        expect(lines.some((l) => l.startsWith(`${c.code},`))).toBe(true);
      }
      // A customer id with a comma and quotes is quoted as CSV demands.
      expect(lines.some((l) => l.startsWith('EXPORT-BOUND,"cus, ""quoted""",'))).toBe(true);

      const empty = await newCampaign();
      const none = await t.call('GET', `/v1/campaigns/${empty}/codes?format=csv`);
      expect(none.statusCode).toBe(200);
      expect(none.body.trimEnd().split(/\r?\n/)).toEqual([
        'code,customer_id,max_uses,partner,uses,status,created_at',
      ]);
    });

    it('the exported CSV re-imports: codes stay unique across campaigns, and load into a new installation', async () => {
      const source = await newCampaign();
      expect((await addCodes(source, { generate: { count: 4, prefix: 'MOVE' } })).statusCode).toBe(201);
      expect((await addCodes(source, { code: 'MOVE-PUBLIC' })).statusCode).toBe(201);
      expect(
        (await addCodes(source, { code: 'MOVE-BOUND', customer_id: 'cus,1', max_uses: 2 })).statusCode,
      ).toBe(201);
      const csv = (await t.call('GET', `/v1/campaigns/${source}/codes?format=csv`)).body;
      const exported = await allCodes(source);

      // Another campaign of the same installation: every code text is taken, so nothing is imported.
      const target = await newCampaign();
      const clash = await addCodes(target, { csv });
      expect(clash.statusCode, clash.body).toBe(409);
      expect(clash.json().code).toBe('code_already_exists');
      expect([...clash.json().codes].sort()).toEqual(exported.map((c) => c.code).sort());
      expect(await allCodes(target)).toEqual([]);

      // A campaign of another installation (a fresh database): the same CSV imports every code as it was.
      const other = await startTestApp(backend);
      try {
        const created = await other.call('POST', '/v1/campaigns', { body: campaignBody() });
        const otherCampaign = created.json().id as string;
        const imported = await other.call('POST', `/v1/campaigns/${otherCampaign}/codes`, { body: { csv } });
        expect(imported.statusCode, imported.body).toBe(201);
        expect(imported.json()).toEqual({ imported: exported.length });
        const listed = (await other.call('GET', `/v1/campaigns/${otherCampaign}/codes?limit=200`)).json()
          .data as CodeJson[];
        const shape = (c: CodeJson) => [c.code, c.normalized, c.customer_id, c.max_uses].join('|');
        expect(listed.map(shape).sort()).toEqual(exported.map(shape).sort());
        const v = await other.call('POST', '/v1/validations', {
          key: other.keys.checkout,
          body: checkoutBody('move-public'),
        });
        expect(v.json()).toMatchObject({ valid: true, campaign_id: otherCampaign });
      } finally {
        await other.close();
      }
    });
  });

  describe('a code bound to a customer', () => {
    it('is refused for another customer and accepted for its owner', async () => {
      const campaignId = await newCampaign();
      const made = await addCodes(campaignId, { code: 'VIP-ANNA', customer_id: 'cus_anna' });
      expect(made.statusCode, made.body).toBe(201);
      expect(made.json().customer_id).toBe('cus_anna');

      const stranger = await validate('vip-anna', { customer: { id: 'cus_bob' } });
      expect(stranger.json()).toMatchObject({ valid: false, reason: 'code_bound_to_other_customer' });
      const strangerRedeem = await redeem('vip-anna', { customer: { id: 'cus_bob' } });
      expect(strangerRedeem.statusCode).toBe(422);
      expect(strangerRedeem.json().reason).toBe('code_bound_to_other_customer');

      expect((await validate('vip-anna', { customer: { id: 'cus_anna' } })).json().valid).toBe(true);
      const owner = await redeem('vip-anna', { customer: { id: 'cus_anna' } });
      expect(owner.statusCode, owner.body).toBe(201);
      expect(owner.json().customer_id).toBe('cus_anna');
    });

    it('generated codes can be bound too', async () => {
      const campaignId = await newCampaign();
      const res = await addCodes(campaignId, {
        generate: { count: 2, prefix: 'BND', customer_id: 'cus_carl' },
      });
      expect(res.statusCode, res.body).toBe(201);
      const code = (await allCodes(campaignId))[0] as CodeJson;
      expect(code.customer_id).toBe('cus_carl');
      expect((await validate(code.code, { customer: { id: 'cus_dora' } })).json().reason).toBe(
        'code_bound_to_other_customer',
      );
      expect((await validate(code.code, { customer: { id: 'cus_carl' } })).json().valid).toBe(true);
    });
  });

  describe('revoke', () => {
    it('refuses the code from the next request on; revoking twice is 200 both times', async () => {
      const { code } = await campaignWithCode(t, {}, { code: 'REVOKE-ME' });
      expect((await validate(code)).json().valid).toBe(true);

      const first = await t.call('POST', '/v1/codes/revoke%20me/revoke', {
        key: t.keys.marketing,
        body: { reason: 'posted on a coupon site' },
      });
      expect(first.statusCode, first.body).toBe(200);
      expect(first.json()).toMatchObject({ code: 'REVOKE-ME', status: 'revoked' });
      expect(first.json().revoked_at).toEqual(expect.any(String));

      expect((await validate(code)).json()).toMatchObject({ valid: false, reason: 'code_revoked' });
      const redeemed = await redeem(code);
      expect(redeemed.statusCode).toBe(422);
      expect(redeemed.json()).toMatchObject({ code: 'redemption_refused', reason: 'code_revoked' });

      const second = await t.call('POST', '/v1/codes/REVOKE-ME/revoke', { key: t.keys.marketing });
      expect(second.statusCode, second.body).toBe(200);
      expect(second.json()).toMatchObject({ status: 'revoked', revoked_at: first.json().revoked_at });

      const audit = await t.app.db
        .selectFrom('audit_log')
        .selectAll()
        .where('target_id', '=', first.json().id)
        .where('action', '=', 'code.revoked')
        .execute();
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({ action: 'code.revoked', reason: 'posted on a coupon site' });
    });

    it('answers 404 code_not_found for an unknown code', async () => {
      const res = await t.call('POST', '/v1/codes/NO-SUCH-CODE-42/revoke', { key: t.keys.marketing });
      expect(res.statusCode, res.body).toBe(404);
      expect(res.json().code).toBe('code_not_found');
    });
  });

  it('max_uses on chosen codes caps their uses', async () => {
    const campaignId = await newCampaign();
    const made = await addCodes(campaignId, { code: 'TWICE-ONLY', max_uses: 2 });
    expect(made.statusCode, made.body).toBe(201);
    expect(made.json()).toMatchObject({ kind: 'unique', max_uses: 2, uses: 0 });

    expect((await redeem('TWICE-ONLY', { customer: { id: 'cus_a' } })).statusCode).toBe(201);
    expect((await redeem('TWICE-ONLY', { customer: { id: 'cus_b' } })).statusCode).toBe(201);
    const third = await redeem('TWICE-ONLY', { customer: { id: 'cus_c' } });
    expect(third.statusCode, third.body).toBe(422);
    expect(third.json().reason).toBe('code_used_up');
    expect((await allCodes(campaignId))[0]).toMatchObject({ uses: 2, max_uses: 2 });
    const campaign = (await t.call('GET', `/v1/campaigns/${campaignId}`)).json();
    expect(campaign).toMatchObject({ redemptions_used: 2, spent_minor: 1000 });
  });
});
