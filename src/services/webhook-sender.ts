/**
 * Sends stored webhook deliveries: claims the due ones under a lease, signs each per Standard
 * Webhooks, posts it to the address the SSRF guard approved, records the attempt and schedules the
 * next one. Any node may send any delivery; the lease keeps two from sending the same one at once.
 */
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { Webhook } from 'standardwebhooks';
import type { RelayLogger } from '../events/outbox-relay.js';
import { newId } from '../lib/ids.js';
import { type AllowList, checkTarget, type ResolvedAddress, type Resolver } from '../security/ssrf-guard.js';
import type { WebhookSecretBox } from '../security/webhook-secrets.js';
import { insertAudit } from '../store/audit.js';
import { appendEvents } from '../store/outbox.js';
import { bumpStamp } from '../store/stamps.js';
import {
  type AttemptOutcome,
  type ClaimedDelivery,
  claimDueDeliveries,
  disableEndpoint,
  recordAttempt,
} from '../store/webhooks.js';
import type { ServiceContext } from './context.js';

/** The Standard Webhooks retry schedule: the delay before each attempt, the first at once. */
export const STANDARD_SCHEDULE_MS: readonly number[] = [
  0,
  5_000,
  5 * 60_000,
  30 * 60_000,
  2 * 3_600_000,
  5 * 3_600_000,
  10 * 3_600_000,
  10 * 3_600_000,
];

/** A receiver's Retry-After may push an attempt later, never past this. */
const MAX_RETRY_AFTER_MS = 24 * 3_600_000;

export interface WebhookSenderOptions {
  allow: AllowList;
  resolve?: Resolver;
  timeoutMs: number;
  maxResponseBytes: number;
  pollMs: number;
  /** How long a claimed delivery stays with this node; longer than an attempt can take. */
  leaseMs?: number;
  batchSize?: number;
  schedule?: readonly number[];
  /** A number in [0, 1) for the jitter (Math.random by default). */
  random?: () => number;
  logger: RelayLogger;
  /** The endpoint was disabled (410): the node's endpoint copy is out of date. */
  onEndpointsChanged(): void;
}

export interface PostResult {
  statusCode: number | null;
  error: string | null;
  retryAfterMs: number | null;
}

/** Retry-After as delay seconds or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: Date): number | null {
  if (!value) return null;
  const text = value.trim();
  if (/^\d{1,10}$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - now.getTime());
}

/**
 * POST `body` to `url`, connected to `address` whatever the name resolves to now: the address was
 * judged by the guard, and a second lookup could answer another (DNS rebinding). Redirects are not
 * followed (a 3xx is a failed attempt: following one would reach a target nobody checked), the whole
 * exchange is bounded by `timeoutMs`, and at most `maxBytes` of the answer are read.
 */
export function postWebhook(
  url: URL,
  address: ResolvedAddress,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
  maxBytes: number,
  now: () => Date,
): Promise<PostResult> {
  const pinned: LookupFunction = (_host, options, callback) => {
    if ((options as { all?: boolean }).all) {
      (callback as unknown as (err: null, addresses: { address: string; family: number }[]) => void)(null, [
        { address: address.address, family: address.family },
      ]);
    } else callback(null, address.address, address.family);
  };
  const client = url.protocol === 'https:' ? https : http;
  const payload = Buffer.from(body, 'utf8');
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: PostResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.destroy();
      resolve(result);
    };
    const request = client.request({
      method: 'POST',
      hostname: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port || undefined,
      path: `${url.pathname}${url.search}`,
      headers: {
        ...headers,
        host: url.host,
        'content-type': 'application/json',
        'content-length': String(payload.length),
        'user-agent': 'Promoguard-Webhooks/1',
      },
      lookup: pinned,
      agent: false,
    });
    const timer = setTimeout(
      () => finish({ statusCode: null, error: `timed out after ${timeoutMs} ms`, retryAfterMs: null }),
      timeoutMs,
    );
    request.on('error', (err: NodeJS.ErrnoException) =>
      finish({ statusCode: null, error: `connection failed (${err.code ?? 'error'})`, retryAfterMs: null }),
    );
    request.on('response', (response) => {
      const statusCode = response.statusCode ?? 0;
      const retryAfterMs = parseRetryAfter(response.headers['retry-after'], now());
      const error =
        statusCode >= 300 && statusCode < 400
          ? 'redirect not followed'
          : statusCode >= 200 && statusCode < 300
            ? null
            : `answered ${statusCode}`;
      let read = 0;
      response.on('data', (chunk: Buffer) => {
        read += chunk.length;
        // The answer is not needed beyond its status; reading all of a huge one would cost memory.
        if (read > maxBytes) finish({ statusCode, error, retryAfterMs });
      });
      response.on('end', () => finish({ statusCode, error, retryAfterMs }));
      response.on('error', () => finish({ statusCode, error, retryAfterMs }));
    });
    request.end(payload);
  });
}

export class WebhookSender {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = true;
  private readonly schedule: readonly number[];
  private readonly random: () => number;

  constructor(
    private readonly ctx: ServiceContext,
    private readonly box: WebhookSecretBox,
    private readonly options: WebhookSenderOptions,
  ) {
    this.schedule = options.schedule ?? STANDARD_SCHEDULE_MS;
    this.random = options.random ?? Math.random;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.timer = setInterval(() => this.notify(), this.options.pollMs);
    this.timer.unref();
    this.notify();
  }

  /** Look for due deliveries now; calls during a pass coalesce into one more pass. */
  notify(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => {
      this.running = undefined;
    });
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        while (!this.stopped && (await this.pass()) === this.batchSize) {}
      } catch (err) {
        if (!this.stopped) this.options.logger.error({ err }, 'webhook sender pass failed');
      }
    } while (this.again && !this.stopped);
  }

  private get batchSize(): number {
    return this.options.batchSize ?? 16;
  }

  /** Claim one batch of due deliveries and send them; the number claimed. */
  async pass(): Promise<number> {
    const token = newId('webhookDelivery');
    const leaseMs = this.options.leaseMs ?? this.options.timeoutMs * 2 + 30_000;
    const claimed = await claimDueDeliveries(
      this.ctx.db,
      this.ctx.clock.now(),
      this.batchSize,
      leaseMs,
      token,
    );
    await Promise.all(claimed.map((d) => this.send(d, token)));
    return claimed.length;
  }

  private signatures(d: ClaimedDelivery, at: Date): string {
    const secrets = [this.box.open(d.secretEncrypted)];
    // After a rotation both secrets sign, so a receiver that still holds the old one keeps verifying.
    if (d.previousSecretEncrypted && d.previousSecretExpiresAt && d.previousSecretExpiresAt > at) {
      secrets.push(this.box.open(d.previousSecretEncrypted));
    }
    return secrets.map((s) => new Webhook(s).sign(d.eventId, at, d.body)).join(' ');
  }

  private async send(d: ClaimedDelivery, token: string): Promise<void> {
    const started = this.ctx.clock.now();
    const startedMs = performance.now();
    let result: PostResult;
    const target = await checkTarget(d.url, this.options.allow, this.options.resolve);
    if (!target.ok) result = { statusCode: null, error: `refused: ${target.reason}`, retryAfterMs: null };
    else {
      const headers = {
        'webhook-id': d.eventId,
        'webhook-timestamp': String(Math.floor(started.getTime() / 1000)),
        'webhook-signature': this.signatures(d, started),
      };
      result = await postWebhook(
        target.url,
        target.address,
        headers,
        d.body,
        this.options.timeoutMs,
        this.options.maxResponseBytes,
        () => this.ctx.clock.now(),
      );
    }
    const durationMs = performance.now() - startedMs;
    const outcome = this.outcome(d, result, started, durationMs);
    const label = { outcome: outcome.status === 'pending' ? 'retrying' : outcome.status };
    this.ctx.metrics?.inc('promoguard_webhook_deliveries_total', label);
    this.ctx.metrics?.observe('promoguard_webhook_delivery_duration_seconds', label, durationMs / 1000);
    try {
      if (result.statusCode === 410) await this.gone(d, token, outcome);
      else await this.ctx.db.transaction().execute((trx) => recordAttempt(trx, d.id, token, outcome));
    } catch (err) {
      // Unrecorded: the lease runs out and the delivery is sent again (receivers dedupe by webhook-id).
      this.options.logger.error({ err, deliveryId: d.id }, 'webhook attempt could not be recorded');
    }
  }

  private outcome(d: ClaimedDelivery, result: PostResult, at: Date, durationMs: number): AttemptOutcome {
    const base = { attemptedAt: at, statusCode: result.statusCode, error: result.error, durationMs };
    if (result.statusCode !== null && result.statusCode >= 200 && result.statusCode < 300) {
      return { ...base, status: 'succeeded', scheduleStep: d.scheduleStep, nextAttemptAt: null };
    }
    const step = d.scheduleStep + 1;
    const delay = this.schedule[step];
    if (result.statusCode === 410 || delay === undefined) {
      return { ...base, status: 'failed', scheduleStep: d.scheduleStep, nextAttemptAt: null };
    }
    // Jitter of ±10 % spreads the retries of many deliveries that failed together (a receiver's outage).
    let wait = delay * (0.9 + 0.2 * this.random());
    if (result.retryAfterMs !== null)
      wait = Math.max(wait, Math.min(result.retryAfterMs, MAX_RETRY_AFTER_MS));
    return {
      ...base,
      status: 'pending',
      scheduleStep: step,
      nextAttemptAt: new Date(this.ctx.clock.now().getTime() + Math.round(wait)),
    };
  }

  /** 410 Gone: the receiver says the endpoint is no more; it is disabled, audited and evented. */
  private async gone(d: ClaimedDelivery, token: string, outcome: AttemptOutcome): Promise<void> {
    const now = this.ctx.clock.now();
    const disabled = await this.ctx.db.transaction().execute(async (trx) => {
      await recordAttempt(trx, d.id, token, outcome);
      if (!(await disableEndpoint(trx, d.endpointId, 'gone', now))) return false;
      await insertAudit(
        trx,
        {
          actor: 'promoguard',
          action: 'webhook.disabled',
          targetId: d.endpointId,
          reason: 'the endpoint answered 410 Gone',
          details: { delivery_id: d.id },
        },
        now,
      );
      await appendEvents(
        trx,
        [
          {
            type: 'webhook.disabled',
            aggregateId: d.endpointId,
            payload: { webhook_id: d.endpointId, reason: 'gone', actor: 'promoguard' },
          },
        ],
        now,
      );
      await bumpStamp(trx, 'webhooks');
      return true;
    });
    if (disabled) {
      this.ctx.afterCommit();
      this.options.onEndpointsChanged();
    }
  }

  /** Stop claiming and wait for the attempts under way to be recorded. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}
