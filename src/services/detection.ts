/**
 * Streaming detection: committed redemption events and refused attempts feed the keyed detectors of
 * domain/detection, and an alarm becomes an alert row plus its `alert.raised` event (store/alerts.ts).
 *
 * - Redemption rate per code, campaign and partner (Poisson CUSUM over each key's own baseline, the
 *   campaign's planned peaks declared on every key of the campaign): `redemption_spike`.
 * - Distinct payment instruments, devices and new accounts per code and campaign: `distinct_spike`.
 * - Refused attempts whose code did not work, per campaign, batch and address block (/24, /48, /32),
 *   across all addresses: `refusal_wave`.
 * - Rollbacks and small orders per person, device and shipping address within a window:
 *   `rollback_cycle`, `order_splitting`.
 *
 * Every key is checked after each event, not only when its interval closes (KeyedStreams.check), so an
 * alert follows the event that crossed the threshold by one statement. An alert is unique per detector
 * key and episode in the database; a redelivered event is also skipped by id, so it is not counted twice.
 */
import { ALERT_KINDS, type AlertKind, type AlertScope, type AlertSeverity } from '../domain/alerts.js';
import type { PlannedPeak as CampaignPeak } from '../domain/campaign.js';
import {
  type KeyedAlarm,
  KeyedDetectors,
  type KeyedDetectorsSnapshot,
  KeyedDistinctDetectors,
  type KeyedDistinctSnapshot,
  type PlannedPeak,
  type PoissonCusumConfig,
} from '../domain/detection/index.js';
import type { DomainEvent } from '../domain/events.js';
import type { EventBus } from '../events/bus.js';
import type { Attempt, Telemetry } from '../events/telemetry.js';
import { type AlertRecord, loadSnapshots, raiseAlert, saveSnapshots } from '../store/alerts.js';
import { findCampaign } from '../store/campaigns.js';
import { parseJsonResult, toDate } from '../store/rows.js';
import type { ServiceContext } from './context.js';

export interface DetectionLogger {
  error(obj: object, msg: string): void;
}

export interface DetectionOptions {
  /** Interval of the rate, distinct and refusal detectors, ms. */
  intervalMs: number;
  /** Intervals a new rate or distinct key only learns before it may alarm. */
  warmupIntervals: number;
  /** Target in-control ARL in intervals (sets the CUSUM threshold). */
  targetArl: number;
  /** Most keys per detector. */
  maxKeys: number;
  /** How often intervals are closed by the clock (ms), when no event moves them. */
  tickMs: number;
  /** How often the detectors' state is saved (ms). */
  snapshotMs: number;
  /** Window of the per-person, device and address counts (ms). */
  actorWindowMs: number;
  /** Rollbacks by one person, device or address within the window that raise rollback_cycle. */
  rollbacksPerWindow: number;
  /** Small orders by one person, device or address within the window that raise order_splitting. */
  smallOrdersPerWindow: number;
  /** An order whose subtotal is at most this (minor units) is small. */
  smallOrderMinor: number;
  /** An account younger than this (hours) is new. */
  newAccountHours: number;
  logger: DetectionLogger;
}

/** Refusals that say the code did not work: what a guesser sees. Cart and cap refusals are not. */
const GUESS_REASONS = new Set([
  'code_not_found',
  'code_revoked',
  'code_expired',
  'code_used_up',
  'code_bound_to_other_customer',
]);

/** Events seen recently, by id, so a redelivered event is not counted twice. */
const RECENT_EVENTS = 100_000;
/** Redemptions whose signals are kept from telemetry: well beyond what the relay holds in flight. */
const RECENT_HINTS = 20_000;
/** Alarms already raised (or being raised), by detector key and episode. */
const RECENT_ALARMS = 10_000;

type Family = 'rate' | 'distinct' | 'refusal';

interface Signals {
  partner: string | null;
  batchId: string | null;
  /** A code used once at most has no rate or distinct count of its own to watch. */
  singleUse: boolean;
  paymentKey: string | null;
  deviceKey: string | null;
  addressKey: string | null;
  accountCreatedAt: Date | null;
}

interface RedemptionPayload {
  id: string;
  campaign_id: string;
  code_id: string;
  customer_id: string;
  person_id: string | null;
  subtotal_minor: number;
}

/** Counts per key in fixed windows; an alarm when a window's count reaches the threshold (once). */
export class WindowCounts {
  private readonly entries = new Map<string, { window: number; count: number }>();

  constructor(
    readonly windowMs: number,
    private readonly maxKeys: number,
  ) {}

  /**
   * Adds one; returns the window's start while the window's count is at or past `threshold` (the
   * caller raises once per window, and a failed raise is tried again on the next one), else null.
   */
  add(key: string, timeMs: number, threshold: number): number | null {
    const window = Math.floor(timeMs / this.windowMs);
    let entry = this.entries.get(key);
    if (entry === undefined || entry.window < window) entry = { window, count: 0 };
    this.entries.delete(key);
    entry.count += 1;
    this.entries.set(key, entry);
    if (this.entries.size > this.maxKeys) {
      for (const oldest of this.entries.keys()) {
        this.entries.delete(oldest);
        break;
      }
    }
    return entry.count >= threshold ? window * this.windowMs : null;
  }

  toJSON(): { windowMs: number; entries: [string, number, number][] } {
    return { windowMs: this.windowMs, entries: [...this.entries].map(([k, e]) => [k, e.window, e.count]) };
  }

  load(json: { windowMs: number; entries: [string, number, number][] }): void {
    if (json.windowMs !== this.windowMs) return;
    for (const [k, window, count] of json.entries) this.entries.set(k, { window, count });
  }

  get size(): number {
    return this.entries.size;
  }
}

/** A Set that forgets its oldest members beyond `max`. */
class RecentSet {
  private readonly items = new Set<string>();
  constructor(private readonly max: number) {}
  has(item: string): boolean {
    return this.items.has(item);
  }
  delete(item: string): void {
    this.items.delete(item);
  }
  add(item: string): void {
    this.items.add(item);
    if (this.items.size > this.max) {
      for (const oldest of this.items) {
        this.items.delete(oldest);
        break;
      }
    }
  }
}

/** A Map that forgets its oldest entries beyond `max`. */
class RecentMap<V> {
  private readonly items = new Map<string, V>();
  constructor(private readonly max: number) {}
  get(key: string): V | undefined {
    return this.items.get(key);
  }
  set(key: string, value: V): void {
    this.items.set(key, value);
    if (this.items.size > this.max) {
      for (const oldest of this.items.keys()) {
        this.items.delete(oldest);
        break;
      }
    }
  }
}

export class DetectionService {
  private rate: KeyedDetectors;
  private distinct: KeyedDistinctDetectors;
  private refusal: KeyedDetectors;
  private readonly actors: WindowCounts;
  private readonly seenEvents = new RecentSet(RECENT_EVENTS);
  /** Signals of the redemptions this node made recently, from its telemetry (see signals()). */
  private readonly hints = new RecentMap<Signals>(RECENT_HINTS);
  private readonly raised = new RecentSet(RECENT_ALARMS);
  /** The planned peaks of campaigns, as last read or heard of. */
  private readonly peaks = new Map<string, PlannedPeak[]>();
  /** Keys that were given a non-empty peak list (so a cleared list is applied to them once). */
  private readonly keysWithPeaks = new Set<string>();
  private unsubscribe: (() => void) | undefined;
  private offTelemetry: (() => void) | undefined;
  private offRefusals: (() => void) | undefined;
  /** Refused attempts come from every node over NATS (this node's included), not from telemetry. */
  private remoteRefusals = false;
  private ticker: NodeJS.Timeout | undefined;
  private saver: NodeJS.Timeout | undefined;
  /** Alerts being raised from refusals (outside any event handler): awaited by stop(). */
  private inFlight = new Set<Promise<unknown>>();
  private readonly listeners = new Set<(alert: AlertRecord, latencySeconds: number | null) => void>();
  private started = false;

  constructor(
    private readonly ctx: ServiceContext,
    private readonly options: DetectionOptions,
  ) {
    this.rate = new KeyedDetectors(this.keyed(this.cusum()));
    this.distinct = new KeyedDistinctDetectors(this.keyed(this.cusum()));
    this.refusal = new KeyedDetectors(this.keyed(this.refusalCusum()));
    this.actors = new WindowCounts(options.actorWindowMs, options.maxKeys);
  }

  private cusum(): Partial<PoissonCusumConfig> {
    const shift = 3;
    return {
      intervalMs: this.options.intervalMs,
      shift,
      threshold: Math.log(this.options.targetArl) / Math.log(shift),
      warmupIntervals: this.options.warmupIntervals,
    };
  }

  /**
   * Refusals by key: an address block a guesser rotates through has no history of its own, so the
   * key alarms from its first interval against the floor, and a young key's baseline gets no upward
   * prior (which would hide a wave that starts with the key).
   */
  private refusalCusum(): Partial<PoissonCusumConfig> {
    return { ...this.cusum(), warmupIntervals: 0, priorEvents: 0 };
  }

  private keyed(detector: Partial<PoissonCusumConfig>) {
    return { detector, maxKeys: this.options.maxKeys };
  }

  /** Restores the saved state and starts consuming `bus` (one work-queue subscription) and `telemetry`. */
  async start(
    bus: EventBus,
    telemetry: Telemetry | null,
    /** Every node's refused attempts (NATS); absent = this node's telemetry only. */
    refusals?: (handler: (r: RefusalSignal) => void) => () => void,
  ): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.remoteRefusals = refusals !== undefined;
    if (refusals) this.offRefusals = refusals((r) => this.observeRefusal(r));
    await this.restore();
    // Every kind's series exists from the start at 0, so the first alert of a kind shows as an increase.
    for (const kind of ALERT_KINDS) this.ctx.metrics?.inc('promoguard_alerts_total', { kind }, 0);
    this.unsubscribe = bus.subscribe({
      name: 'detection',
      mode: 'work-queue',
      types: ['redemption.created', 'redemption.rolled_back', 'campaign.created', 'campaign.updated'],
      handler: (event) => this.onEvent(event),
    });
    if (telemetry) this.offTelemetry = telemetry.on((a) => this.onAttempt(a));
    this.ticker = setInterval(() => {
      this.track(this.tick());
    }, this.options.tickMs);
    this.ticker.unref();
    this.saver = setInterval(() => {
      this.track(this.save());
    }, this.options.snapshotMs);
    this.saver.unref();
  }

  /**
   * Stops consuming, waits for alerts under way, and saves the state, unless `save` is false: a node
   * that lost its lease must not overwrite the state the node holding it now saves.
   */
  async stop({ save = true }: { save?: boolean } = {}): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.unsubscribe?.();
    this.offTelemetry?.();
    this.offRefusals?.();
    if (this.ticker) clearInterval(this.ticker);
    if (this.saver) clearInterval(this.saver);
    await Promise.allSettled([...this.inFlight]);
    if (save) await this.save();
  }

  get running(): boolean {
    return this.started;
  }

  /** Resolves when the alerts being raised from refused attempts are written (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private track(p: Promise<unknown>): void {
    const tracked = p.catch((err: unknown) => this.options.logger.error({ err }, 'detection failed'));
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
  }

  /** Keys held per detector (tests, and to see the memory bound). */
  get sizes(): Record<Family | 'actors', number> {
    return {
      rate: this.rate.size,
      distinct: this.distinct.size,
      refusal: this.refusal.size,
      actors: this.actors.size,
    };
  }

  // -------------------------------------------------------------------------------------------------
  // Events
  // -------------------------------------------------------------------------------------------------

  async onEvent(event: DomainEvent): Promise<void> {
    if (event.type === 'campaign.created' || event.type === 'campaign.updated') {
      const c = (event.payload as { campaign?: { id?: string; plannedPeaks?: unknown } }).campaign;
      if (c?.id && Array.isArray(c.plannedPeaks)) this.peaks.set(c.id, peaksFromJson(c.plannedPeaks));
      return;
    }
    if (this.seenEvents.has(event.id)) return;
    const r = (event.payload as { redemption?: RedemptionPayload }).redemption;
    if (!r) return;
    const signals = await this.signals(r.id);
    const at = event.createdAt.getTime();
    const alarms: [Family, KeyedAlarm][] = [];
    const actorAlerts: NewActorAlert[] = [];
    if (event.type === 'redemption.created') {
      const peaks = await this.campaignPeaks(r.campaign_id);
      // Per-code keys only for codes used more than once: a single-use code's count is at most one, and
      // keying each of a batch's codes would fill the detectors (and their snapshots) with nothing.
      const codeKeys = signals.singleUse ? [] : [`code:${r.code_id}`];
      const rateKeys = [...codeKeys, `campaign:${r.campaign_id}`];
      if (signals.partner !== null) rateKeys.push(`partner:${r.campaign_id}:${signals.partner}`);
      for (const key of rateKeys) {
        this.applyPeaks(this.rate, `rate:${key}`, key, peaks, at);
        this.rate.observe(key, at);
      }
      const distinctKeys: [string, string][] = [];
      const scopes = [...codeKeys, `campaign:${r.campaign_id}`];
      const newAccount =
        signals.accountCreatedAt !== null &&
        at - signals.accountCreatedAt.getTime() < this.options.newAccountHours * 3_600_000;
      for (const scope of scopes) {
        if (signals.paymentKey) distinctKeys.push([`payment:${scope}`, signals.paymentKey]);
        if (signals.deviceKey) distinctKeys.push([`device:${scope}`, signals.deviceKey]);
        if (newAccount) distinctKeys.push([`new_account:${scope}`, r.customer_id]);
      }
      for (const [key, value] of distinctKeys) {
        this.applyPeaks(this.distinct, `distinct:${key}`, key, peaks, at);
        this.distinct.observe(key, at, value);
      }
      for (const key of rateKeys) pushAlarm(alarms, 'rate', this.rate.check(key));
      for (const [key] of distinctKeys) pushAlarm(alarms, 'distinct', this.distinct.check(key));
      if (r.subtotal_minor <= this.options.smallOrderMinor) {
        actorAlerts.push(
          ...this.countActors('order_splitting', r, signals, at, this.options.smallOrdersPerWindow),
        );
      }
    } else {
      actorAlerts.push(
        ...this.countActors('rollback_cycle', r, signals, at, this.options.rollbacksPerWindow),
      );
    }
    // Alarms of intervals this event's time closed (usually already raised by a check).
    for (const a of this.rate.advance(at)) alarms.push(['rate', a]);
    for (const a of this.distinct.advance(at)) alarms.push(['distinct', a]);
    // Counted now, so a redelivery is not counted twice. An alarm whose alert fails to be written is
    // found again by the key's next check or at its interval's close (the tick), and raised then.
    this.seenEvents.add(event.id);
    for (const [family, alarm] of alarms) await this.raiseAlarm(family, alarm, event, signals, r);
    for (const a of actorAlerts) await this.raiseActor(a, event);
  }

  /**
   * What the event does not carry: the code's partner and batch, the request's keyed identifiers. The
   * node that made the redemption told its telemetry just after the commit, before the relay delivers
   * the event, so on one node the answer is in memory; otherwise (another node made it, a restart) one
   * indexed read.
   */
  private async signals(redemptionId: string): Promise<Signals> {
    const hint = this.hints.get(redemptionId);
    if (hint !== undefined) return hint;
    const row = await this.ctx.db
      .selectFrom('redemptions as r')
      .innerJoin('codes as c', 'c.id', 'r.code_id')
      .select(['r.context', 'c.partner', 'c.batch_id', 'c.max_uses'])
      .where('r.id', '=', redemptionId)
      .executeTakeFirst();
    const context = parseJsonResult<Record<string, unknown> | null>(row?.context ?? null) ?? {};
    const text = (v: unknown) => (typeof v === 'string' && v !== '' ? v : null);
    const created = text(context.account_created_at);
    return {
      partner: row?.partner ?? null,
      batchId: row?.batch_id ?? null,
      singleUse: row?.max_uses === 1,
      paymentKey: text(context.payment_fingerprint),
      deviceKey: text(context.device_id),
      addressKey: text(context.shipping_address),
      accountCreatedAt: created ? new Date(created) : null,
    };
  }

  private async campaignPeaks(campaignId: string): Promise<PlannedPeak[]> {
    let peaks = this.peaks.get(campaignId);
    if (peaks === undefined) {
      const campaign = await findCampaign(this.ctx.db, campaignId);
      peaks = peaksOf(campaign?.plannedPeaks ?? []);
      this.peaks.set(campaignId, peaks);
    }
    return peaks;
  }

  /** A campaign's peaks hold for each of its keys: a flash sale lifts its codes and partners too. */
  private applyPeaks(
    detectors: KeyedDetectors | KeyedDistinctDetectors,
    id: string,
    key: string,
    peaks: PlannedPeak[],
    at: number,
  ): void {
    if (peaks.length === 0 && !this.keysWithPeaks.has(id)) return;
    try {
      detectors.setPeaks(key, peaks, at);
      if (peaks.length > 0) this.keysWithPeaks.add(id);
      else this.keysWithPeaks.delete(id);
    } catch (err) {
      this.options.logger.error({ err, key }, 'planned peaks not applied to a detector key');
    }
  }

  private countActors(
    kind: 'rollback_cycle' | 'order_splitting',
    r: RedemptionPayload,
    signals: Signals,
    at: number,
    threshold: number,
  ): NewActorAlert[] {
    const out: NewActorAlert[] = [];
    const actors: [AlertScope['type'], string | null][] = [
      ['person', r.person_id ?? `customer:${r.customer_id}`],
      ['device', signals.deviceKey],
      ['address', signals.addressKey],
    ];
    for (const [type, id] of actors) {
      if (id === null) continue;
      const key = `${kind}:${type}:${id}`;
      const window = this.actors.add(key, at, threshold);
      if (window !== null)
        out.push({ kind, key, type, id, window, count: threshold, campaignId: r.campaign_id });
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------------
  // Refused attempts
  // -------------------------------------------------------------------------------------------------

  /** A telemetry listener: cheap and never throwing; raising happens in the background. */
  onAttempt(a: Attempt): void {
    if (a.kind === 'redemption' && a.outcome === 'redeemed' && a.redemptionId) {
      this.hints.set(a.redemptionId, {
        partner: a.partner,
        batchId: a.batchId,
        singleUse: a.codeSingleUse === true,
        paymentKey: a.paymentKey,
        deviceKey: a.deviceKey,
        addressKey: a.shippingKey ?? null,
        accountCreatedAt:
          a.accountAgeHours === null ? null : new Date(a.at.getTime() - a.accountAgeHours * 3_600_000),
      });
      return;
    }
    if (this.remoteRefusals) return;
    const refusal = refusalSignal(a);
    if (refusal) this.observeRefusal(refusal);
  }

  /** One refused attempt, from this node's telemetry or another node's (see docs/detection.md). */
  observeRefusal(r: RefusalSignal): void {
    const keys: string[] = r.addressBlocks.map((b) => `block:${b}`);
    if (r.campaignId) keys.push(`campaign:${r.campaignId}`);
    if (r.batchId) keys.push(`batch:${r.batchId}`);
    const alarms: KeyedAlarm[] = [];
    for (const key of keys) this.refusal.observe(key, r.at);
    for (const key of keys) {
      const alarm = this.refusal.check(key);
      if (alarm) alarms.push(alarm);
    }
    alarms.push(...this.refusal.advance(r.at));
    for (const alarm of alarms) {
      if (this.raised.has(`refusal:${alarm.key}@${alarm.since}`)) continue;
      this.track(this.raiseAlarm('refusal', alarm, null, null, null, r));
    }
  }

  // -------------------------------------------------------------------------------------------------
  // Clock, alerts, state
  // -------------------------------------------------------------------------------------------------

  /** Closes the intervals the clock has passed and raises what they alarm (no event moved them). */
  async tick(): Promise<void> {
    const now = this.ctx.clock.now().getTime();
    for (const a of this.rate.advance(now)) await this.raiseAlarm('rate', a, null, null, null);
    for (const a of this.distinct.advance(now)) await this.raiseAlarm('distinct', a, null, null, null);
    for (const a of this.refusal.advance(now)) await this.raiseAlarm('refusal', a, null, null, null);
  }

  private async raiseAlarm(
    family: Family,
    alarm: KeyedAlarm,
    event: DomainEvent | null,
    signals: Signals | null,
    r: RedemptionPayload | null,
    refusal?: RefusalSignal,
  ): Promise<void> {
    const detectorKey = `${family}:${alarm.key}`;
    const mark = `${detectorKey}@${alarm.since}`;
    if (this.raised.has(mark)) return;
    this.raised.add(mark);
    const { kind, scope, severity } = describe(family, alarm.key, signals, r);
    try {
      const record = await raiseAlert(
        this.ctx.db,
        {
          kind,
          detectorKey,
          episodeStart: new Date(alarm.since),
          scope,
          severity,
          observed: alarm.observedPerInterval,
          expected: alarm.baselinePerInterval,
          intervalSeconds: alarm.intervalMs / 1000,
          details: {
            count: alarm.count,
            interval_expected: alarm.expected,
            ratio: alarm.ratio,
            statistic: alarm.statistic,
            threshold: alarm.threshold,
            in_peak: alarm.inPeak,
            interval_start: new Date(alarm.intervalStart).toISOString(),
          },
          triggeredByEventId: event?.id ?? null,
          triggeredAt: event?.createdAt ?? new Date(refusal?.at ?? alarm.intervalStart + alarm.intervalMs),
        },
        this.ctx.clock.now(),
      );
      this.raisedOne(record, event);
    } catch (err) {
      // Not marked: the event's redelivery (or the next alarm check) tries again.
      this.raised.delete(mark);
      throw err;
    }
  }

  private async raiseActor(a: NewActorAlert, event: DomainEvent): Promise<void> {
    const mark = `${a.key}@${a.window}`;
    if (this.raised.has(mark)) return;
    this.raised.add(mark);
    try {
      const record = await raiseAlert(
        this.ctx.db,
        {
          kind: a.kind,
          detectorKey: a.key,
          episodeStart: new Date(a.window),
          scope: { type: a.type, id: a.id, campaignId: a.campaignId, partner: null, batchId: null },
          severity: 'ticket',
          observed: a.count,
          expected: a.count - 1,
          intervalSeconds: this.options.actorWindowMs / 1000,
          details: { window_start: new Date(a.window).toISOString(), threshold: a.count },
          triggeredByEventId: event.id,
          triggeredAt: event.createdAt,
        },
        this.ctx.clock.now(),
      );
      this.raisedOne(record, event);
    } catch (err) {
      this.raised.delete(mark);
      throw err;
    }
  }

  /** Told of each alert this node raised, with its detection latency in seconds when an event triggered it. */
  onRaised(listener: (alert: AlertRecord, latencySeconds: number | null) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private raisedOne(record: AlertRecord | null, event: DomainEvent | null): void {
    if (record === null) return;
    this.ctx.afterCommit();
    // M8: from the triggering event's commit (its created_at, taken just before it) to the alert's.
    const seconds = event
      ? Math.max(0, (this.ctx.clock.now().getTime() - event.createdAt.getTime()) / 1000)
      : null;
    const metrics = this.ctx.metrics;
    if (metrics) {
      metrics.inc('promoguard_alerts_total', { kind: record.kind });
      if (seconds !== null)
        metrics.observe('promoguard_detection_latency_seconds', { source: 'alert' }, seconds);
    }
    for (const listener of this.listeners) listener(record, seconds);
  }

  private async restore(): Promise<void> {
    let saved: Map<string, string>;
    try {
      saved = await loadSnapshots(this.ctx.db);
    } catch (err) {
      this.options.logger.error({ err }, 'detector state could not be read; starting without baselines');
      return;
    }
    const load = <T>(name: string, make: (s: T) => void) => {
      const text = saved.get(name);
      if (text === undefined) return;
      try {
        make(JSON.parse(text) as T);
      } catch (err) {
        this.options.logger.error(
          { err, name },
          'a detector snapshot could not be restored; it starts afresh',
        );
      }
    };
    // A snapshot taken under other settings (interval, threshold) would judge with the wrong numbers.
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    load<KeyedDetectorsSnapshot>('rate', (s) => {
      if (same(s.options, this.rate.options)) this.rate = KeyedDetectors.restore(s);
    });
    load<KeyedDistinctSnapshot>('distinct', (s) => {
      if (same(s.options, this.distinct.options)) this.distinct = KeyedDistinctDetectors.restore(s);
    });
    load<KeyedDetectorsSnapshot>('refusal', (s) => {
      if (same(s.options, this.refusal.options)) this.refusal = KeyedDetectors.restore(s);
    });
    load<ReturnType<WindowCounts['toJSON']>>('actors', (s) => this.actors.load(s));
  }

  /** Saves every detector's state (periodically, and on stop). */
  async save(): Promise<void> {
    const snapshots = new Map<string, string>([
      ['rate', JSON.stringify(this.rate.snapshot())],
      ['distinct', JSON.stringify(this.distinct.snapshot())],
      ['refusal', JSON.stringify(this.refusal.snapshot())],
      ['actors', JSON.stringify(this.actors.toJSON())],
    ]);
    await saveSnapshots(this.ctx.db, snapshots, this.ctx.clock.now());
  }
}

/** The refusal-wave signal of an attempt: a validation or redemption refused because the code did not work. */
export function refusalSignal(a: Attempt): RefusalSignal | null {
  if (a.kind !== 'validation' && a.kind !== 'redemption') return null;
  if (a.outcome !== 'invalid' && a.outcome !== 'refused') return null;
  if (a.reason === null || !GUESS_REASONS.has(a.reason)) return null;
  return {
    at: a.at.getTime(),
    campaignId: a.campaignId,
    batchId: a.batchId,
    addressBlocks: a.addressBlocks ?? [],
  };
}

/** Reads a refusal signal another node published; null when it is not one. */
export function decodeRefusal(text: string): RefusalSignal | null {
  try {
    const r = JSON.parse(text) as Partial<RefusalSignal>;
    if (typeof r.at !== 'number' || !Number.isFinite(r.at) || !Array.isArray(r.addressBlocks)) return null;
    return {
      at: r.at,
      campaignId: typeof r.campaignId === 'string' ? r.campaignId : null,
      batchId: typeof r.batchId === 'string' ? r.batchId : null,
      addressBlocks: r.addressBlocks.filter((b): b is string => typeof b === 'string').slice(0, 4),
    };
  } catch {
    return null;
  }
}

/** A refused attempt as the refusal detector needs it (also what crosses NATS between nodes). */
export interface RefusalSignal {
  at: number;
  campaignId: string | null;
  batchId: string | null;
  /** The address blocks of the client (/24; /48 and /32), as text. */
  addressBlocks: string[];
}

interface NewActorAlert {
  kind: 'rollback_cycle' | 'order_splitting';
  key: string;
  type: AlertScope['type'];
  id: string;
  window: number;
  count: number;
  campaignId: string;
}

function pushAlarm(out: [Family, KeyedAlarm][], family: Family, alarm: KeyedAlarm | null): void {
  if (alarm) out.push([family, alarm]);
}

/** The alert's kind, scope and severity from the detector key (`campaign:cmp_…`, `payment:code:…`). */
function describe(
  family: Family,
  key: string,
  signals: Signals | null,
  r: RedemptionPayload | null,
): { kind: AlertKind; scope: AlertScopeWithNulls; severity: AlertSeverity } {
  const scope = (
    type: AlertScope['type'],
    id: string,
    campaignId: string | null = null,
  ): AlertScopeWithNulls => ({
    type,
    id,
    campaignId,
    partner: null,
    batchId: null,
  });
  if (family === 'refusal') {
    const [what, ...rest] = key.split(':');
    const id = rest.join(':');
    const s =
      what === 'block'
        ? scope('address_block', id)
        : what === 'batch'
          ? { ...scope('batch', id), batchId: id }
          : scope('campaign', id, id);
    return { kind: 'refusal_wave', scope: s, severity: 'page' };
  }
  // Rate: code:<id> | campaign:<id> | partner:<campaign>:<partner>; distinct: <what>:<code|campaign>:<id>.
  const parts = key.split(':');
  const body = family === 'distinct' ? parts.slice(1) : parts;
  const [type, id = '', ...rest] = body;
  let s: AlertScopeWithNulls;
  if (type === 'partner') {
    s = { ...scope('partner', rest.join(':'), id), partner: rest.join(':') };
  } else if (type === 'code') {
    s = { ...scope('code', id, r?.campaign_id ?? null), batchId: signals?.batchId ?? null };
    if (signals?.partner) s.partner = signals.partner;
  } else {
    s = scope('campaign', id, id);
  }
  if (family === 'distinct') return { kind: 'distinct_spike', scope: s, severity: 'ticket' };
  return { kind: 'redemption_spike', scope: s, severity: 'page' };
}

type AlertScopeWithNulls = AlertRecord['scope'];

function peaksOf(peaks: readonly CampaignPeak[]): PlannedPeak[] {
  return peaks.map((p) => ({
    startsAt: p.startsAt.getTime(),
    endsAt: p.endsAt.getTime(),
    expectedPerMinute: p.expectedPerMinute,
  }));
}

/** Peaks as a campaign event carries them (camelCase, instants as text). */
function peaksFromJson(peaks: unknown[]): PlannedPeak[] {
  const out: PlannedPeak[] = [];
  for (const p of peaks) {
    const q = p as { startsAt?: unknown; endsAt?: unknown; expectedPerMinute?: unknown };
    if (
      typeof q.startsAt !== 'string' ||
      typeof q.endsAt !== 'string' ||
      typeof q.expectedPerMinute !== 'number'
    )
      continue;
    out.push({
      startsAt: toDate(q.startsAt).getTime(),
      endsAt: toDate(q.endsAt).getTime(),
      expectedPerMinute: q.expectedPerMinute,
    });
  }
  return out;
}
