/**
 * The counter-driven risk features through the real HTTP app, on every database backend × every
 * counter store: process memory, and Redis (TEST_REDIS_URL; required under CI by the harness). On each
 * database one app per counter store, as two nodes would be (starting PGlite is the costly part), the
 * Redis one in a key namespace of its own, deleted afterwards. A default rule blocks a device farm, the
 * attempt being decided never counts in its own features, and every window ends on the app clock
 * (TestClock): an event at t counts for decisions in [t, t + W).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REFUSAL_MESSAGE } from '../../src/http/routes/redemptions.js';
import { campaignWithCode, startTestApp, type TestApp, TestClock, unique } from '../support/app.js';
import { backends, type TestBackend } from '../support/backends.js';
import { guardStores } from '../support/redis.js';
import {
  decisionOf,
  expectBlocked,
  expectChallenged,
  expectRedeemed,
  nextIPv4,
  redeem,
  ruleIn,
  sharedDatabase,
  statsOf,
  unknownCode,
  validate,
} from './helpers.js';

const NOW = '2026-06-01T12:00:00Z';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** One database per backend; on it one app (node) per counter store, each in a Redis namespace of its own. */
interface CountingApps {
  apps: Map<string, { t: TestApp; clock: TestClock }>;
  close(): Promise<void>;
}

async function startCountingApps(backend: TestBackend): Promise<CountingApps> {
  const database = await sharedDatabase(backend);
  const apps = new Map<string, { t: TestApp; clock: TestClock }>();
  const cleanups: (() => Promise<void>)[] = [];
  const close = async () => {
    try {
      for (const cleanup of cleanups.reverse()) await cleanup();
    } finally {
      await database.close();
    }
  };
  try {
    for (const store of guardStores) {
      const opened = await store.open();
      cleanups.push(() => opened.close());
      // The per-customer lockout at its default: one test locks a guesser out.
      const env: Record<string, string> = {
        REDIS_KEY_PREFIX: opened.keyPrefix,
        LOCKOUT_AFTER_FAILURES: '10',
      };
      if (store.name === 'redis') {
        const url = process.env['TEST_REDIS_URL'];
        if (!url) throw new Error('the Redis counter store is listed but TEST_REDIS_URL is not set');
        env['REDIS_URL'] = url;
      }
      const clock = new TestClock(new Date(NOW));
      const t = await startTestApp(database.node, { clock, env });
      cleanups.push(() => t.close());
      apps.set(store.name, { t, clock });
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { apps, close };
}

describe.each(backends.map((b) => [b.name, b] as const))('risk features on %s', (_db, backend) => {
  let started: CountingApps | undefined;
  beforeAll(async () => {
    started = await startCountingApps(backend);
  });
  afterAll(async () => started?.close());

  describe.each(guardStores.map((s) => [s.name] as const))('with %s counters', (storeName) => {
    let t: TestApp;
    let clock: TestClock;
    beforeAll(() => {
      const app = started?.apps.get(storeName);
      if (!app) throw new Error(`no app for the ${storeName} counters`);
      ({ t, clock } = app);
    });

    it('features never count the attempt being decided', async () => {
      const { code } = await campaignWithCode(t);
      const device = unique('dev-own-');
      const ip = nextIPv4();
      const alice = unique('CUS_OWN_');
      const bob = unique('CUS_OWN_');
      // New accounts: the shared-device rules look only at persons with a new account among them.
      const account_created_at = new Date(clock.now().getTime() - 3_600_000).toISOString();
      const context = { device_id: device, ip, account_created_at };

      const first = expectRedeemed(await redeem(t, code, alice, { context }));
      expect(first.decision.features).toMatchObject({
        device_customers_24h: 0,
        device_campaign_redemptions_24h: 0,
        ip_failed_attempts_1h: 0,
      });
      // The same customer again: she is now seen, her first redemption counted.
      const second = expectRedeemed(await redeem(t, code, alice, { context }));
      expect(second.decision.features).toMatchObject({
        device_customers_24h: 1,
        device_campaign_redemptions_24h: 1,
      });
      // Bob on her device: he is not counted in his own decision; her two redemptions are.
      const third = await redeem(t, code, bob, { context });
      expect(decisionOf(third).features).toMatchObject({
        device_customers_24h: 1,
        device_campaign_redemptions_24h: 2,
      });
      // Two redemptions from this device already: the default repeat rule holds the third for review.
      expect(decisionOf(third).because).toContain('rule_default_device_repeat');
      expect(expectRedeemed(third, 'review').review_status).toBe('pending');

      // A failed attempt counts for later decisions from the address, never for itself.
      const failed = await validate(t, unknownCode(), bob, { context: { ip } });
      expect(failed.json()).toMatchObject({ valid: false, reason: 'code_not_found' });
      const later = await validate(t, code, bob, { context: { ip } });
      expect(decisionOf(later).features.ip_failed_attempts_1h).toBe(1);
    });

    it('a default rule blocks a device farm: the sixth account on one device is refused until the window passes', async () => {
      const { code } = await campaignWithCode(t);
      const device = unique('dev-farm-');
      const start = clock.now().getTime();
      const actions: string[] = [];
      const seen: number[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await validate(t, code, unique('CUS_FARM_'), {
          context: { device_id: device, account_created_at: new Date(start - 3_600_000).toISOString() },
        });
        expect(r.json().valid, r.body).toBe(true);
        actions.push(decisionOf(r).action);
        seen.push(decisionOf(r).features.device_customers_24h ?? -1);
      }
      expect(seen).toEqual([0, 1, 2, 3, 4]);
      // Three and four accounts: the default "shared device" rule wants a look, not a refusal.
      expect(actions).toEqual(['allow', 'allow', 'allow', 'review', 'review']);

      const sixth = unique('CUS_FARM_');
      const checked = await validate(t, code, sixth, { context: { device_id: device } });
      expect(checked.json()).toEqual({ valid: false, reason: 'blocked_by_rule', message: REFUSAL_MESSAGE });
      // The refused validation saw the sixth account on the device: its redemption attempt counts six.
      const refused = expectBlocked(await redeem(t, code, sixth, { context: { device_id: device } }));
      expect(refused.because).toEqual(['rule_default_device_farm']);
      expect(ruleIn(refused, 'rule_default_device_farm')?.features).toEqual({ device_customers_24h: 6 });

      // Every account was seen at `start`: they count until start + 24 h, not at it.
      clock.set(new Date(start + DAY - 1).toISOString());
      expectBlocked(await redeem(t, code, unique('CUS_FARM_'), { context: { device_id: device } }));
      clock.set(new Date(start + DAY).toISOString());
      // The attempt just refused (at start + 24 h - 1 ms) is the only one still in the window.
      const fresh = expectRedeemed(
        await redeem(t, code, unique('CUS_FARM_'), { context: { device_id: device } }),
      );
      expect(fresh.decision.features.device_customers_24h).toBe(1);
    });

    it('failed attempts from an address count for exactly one hour; fifteen call for a step-up', async () => {
      const { code } = await campaignWithCode(t);
      const ip = nextIPv4();
      const start = clock.now().getTime();
      for (let i = 0; i < 15; i++) {
        const r = await validate(t, unknownCode(), unique('CUS_GUESS_'), { context: { ip } });
        expect(r.json()).toMatchObject({ valid: false, reason: 'code_not_found' });
      }
      const customer = unique('CUS_GUESS_');
      const challenged = await redeem(t, code, customer, { context: { ip } });
      expectChallenged(challenged);
      expect(decisionOf(challenged).because).toEqual(['rule_default_guessing_address']);
      expect(decisionOf(challenged).features.ip_failed_attempts_1h).toBe(15);

      clock.set(new Date(start + HOUR - 1).toISOString());
      const stillChallenged = await redeem(t, code, customer, { context: { ip } });
      expectChallenged(stillChallenged);
      expect(decisionOf(stillChallenged).features.ip_failed_attempts_1h).toBe(15);
      clock.set(new Date(start + HOUR).toISOString());
      const served = expectRedeemed(await redeem(t, code, customer, { context: { ip } }));
      expect(served.decision.features.ip_failed_attempts_1h).toBe(0);
    });

    it('a code a locked-out guesser asked for challenges the next new account using it, not an established one', async () => {
      const { code } = await campaignWithCode(t);
      const guesser = unique('CUS_GUESS_');
      const ip = nextIPv4();
      for (let i = 0; i < 10; i++) {
        const r = await validate(t, unknownCode(), guesser, { context: { ip } });
        expect(r.json()).toMatchObject({ valid: false, reason: 'code_not_found' });
      }
      // Locked: the code it was about to try is refused unread, and remembered.
      const locked = await validate(t, code, guesser, { context: { ip } });
      expect(locked.statusCode).toBe(429);
      expect(locked.json().reason).toBe('locked');

      // The same guesser as a fresh account on another address and device.
      const fresh = await redeem(t, code, unique('CUS_NEW_'), {
        context: { ip: nextIPv4(), device_id: unique('dev-'), account_created_at: clock.now().toISOString() },
      });
      expectChallenged(fresh);
      expect(decisionOf(fresh).because).toEqual(['rule_default_code_after_lockout']);
      expect(decisionOf(fresh).features.code_locked_tries_1h).toBe(1);

      const monthOld = new Date(clock.now().getTime() - 30 * DAY).toISOString();
      const established = expectRedeemed(
        await redeem(t, code, unique('CUS_OLD_'), {
          context: { ip: nextIPv4(), account_created_at: monthOld },
        }),
      );
      expect(established.decision.features.code_locked_tries_1h).toBe(1);
    });

    it('concurrent attempts read their counters without failing open while the store is healthy', async () => {
      const { code } = await campaignWithCode(t);
      const before = await statsOf(t, t.keys.admin);
      const responses = await Promise.all(
        Array.from({ length: 20 }, () =>
          redeem(t, code, unique('CUS_BUSY_'), {
            context: { device_id: unique('dev-busy-'), ip: nextIPv4() },
          }),
        ),
      );
      const outcomes = responses.map(
        (r) => `${r.statusCode} ${decisionOf(r).action} [${decisionOf(r).unavailable_features}]`,
      );
      expect(outcomes).toEqual(Array.from({ length: 20 }, () => '201 allow []'));
      const after = await statsOf(t, t.keys.admin);
      expect(after.feature_errors).toBe(before.feature_errors);
      expect(after.fail_open_reviews).toBe(before.fail_open_reviews);
    });

    it('counts distinct payment instruments per code and new accounts per campaign', async () => {
      const { code } = await campaignWithCode(t);
      const now = clock.now().getTime();
      const newAccount = { account_created_at: new Date(now - 2 * HOUR).toISOString() };
      const oldAccount = { account_created_at: new Date(now - 30 * DAY).toISOString() };
      const card = (c: string) => `card-${c}-${code}`;
      const plan: Record<string, unknown>[] = [
        { payment_fingerprint: card('a'), ...newAccount },
        { payment_fingerprint: card('b'), ...newAccount },
        { payment_fingerprint: card('a'), ...oldAccount },
      ];
      for (const context of plan) expectRedeemed(await redeem(t, code, unique('CUS_CARD_'), { context }));
      const next = await redeem(t, code, unique('CUS_CARD_'), {
        context: { payment_fingerprint: card('c'), ...newAccount },
      });
      expect(decisionOf(next).features).toMatchObject({
        code_payment_instruments_30d: 2,
        campaign_new_accounts_1h: 2,
        account_age_hours: 2,
      });
    });
  });
});
