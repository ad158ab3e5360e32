/**
 * What a scenario works with: its seeded streams, the run's clock (the server's, since the simulator
 * cannot move time), the admin calls that set up campaigns, and the attempts — each one HTTP request
 * (two with a step-up) classified and recorded with its label and the money at stake.
 */
import { codeTag, Faker, type Shopper } from './fakes.js';
import type { SimHttpClient } from './http-client.js';
import type { ActorRecord, AttemptLabel, AttemptRecord, Label, ScenarioInfo } from './model.js';
import { type AttemptKind, asRecord, type Classified, classify } from './outcomes.js';
import { Rng } from './prng.js';

export interface RunSettings {
  seed: number;
  /** Multiplies the number of actors of every scenario. */
  scale: number;
  /** The span over which each scenario spreads its traffic (ms). */
  durationMs: number;
  /** Keeps runs against one long-lived server apart: part of every id, code and identifier. */
  tag: string;
}

/** State shared by every scenario of one run. */
export class Simulation {
  readonly attempts: AttemptRecord[] = [];
  readonly actors: ActorRecord[] = [];
  /** The scenario that created each campaign (id → name): what an alert or remediation was about. */
  readonly campaignScenario = new Map<string, string>();
  /** performance.now() when the traffic started. */
  t0 = performance.now();
  /** Server clock minus local clock (ms). */
  serverOffsetMs = 0;
  /** The server's clock when the traffic started (epoch ms): account ages count back from it. */
  t0ServerMs = Date.now();
  /** Attempts stop being started this long after t0 (ms). */
  deadlineMs: number;
  onAttempt: ((attempt: AttemptRecord) => void) | undefined;

  constructor(
    readonly http: SimHttpClient,
    readonly settings: RunSettings,
  ) {
    this.deadlineMs = settings.durationMs + graceMs(settings.durationMs);
  }

  record(attempt: Omit<AttemptRecord, 'seq'>): AttemptRecord {
    const full = { seq: this.attempts.length + 1, ...attempt };
    this.attempts.push(full);
    this.onAttempt?.(full);
    return full;
  }
}

/** Time after the nominal span for retries, races and stragglers to finish. */
export function graceMs(durationMs: number): number {
  return Math.max(5_000, Math.round(durationMs / 4));
}

export interface Cart {
  subtotal: number;
  shipping?: number;
}

export interface AttemptOptions {
  /** Whom the attempt is counted for (default: the customer in the request; attackers pass their own id). */
  actor?: string;
  /** Default: the scenario's label. */
  label?: AttemptLabel;
  /** What the attempt would hand out if it went through (default 0: a probe). */
  valueMinor?: number;
  /**
   * Override of the value at stake when the attempt is allowed. Lets a two-step attack count its money
   * once: an account takeover's conversion stakes the coupon only if it is stopped (no redemption follows);
   * if it goes through, the redemption that cashes the coupon carries it.
   */
  valueMinorIfAllowed?: number;
  /** The actor passes a step-up challenge (honest customers do; most attackers cannot). */
  passesStepUp?: boolean;
  burst?: string;
}

export interface AttemptResult {
  record: AttemptRecord;
  /** The last answer's body. */
  body: Record<string, unknown>;
  classified: Classified;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

export class ScenarioContext {
  /** Structure: counts, who shares what, timing. Seeded by the seed and the scenario alone. */
  readonly rng: Rng;
  /**
   * Waits that depend on the server's answers (after a 429). Drawn in whatever order answers arrive, so
   * they are the one thing two runs of one seed may not share.
   */
  readonly timing: Rng;
  /** Identifier values, seeded by the seed, the tag and the scenario. */
  readonly fake: Faker;
  readonly codeTag: string;
  readonly label: Label;
  readonly name: string;

  constructor(
    readonly sim: Simulation,
    info: ScenarioInfo,
    short: string,
  ) {
    const { seed, tag } = sim.settings;
    this.name = info.name;
    this.label = info.label;
    this.rng = new Rng(`promoguard-sim|${seed}|${info.name}`);
    this.timing = this.rng.fork('timing');
    this.fake = new Faker(new Rng(`promoguard-sim|${seed}|${tag}|${info.name}`), tag, short);
    this.codeTag = codeTag(tag);
  }

  // ---- size and time -------------------------------------------------------------------------------

  /** `n` actors at scale 1, scaled (at least `min`). */
  scaled(n: number, min = 1): number {
    return Math.max(min, Math.round(n * this.sim.settings.scale));
  }

  get durationMs(): number {
    return this.sim.settings.durationMs;
  }

  /** Think times are given for the default 60 s span and shrink or grow with it. */
  pace(ms: number): number {
    return (ms * this.durationMs) / 60_000;
  }

  /** Milliseconds since the traffic started. */
  elapsed(): number {
    return performance.now() - this.sim.t0;
  }

  timeLeft(): number {
    return this.sim.deadlineMs - this.elapsed();
  }

  sleep(ms: number): Promise<void> {
    return sleep(Math.min(ms, Math.max(0, this.timeLeft())));
  }

  /** Wait until `ms` after the traffic started. */
  at(ms: number): Promise<void> {
    return this.sleep(ms - this.elapsed());
  }

  serverNow(): Date {
    return new Date(Date.now() + this.sim.serverOffsetMs);
  }

  /** The server time `ms` from now, as RFC 3339. */
  serverIso(ms: number): string {
    return new Date(Date.now() + this.sim.serverOffsetMs + ms).toISOString();
  }

  /** The local performance.now()-based elapsed time at which the server's clock reads `iso`. */
  elapsedAtServer(iso: string): number {
    return new Date(iso).getTime() - this.sim.serverOffsetMs - Date.now() + this.elapsed();
  }

  // ---- actors ---------------------------------------------------------------------------------------

  actor(id: string, label: Label = this.label, entitledDiscounts = 1): string {
    this.sim.actors.push({ scenario: this.name, id, label, entitledDiscounts });
    return id;
  }

  // ---- setup (admin API) -----------------------------------------------------------------------------

  async campaign(body: Record<string, unknown>): Promise<string> {
    const created = await this.sim.http.expect(201, 'POST', '/v1/campaigns', {
      bucket: 'setup',
      body: { currency: 'USD', status: 'active', starts_at: '2020-01-01T00:00:00Z', ...body },
    });
    this.sim.campaignScenario.set(String(created['id']), this.name);
    return String(created['id']);
  }

  async addCode(campaignId: string, spec: Record<string, unknown>): Promise<void> {
    await this.sim.http.expect(201, 'POST', `/v1/campaigns/${campaignId}/codes`, {
      bucket: 'setup',
      body: spec,
    });
  }

  async importCodes(campaignId: string, codes: Record<string, unknown>[]): Promise<void> {
    for (let i = 0; i < codes.length; i += 5_000) {
      await this.addCode(campaignId, { codes: codes.slice(i, i + 5_000) });
    }
  }

  /** Generate a batch with the server's CSPRNG and read the codes back (export). */
  async generate(campaignId: string, generate: Record<string, unknown>): Promise<string[]> {
    await this.addCode(campaignId, { generate });
    const answer = await this.sim.http.request('GET', `/v1/campaigns/${campaignId}/codes?format=csv`, {
      bucket: 'setup',
    });
    if (answer.status !== 200 || typeof answer.body !== 'string')
      throw new Error(`exporting the codes of ${campaignId} answered ${answer.status}`);
    return answer.body
      .split(/\r?\n/)
      .slice(1)
      .filter((line) => line.length > 0)
      .map((line) => line.split(',')[0] as string);
  }

  async capPartner(campaignId: string, partner: string, cap: number): Promise<void> {
    await this.sim.http.expect(200, 'PUT', `/v1/campaigns/${campaignId}/partners/${partner}`, {
      bucket: 'setup',
      body: { cap, reason: 'partner contract (simulation)' },
    });
  }

  async program(body: Record<string, unknown>): Promise<{ id: string; campaignId: string }> {
    const created = await this.sim.http.expect(201, 'POST', '/v1/points-programs', {
      bucket: 'setup',
      body: { currency: 'USD', ...body },
    });
    return { id: String(created['id']), campaignId: String(created['campaign_id']) };
  }

  /** A credit made during setup (history, not an attempt). */
  async setupCredit(customerId: string, points: number, key: string): Promise<void> {
    await this.sim.http.expect(201, 'POST', `/v1/customers/${encodeURIComponent(customerId)}/points`, {
      bucket: 'setup',
      headers: { 'idempotency-key': `${this.sim.settings.tag}-${key}` },
      body: { type: 'credit', points, reason: 'simulated purchases' },
    });
  }

  // ---- attempts --------------------------------------------------------------------------------------

  checkoutBody(s: Shopper, code: string, cart: Cart, orderId?: string): Record<string, unknown> {
    const created = new Date(this.sim.t0ServerMs - s.accountAgeSeconds * 1000).toISOString();
    return {
      code,
      customer: {
        id: s.customerId,
        ...(s.firstOrder === undefined ? {} : { first_order: s.firstOrder }),
        ...(s.segment === undefined ? {} : { segment: s.segment }),
      },
      cart: {
        currency: 'USD',
        subtotal_minor: cart.subtotal,
        ...(cart.shipping === undefined ? {} : { shipping_minor: cart.shipping }),
      },
      ...(orderId === undefined ? {} : { order_id: orderId }),
      context: {
        ip: s.ip,
        ...(s.deviceId === undefined ? {} : { device_id: s.deviceId }),
        user_agent: s.userAgent,
        email: s.email,
        ...(s.phone === undefined ? {} : { phone: s.phone }),
        shipping_address: s.address,
        payment_fingerprint: s.card,
        account_created_at: created,
      },
    };
  }

  /** One attempt: the request, a step-up retry if challenged and able, classification, the record. */
  async attempt(
    kind: AttemptKind,
    customerId: string,
    request: {
      method: string;
      path: string;
      body: Record<string, unknown>;
      headers?: Record<string, string>;
    },
    options: AttemptOptions = {},
  ): Promise<AttemptResult> {
    const atMs = this.elapsed();
    const send = (body: Record<string, unknown>) =>
      this.sim.http.request(request.method, request.path, {
        bucket: this.name,
        body,
        ...(request.headers ? { headers: request.headers } : {}),
      });
    let answer = await send(request.body);
    const latencies = [answer.latencyMs];
    let classified = classify(kind, answer);
    let challenged = false;
    if (classified.outcome === 'challenged') {
      challenged = true;
      if (options.passesStepUp && classified.challengeToken) {
        answer = await send({
          ...request.body,
          step_up: { challenge: classified.challengeToken, method: 'otp' },
        });
        latencies.push(answer.latencyMs);
        classified = classify(kind, answer);
      }
    }
    const granted = classified.outcome === 'allowed' || classified.outcome === 'held';
    const expected = options.valueMinor ?? 0;
    let value = expected;
    if (granted) {
      value =
        classified.outcome === 'allowed' && options.valueMinorIfAllowed !== undefined
          ? options.valueMinorIfAllowed
          : kind === 'validate'
            ? 0
            : classified.grantedMinor;
    }
    const body = asRecord(answer.body);
    const record = this.sim.record({
      scenario: this.name,
      label: options.label ?? this.label,
      actor: options.actor ?? customerId,
      kind,
      outcome: classified.outcome,
      reason: classified.reason,
      status: answer.status,
      challenged,
      valueAtStakeMinor: value,
      grantedMinor: granted ? classified.grantedMinor : 0,
      decision: classified.decision,
      httpCalls: latencies.length,
      latenciesMs: latencies.map((x) => Math.round(x * 100) / 100),
      atMs: Math.round(atMs),
      burst: options.burst ?? null,
      redemptionId: kind === 'redeem' && granted && typeof body['id'] === 'string' ? body['id'] : null,
      heldAfterwards: false,
    });
    return { record, body, classified };
  }

  validate(s: Shopper, code: string, cart: Cart, options: AttemptOptions = {}): Promise<AttemptResult> {
    return this.attempt(
      'validate',
      s.customerId,
      { method: 'POST', path: '/v1/validations', body: this.checkoutBody(s, code, cart) },
      { passesStepUp: this.label === 'honest', ...options },
    );
  }

  redeem(
    s: Shopper,
    code: string,
    cart: Cart,
    orderId: string,
    options: AttemptOptions = {},
  ): Promise<AttemptResult> {
    return this.attempt(
      'redeem',
      s.customerId,
      {
        method: 'POST',
        path: '/v1/redemptions',
        body: this.checkoutBody(s, code, cart, orderId),
        headers: { 'idempotency-key': `${this.sim.settings.tag}-${orderId}` },
      },
      { passesStepUp: this.label === 'honest', ...options },
    );
  }

  convert(
    customerId: string,
    programId: string,
    points: number,
    key: string,
    options: AttemptOptions = {},
  ): Promise<AttemptResult> {
    return this.attempt(
      'convert',
      customerId,
      {
        method: 'POST',
        path: `/v1/customers/${encodeURIComponent(customerId)}/conversions`,
        body: { program_id: programId, points },
        headers: { 'idempotency-key': `${this.sim.settings.tag}-${key}` },
      },
      { passesStepUp: this.label === 'honest', ...options },
    );
  }

  credit(
    customerId: string,
    points: number,
    key: string,
    options: AttemptOptions = {},
  ): Promise<AttemptResult> {
    return this.attempt(
      'credit',
      customerId,
      {
        method: 'POST',
        path: `/v1/customers/${encodeURIComponent(customerId)}/points`,
        body: { type: 'credit', points, reason: 'order completed' },
        headers: { 'idempotency-key': `${this.sim.settings.tag}-${key}` },
      },
      { passesStepUp: this.label === 'honest', ...options },
    );
  }

  /**
   * An honest customer's patience: limited (429), they wait what Retry-After says (at most `maxWaitMs`,
   * and never past the run's deadline) and try again, up to `tries` times in all.
   */
  async patiently(send: () => Promise<AttemptResult>, tries = 3, maxWaitMs = 20_000): Promise<AttemptResult> {
    let result = await send();
    for (let i = 1; i < tries && result.classified.outcome === 'rate_limited'; i++) {
      const wait = Math.min((result.classified.retryAfterSeconds ?? 1) * 1000, maxWaitMs);
      if (wait + 500 > this.timeLeft()) break;
      await this.sleep(wait + this.timing.int(100, 1_500));
      result = await send();
    }
    return result;
  }

  /**
   * Fire `sends` together (a race). Afterwards the one use the actor was entitled to is labelled
   * `entitled`: the first that succeeded, or the first sent when none did.
   */
  async burst(sends: (() => Promise<AttemptResult>)[]): Promise<AttemptResult[]> {
    const results = await Promise.all(sends.map((send) => send()));
    const winner =
      results.find((r) => r.record.outcome === 'allowed' || r.record.outcome === 'held') ?? results[0];
    if (winner) winner.record.label = 'entitled';
    return results;
  }
}
