/**
 * People in the console, through the real app on each store: sign-in gives a session cookie whose
 * role passes exactly the scope checks of an API key with the role's scopes; a change needs the
 * session's CSRF token and our own origin; a planted session id is never adopted; sessions end when
 * idle, when old, on sign-out, on disabling and on a new password; wrong passwords lock a user; every
 * action is audited as the person.
 */
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { campaignBody, startTestApp, type TestApp, TestClock, unique } from '../support/app.js';
import { backends } from '../support/backends.js';

const ORIGIN = 'http://localhost';
const PASSWORD = 'correct horse battery staple';

interface Session {
  cookie: string;
  csrf: string;
  userId: string;
}

/** The session id a Set-Cookie header carries. */
function cookieOf(res: LightMyRequestResponse): string {
  const header = res.headers['set-cookie'];
  const line = Array.isArray(header) ? header[0] : header;
  const match = /^(pg_session=[^;]*)/.exec(line ?? '');
  if (!match?.[1]) throw new Error(`no session cookie in ${String(line)}`);
  return match[1];
}

describe.each(backends.map((b) => [b.name, b] as const))('console sessions on %s', (_name, backend) => {
  let t: TestApp;
  const clock = new TestClock(new Date('2026-06-01T08:00:00Z'));
  const emails: Record<string, string> = {};

  beforeAll(async () => {
    t = await startTestApp(backend, {
      clock,
      env: {
        CONSOLE_PASSWORD_SCRYPT_LOG_N: '14',
        CONSOLE_LOCKOUT_AFTER_FAILURES: '3',
        CONSOLE_LOCKOUT_MINUTES: '15',
        CONSOLE_SESSION_IDLE_MINUTES: '30',
        CONSOLE_SESSION_MAX_HOURS: '8',
      },
    });
    for (const role of ['admin', 'marketing', 'fraud', 'on_call', 'finance']) {
      emails[role] = `${role}.${unique('u').toLowerCase()}@example.com`;
      const res = await t.call('POST', '/v1/console-users', {
        body: { email: emails[role], role, password: PASSWORD },
      });
      expect(res.statusCode, res.body).toBe(201);
    }
  });
  afterAll(async () => t?.close());

  function signIn(email: string, password = PASSWORD, headers: Record<string, string> = {}) {
    return t.server.inject({
      method: 'POST',
      url: '/v1/session',
      headers: { origin: ORIGIN, ...headers },
      payload: { email, password },
    });
  }

  async function session(role: string): Promise<Session> {
    const res = await signIn(emails[role] as string);
    expect(res.statusCode, res.body).toBe(201);
    return { cookie: cookieOf(res), csrf: res.json().csrf_token, userId: res.json().user.id };
  }

  /** A request as the console makes it: the cookie, and for a change the CSRF token and our origin. */
  function as(
    s: Session,
    method: InjectOptions['method'],
    url: string,
    options: { body?: unknown; headers?: Record<string, string> } = {},
  ) {
    const change = method !== 'GET';
    return t.server.inject({
      method,
      url,
      headers: {
        cookie: s.cookie,
        ...(change ? { 'x-csrf-token': s.csrf, origin: ORIGIN, 'sec-fetch-site': 'same-origin' } : {}),
        ...options.headers,
      },
      ...(options.body === undefined ? {} : { payload: options.body as InjectOptions['payload'] }),
    });
  }

  describe('sign-in', () => {
    it('sets an HttpOnly, SameSite=Strict session cookie for the whole site and answers role, scopes and CSRF token', async () => {
      const res = await signIn(emails['fraud'] as string);
      expect(res.statusCode).toBe(201);
      const cookie = String(res.headers['set-cookie']);
      expect(cookie).toMatch(/^pg_session=pgs_[A-Za-z0-9_-]{43}; /);
      expect(cookie).toContain('; Path=/');
      expect(cookie).toContain('; HttpOnly');
      expect(cookie).toContain('; SameSite=Strict');
      expect(cookie).toContain(`; Max-Age=${8 * 3600}`);
      // Plain HTTP here: a Secure cookie would never come back.
      expect(cookie).not.toContain('Secure');
      expect(res.json()).toMatchObject({
        user: { email: emails['fraud'], role: 'fraud' },
        scopes: ['fraud'],
      });
      expect(res.json().csrf_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    });

    it('marks the cookie Secure and __Host- when the request came over TLS through a trusted proxy', async () => {
      const tls = await startTestApp(backend, {
        env: { TRUST_PROXY: '1', CONSOLE_PASSWORD_SCRYPT_LOG_N: '14' },
      });
      try {
        const email = `tls.${unique('u').toLowerCase()}@example.com`;
        await tls.call('POST', '/v1/console-users', { body: { email, role: 'finance', password: PASSWORD } });
        const res = await tls.server.inject({
          method: 'POST',
          url: '/v1/session',
          headers: {
            host: 'console.example',
            'x-forwarded-proto': 'https',
            origin: 'https://console.example',
          },
          payload: { email, password: PASSWORD },
        });
        expect(res.statusCode, res.body).toBe(201);
        const cookie = String(res.headers['set-cookie']);
        expect(cookie).toMatch(/^__Host-pg_session=pgs_/);
        expect(cookie).toContain('; Secure');
        const id = /^(__Host-pg_session=[^;]*)/.exec(cookie)?.[1] as string;
        const me = await tls.server.inject({
          method: 'GET',
          url: '/v1/session',
          headers: { host: 'console.example', cookie: id, 'x-forwarded-proto': 'https' },
        });
        expect(me.statusCode).toBe(200);
        // The same cookie sent over plain HTTP is not read.
        const plain = await tls.server.inject({
          method: 'GET',
          url: '/v1/session',
          headers: { host: 'console.example', cookie: id },
        });
        expect(plain.statusCode).toBe(401);
      } finally {
        await tls.close();
      }
    });

    it('answers an unknown email, a wrong password and a disabled user alike', async () => {
      const disabled = `off.${unique('u').toLowerCase()}@example.com`;
      const made = await t.call('POST', '/v1/console-users', {
        body: { email: disabled, role: 'fraud', password: PASSWORD },
      });
      await t.call('PATCH', `/v1/console-users/${made.json().id}`, { body: { disabled: true } });
      const answers = [
        await signIn('nobody@example.com'),
        await signIn(emails['finance'] as string, 'wrong password, quite long'),
        await signIn(disabled),
      ];
      for (const res of answers) {
        expect(res.statusCode).toBe(401);
        expect(res.headers['set-cookie']).toBeUndefined();
        const { request_id: _id, ...rest } = res.json();
        expect(rest).toEqual({
          type: 'urn:promoguard:problem:sign_in_failed',
          title: expect.any(String),
          status: 401,
          code: 'sign_in_failed',
        });
      }
    });

    it('matches the email case-insensitively and refuses a second user with the same address', async () => {
      expect((await signIn((emails['finance'] as string).toUpperCase())).statusCode).toBe(201);
      const again = await t.call('POST', '/v1/console-users', {
        body: { email: (emails['finance'] as string).toUpperCase(), role: 'admin', password: PASSWORD },
      });
      expect(again.statusCode).toBe(409);
      expect(again.json().code).toBe('console_user_exists');
    });

    it('is refused from another site (login CSRF)', async () => {
      for (const headers of [
        { origin: 'https://evil.example' },
        { 'sec-fetch-site': 'cross-site' },
      ] as Record<string, string>[]) {
        const res = await signIn(emails['fraud'] as string, PASSWORD, headers);
        expect(res.statusCode).toBe(403);
        expect(res.json().code).toBe('csrf_failed');
        expect(res.headers['set-cookie']).toBeUndefined();
      }
    });
  });

  describe('roles and scopes', () => {
    it('no API route answers without a session or key, nor to a made-up session id', async () => {
      const forged = `pg_session=pgs_${'A'.repeat(43)}`;
      for (const headers of [{}, { cookie: forged }, { cookie: 'pg_session=garbage' }]) {
        for (const url of ['/v1/session', '/v1/campaigns', '/v1/console-users', '/v1/reviews', '/v1/audit']) {
          const res = await t.server.inject({ method: 'GET', url, headers });
          expect(res.statusCode, `${url} ${JSON.stringify(headers)}`).toBe(401);
          expect(res.json().code).toBe('unauthorized');
        }
      }
    });

    it('a fraud analyst works fraud routes and gets 403 on finance, admin and marketing actions', async () => {
      const fraud = await session('fraud');
      expect((await as(fraud, 'GET', '/v1/rules')).statusCode).toBe(200);
      expect((await as(fraud, 'GET', '/v1/reviews')).statusCode).toBe(200);
      const refused = [
        await as(fraud, 'GET', '/v1/reconciliations'),
        await as(fraud, 'POST', '/v1/reconciliations'),
        await as(fraud, 'GET', '/v1/console-users'),
        await as(fraud, 'POST', '/v1/console-users', {
          body: { email: 'x.y@example.com', role: 'admin', password: PASSWORD },
        }),
        await as(fraud, 'GET', '/v1/api-keys'),
        await as(fraud, 'POST', '/v1/api-keys', { body: { name: 'mine', scopes: ['admin'] } }),
        await as(fraud, 'POST', '/v1/campaigns', { body: campaignBody() }),
        await as(fraud, 'POST', '/v1/redemptions', { body: {} }),
      ];
      for (const res of refused) {
        expect(res.statusCode, res.body).toBe(403);
        expect(res.json().code).toBe('forbidden');
      }
    });

    it('each role holds its scopes: finance reconciles, marketing makes campaigns, on-call pauses them, admin manages people', async () => {
      const finance = await session('finance');
      expect((await as(finance, 'GET', '/v1/reconciliations')).statusCode).toBe(200);
      expect((await as(finance, 'GET', '/v1/rules')).statusCode).toBe(403);

      const marketing = await session('marketing');
      const made = await as(marketing, 'POST', '/v1/campaigns', { body: campaignBody() });
      expect(made.statusCode, made.body).toBe(201);
      expect((await as(marketing, 'GET', '/v1/reviews')).statusCode).toBe(403);

      const onCall = await session('on_call');
      const paused = await as(onCall, 'POST', `/v1/campaigns/${made.json().id}/pause`, {
        body: { reason: 'spike' },
      });
      expect(paused.statusCode, paused.body).toBe(200);
      expect((await as(onCall, 'GET', '/v1/reconciliations')).statusCode).toBe(403);

      const admin = await session('admin');
      expect((await as(admin, 'GET', '/v1/console-users')).statusCode).toBe(200);
      expect((await as(admin, 'GET', '/v1/reconciliations')).statusCode).toBe(200);
    });

    it('audits a change made in the console as the person who made it', async () => {
      const marketing = await session('marketing');
      const made = await as(marketing, 'POST', '/v1/campaigns', { body: campaignBody({ name: 'Audited' }) });
      const audit = await t.call('GET', `/v1/audit?actor=${marketing.userId}&action=campaign.`);
      expect(audit.json().data).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            actor: marketing.userId,
            action: 'campaign.created',
            resource: made.json().id,
          }),
        ]),
      );
      const signIns = await t.call(
        'GET',
        `/v1/audit?actor=${marketing.userId}&action=console_user.signed_in`,
      );
      expect(signIns.json().data.length).toBeGreaterThan(0);
    });

    it('an API key sent with a session cookie is judged as the key, and needs no CSRF token', async () => {
      const fraud = await session('fraud');
      const res = await t.server.inject({
        method: 'POST',
        url: '/v1/campaigns',
        headers: { cookie: fraud.cookie, authorization: `Bearer ${t.keys.marketing}` },
        payload: campaignBody(),
      });
      expect(res.statusCode, res.body).toBe(201);
    });

    it('session routes are for people: an API key gets 401 on them', async () => {
      const res = await t.call('GET', '/v1/session');
      expect(res.statusCode).toBe(401);
    });
  });

  describe('CSRF', () => {
    it('refuses a change without the token, with a wrong one, with another session’s, or from another origin', async () => {
      const fraud = await session('fraud');
      const other = await session('fraud');
      const body = { list: 'block', type: 'email', value: 'x@example.com', reason: 'csrf test' };
      const attempts: Record<string, string>[] = [
        { 'x-csrf-token': '' },
        { 'x-csrf-token': 'A'.repeat(43) },
        { 'x-csrf-token': other.csrf },
        { origin: 'https://evil.example' },
        { origin: 'null' },
        { 'sec-fetch-site': 'cross-site' },
        { 'sec-fetch-site': 'same-site' },
      ];
      for (const headers of attempts) {
        const res = await as(fraud, 'POST', '/v1/lists', { body, headers });
        expect(res.statusCode, JSON.stringify(headers)).toBe(403);
        expect(res.json().code).toBe('csrf_failed');
      }
      const bare = await t.server.inject({
        method: 'POST',
        url: '/v1/lists',
        headers: { cookie: fraud.cookie, origin: ORIGIN },
        payload: body,
      });
      expect(bare.statusCode).toBe(403);
      expect((await t.call('GET', '/v1/lists')).json().data).toEqual([]);
      const ok = await as(fraud, 'POST', '/v1/lists', { body });
      expect(ok.statusCode, ok.body).toBe(201);
    });

    it('refuses a forged sign-out, and the session lives on', async () => {
      const fraud = await session('fraud');
      const forged = await t.server.inject({
        method: 'DELETE',
        url: '/v1/session',
        headers: { cookie: fraud.cookie, origin: 'https://evil.example' },
      });
      expect(forged.statusCode).toBe(403);
      expect((await as(fraud, 'GET', '/v1/session')).statusCode).toBe(200);
    });

    it('GET /v1/session repeats the token, bound to the signed-in session, and is never cached', async () => {
      const fraud = await session('fraud');
      const me = await as(fraud, 'GET', '/v1/session');
      expect(me.json().csrf_token).toBe(fraud.csrf);
      expect(me.headers['cache-control']).toBe('no-store');
    });
  });

  describe('session fixation', () => {
    it('never adopts a session id planted before sign-in, and revokes it', async () => {
      const planted = `pg_session=pgs_${'Z'.repeat(43)}`;
      const res = await signIn(emails['fraud'] as string, PASSWORD, { cookie: planted });
      expect(cookieOf(res)).not.toBe(planted);
      const withPlanted = await t.server.inject({
        method: 'GET',
        url: '/v1/session',
        headers: { cookie: planted },
      });
      expect(withPlanted.statusCode).toBe(401);

      // The attacker's own live session, planted in the victim's browser, ends when the victim signs in.
      const attacker = await session('marketing');
      const victim = await signIn(emails['admin'] as string, PASSWORD, { cookie: attacker.cookie });
      expect(cookieOf(victim)).not.toBe(attacker.cookie);
      expect((await as(attacker, 'GET', '/v1/session')).statusCode).toBe(401);
    });

    it('signing in twice gives two different sessions', async () => {
      const a = await session('finance');
      const b = await session('finance');
      expect(a.cookie).not.toBe(b.cookie);
      expect(a.csrf).not.toBe(b.csrf);
    });
  });

  describe('session end', () => {
    it('sign-out revokes the session on the server and clears the cookie', async () => {
      const fraud = await session('fraud');
      const out = await as(fraud, 'DELETE', '/v1/session');
      expect(out.statusCode).toBe(204);
      expect(String(out.headers['set-cookie'])).toMatch(/^pg_session=; .*Max-Age=0/);
      expect((await as(fraud, 'GET', '/v1/rules')).statusCode).toBe(401);
    });

    it('ends after the idle timeout, and each use restarts it', async () => {
      const fraud = await session('fraud');
      clock.advance(29 * 60_000);
      expect((await as(fraud, 'GET', '/v1/rules')).statusCode).toBe(200);
      clock.advance(29 * 60_000);
      const me = await as(fraud, 'GET', '/v1/session');
      expect(me.statusCode).toBe(200);
      expect(me.json().expires_at).toBe(new Date(clock.now().getTime() + 30 * 60_000).toISOString());
      clock.advance(31 * 60_000);
      const late = await as(fraud, 'GET', '/v1/rules');
      expect(late.statusCode).toBe(401);
      expect(late.json().detail).toMatch(/sign in again/);
    });

    it('ends at the absolute timeout however busy', async () => {
      const fraud = await session('fraud');
      for (let minutes = 0; minutes < 8 * 60 - 20; minutes += 20) {
        clock.advance(20 * 60_000);
        expect((await as(fraud, 'GET', '/v1/session')).statusCode, `after ${minutes + 20} minutes`).toBe(200);
      }
      clock.advance(21 * 60_000);
      expect((await as(fraud, 'GET', '/v1/session')).statusCode).toBe(401);
    });
  });

  describe('lockout', () => {
    it('locks a user after 3 wrong passwords, refuses even the right one alike, and lets them in after 15 minutes', async () => {
      const email = `lock.${unique('u').toLowerCase()}@example.com`;
      const made = await t.call('POST', '/v1/console-users', {
        body: { email, role: 'fraud', password: PASSWORD },
      });
      for (let i = 0; i < 3; i++)
        expect((await signIn(email, 'not the password at all')).statusCode).toBe(401);
      const locked = await signIn(email);
      expect(locked.statusCode).toBe(401);
      expect(locked.json().code).toBe('sign_in_failed');
      const user = await t.call('GET', `/v1/console-users/${made.json().id}`);
      expect(user.json().locked_until).toBe(new Date(clock.now().getTime() + 15 * 60_000).toISOString());
      const audit = await t.call('GET', `/v1/audit?resource=${made.json().id}&action=console_user.`);
      expect(audit.json().data.map((e: { action: string }) => e.action)).toEqual([
        'console_user.locked',
        'console_user.sign_in_failed',
        'console_user.sign_in_failed',
        'console_user.created',
      ]);
      clock.advance(14 * 60_000);
      expect((await signIn(email)).statusCode).toBe(401);
      clock.advance(2 * 60_000);
      expect((await signIn(email)).statusCode).toBe(201);
    });

    it('counts concurrent wrong guesses exactly: one lock, never more failures than the limit', async () => {
      const email = `race.${unique('u').toLowerCase()}@example.com`;
      const made = await t.call('POST', '/v1/console-users', {
        body: { email, role: 'fraud', password: PASSWORD },
      });
      await Promise.all(Array.from({ length: 6 }, () => signIn(email, 'a wrong guess, repeated')));
      const audit = await t.call('GET', `/v1/audit?resource=${made.json().id}&action=console_user.locked`);
      expect(audit.json().data).toHaveLength(1);
    });
  });

  describe('people', () => {
    it('refuses a weak password with 422 and says why', async () => {
      const cases: [string, RegExp][] = [
        ['short', /at least 12 characters/],
        ['aaaaaaaaaaaaaaaa', /repeated/],
        ['weakling.person-2026', /email/],
      ];
      for (const [password, why] of cases) {
        const res = await t.call('POST', '/v1/console-users', {
          body: { email: 'weakling.person@example.com', role: 'fraud', password },
        });
        expect(res.statusCode, password).toBe(422);
        expect(res.json().code).toBe('password_too_weak');
        expect(res.json().detail).toMatch(why);
      }
    });

    it('an admin changes a role, which applies to the live session at its next request', async () => {
      const email = `role.${unique('u').toLowerCase()}@example.com`;
      const made = await t.call('POST', '/v1/console-users', {
        body: { email, role: 'fraud', password: PASSWORD },
      });
      const res = await signIn(email);
      const s = { cookie: cookieOf(res), csrf: res.json().csrf_token, userId: made.json().id };
      expect((await as(s, 'GET', '/v1/reconciliations')).statusCode).toBe(403);
      const admin = await session('admin');
      const changed = await as(admin, 'PATCH', `/v1/console-users/${s.userId}`, {
        body: { role: 'finance' },
      });
      expect(changed.json()).toMatchObject({ role: 'finance', scopes: ['finance'] });
      expect((await as(s, 'GET', '/v1/reconciliations')).statusCode).toBe(200);
      const audit = await t.call('GET', `/v1/audit?resource=${s.userId}&action=console_user.updated`);
      expect(audit.json().data[0]).toMatchObject({
        actor: admin.userId,
        details: { changes: { role: { from: 'fraud', to: 'finance' } } },
      });
    });

    it('disabling a user or resetting their password ends their sessions; the new password works', async () => {
      const email = `reset.${unique('u').toLowerCase()}@example.com`;
      const made = await t.call('POST', '/v1/console-users', {
        body: { email, role: 'fraud', password: PASSWORD },
      });
      const id = made.json().id;
      let res = await signIn(email);
      let s = { cookie: cookieOf(res), csrf: res.json().csrf_token, userId: id };
      await t.call('PATCH', `/v1/console-users/${id}`, { body: { password: 'a brand new passphrase' } });
      expect((await as(s, 'GET', '/v1/session')).statusCode).toBe(401);
      expect((await signIn(email)).statusCode).toBe(401);
      res = await signIn(email, 'a brand new passphrase');
      expect(res.statusCode).toBe(201);
      s = { cookie: cookieOf(res), csrf: res.json().csrf_token, userId: id };
      const disabled = await t.call('PATCH', `/v1/console-users/${id}`, { body: { disabled: true } });
      expect(disabled.json().disabled).toBe(true);
      expect((await as(s, 'GET', '/v1/session')).statusCode).toBe(401);
      await t.call('PATCH', `/v1/console-users/${id}`, { body: { disabled: false } });
      expect((await signIn(email, 'a brand new passphrase')).statusCode).toBe(201);
    });

    it('a person changes their own password with the current one; their other sessions end', async () => {
      const email = `self.${unique('u').toLowerCase()}@example.com`;
      const made = await t.call('POST', '/v1/console-users', {
        body: { email, role: 'finance', password: PASSWORD },
      });
      const first = await signIn(email);
      const here = { cookie: cookieOf(first), csrf: first.json().csrf_token, userId: made.json().id };
      const second = await signIn(email);
      const elsewhere = { cookie: cookieOf(second), csrf: second.json().csrf_token, userId: made.json().id };
      const wrong = await as(here, 'POST', '/v1/console-users/me/password', {
        body: { current_password: 'not my password at all', new_password: 'my next long passphrase' },
      });
      expect(wrong.statusCode).toBe(422);
      expect(wrong.json().code).toBe('current_password_incorrect');
      const weak = await as(here, 'POST', '/v1/console-users/me/password', {
        body: { current_password: PASSWORD, new_password: 'short' },
      });
      expect(weak.json().code).toBe('password_too_weak');
      const ok = await as(here, 'POST', '/v1/console-users/me/password', {
        body: { current_password: PASSWORD, new_password: 'my next long passphrase' },
      });
      expect(ok.statusCode, ok.body).toBe(204);
      expect((await as(here, 'GET', '/v1/session')).statusCode).toBe(200);
      expect((await as(elsewhere, 'GET', '/v1/session')).statusCode).toBe(401);
      expect((await signIn(email, 'my next long passphrase')).statusCode).toBe(201);
    });

    it('lists people without any password hash', async () => {
      const res = await t.call('GET', '/v1/console-users?limit=200');
      expect(res.statusCode).toBe(200);
      expect(res.json().data.length).toBeGreaterThanOrEqual(5);
      expect(res.body).not.toContain('scrypt');
      expect(Object.keys(res.json().data[0]).sort()).toEqual(
        ['created_at', 'disabled', 'email', 'id', 'locked_until', 'role', 'scopes', 'updated_at'].sort(),
      );
    });
  });
});
