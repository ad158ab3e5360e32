/**
 * The event bus on NATS JetStream: the outbox relay publishes each event to a stream, and the
 * subscriptions inside Promoguard read it through durable consumers. JetStream's duplicate window,
 * keyed by the event id (`Nats-Msg-Id`), removes the repeats of the relay's at-least-once delivery.
 *
 * NATS may be away at start or at any time after: publishing then fails fast (`isAvailable` is false,
 * so the relay leaves the events in the outbox), and the connection, the stream and the consumers come
 * back by themselves when it returns. Nothing here ever stops the process or fails a request.
 */
import { randomBytes } from 'node:crypto';
import {
  AckPolicy,
  type ConsumerConfig,
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  type StreamConfig,
} from '@nats-io/jetstream';
import { connect, type NatsConnection, nanos } from '@nats-io/transport-node';
import type { DomainEvent, EventType } from '../domain/events.js';
import { asSubscription, type EventBus, type EventHandler, type Subscription, wants } from './bus.js';
import { decodeEvent, encodeEvent } from './wire.js';

export interface JetStreamBusOptions {
  /** Comma-separated server URLs. */
  servers: string;
  stream: string;
  subjectPrefix: string;
  retention: 'limits' | 'interest';
  /** 0 = no limit. */
  maxAgeMs: number;
  duplicateWindowMs: number;
  publishTimeoutMs: number;
  ackWaitMs: number;
  /** Names this node's broadcast consumers (one per node and subscription). */
  nodeId?: string;
  /** How long to wait between attempts to reach NATS (default 1 s). */
  retryMs?: number;
  /** Told when NATS becomes reachable (with its stream) or stops being so. */
  onAvailability?: (up: boolean, err?: unknown) => void;
  /** A consumer's handler failed (the event is delivered again) or a consumer could not be set up. */
  onError?: (err: unknown, what: string) => void;
}

/** NATS, or its JetStream, did not take the event: it stays in the outbox for a later pass. */
export class EventStreamUnavailable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EventStreamUnavailable';
  }
}

/** The subject of an event type, e.g. `promoguard.redemption.created`. */
export function subjectOf(prefix: string, type: EventType): string {
  return `${prefix}.${type}`;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

export class JetStreamBus implements EventBus {
  private nc: NatsConnection | undefined;
  private js: JetStreamClient | undefined;
  private jsm: JetStreamManager | undefined;
  /** The connection is up and the stream was checked on it. */
  private ready = false;
  private closed = false;
  private connecting: Promise<void> | undefined;
  private readonly consumers = new Set<ConsumerLoop>();
  /** Core-NATS listeners, attached once a connection exists (it keeps them across reconnects). */
  private readonly transient = new Set<() => void>();
  private readonly nodeId: string;

  constructor(private readonly options: JetStreamBusOptions) {
    this.nodeId = options.nodeId ?? randomBytes(6).toString('hex');
  }

  /** Start reaching NATS in the background; resolves at once (use `whenReady` to wait). */
  start(): void {
    this.connecting ??= this.connectLoop();
  }

  /** Resolves when NATS is reachable with the stream checked, or after `ms` (false). */
  async whenReady(ms: number): Promise<boolean> {
    const until = Date.now() + ms;
    while (!this.ready && !this.closed && Date.now() < until) await sleep(20);
    return this.ready;
  }

  isAvailable(): boolean {
    return this.ready && this.nc !== undefined && !this.nc.isClosed();
  }

  async publish(event: DomainEvent): Promise<void> {
    const js = this.js;
    if (!js || !this.isAvailable()) throw new EventStreamUnavailable('NATS is not connected');
    try {
      // Acknowledged (or reported as a duplicate, which JetStream already holds) only once stored.
      await js.publish(subjectOf(this.options.subjectPrefix, event.type), encodeEvent(event), {
        msgID: event.id,
        timeout: this.options.publishTimeoutMs,
      });
    } catch (err) {
      throw new EventStreamUnavailable(`JetStream did not acknowledge ${event.id}`, { cause: err });
    }
  }

  subscribe(subscription: Subscription | EventHandler): () => void {
    const s = asSubscription(subscription, `listener-${randomBytes(4).toString('hex')}`);
    const loop = new ConsumerLoop(this, s);
    this.consumers.add(loop);
    if (this.ready) loop.start();
    return () => {
      this.consumers.delete(loop);
      void loop.stop();
    };
  }

  /**
   * Publishes on a core NATS subject, outside the stream: best effort, at most once. Dropped while NATS
   * is away or nobody listens; for signals that are not events (refused attempts), never for changes.
   */
  publishTransient(subject: string, data: string): void {
    const nc = this.nc;
    if (!nc || nc.isClosed() || !this.ready) return;
    try {
      nc.publish(subject, data);
    } catch (err) {
      this.options.onError?.(err, `transient publish on ${subject} failed`);
    }
  }

  /** Listens on a core NATS subject in a queue group: one member of the group gets each message. */
  subscribeTransient(subject: string, queue: string, handler: (data: string) => void): () => void {
    let sub: ReturnType<NatsConnection['subscribe']> | undefined;
    let stopped = false;
    const attach = () => {
      const nc = this.nc;
      if (stopped || sub || !nc || nc.isClosed()) return;
      sub = nc.subscribe(subject, {
        queue,
        callback: (err, msg) => {
          if (err) return this.options.onError?.(err, `transient subscription on ${subject}`);
          handler(msg.string());
        },
      });
    };
    this.transient.add(attach);
    attach();
    return () => {
      stopped = true;
      this.transient.delete(attach);
      sub?.unsubscribe();
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.ready = false;
    await Promise.all([...this.consumers].map((c) => c.stop()));
    this.consumers.clear();
    const nc = this.nc;
    this.nc = undefined;
    if (nc && !nc.isClosed()) await nc.close().catch(() => {});
    await this.connecting;
  }

  /** @internal a consumer's failure, to the owner's log. */
  reportError(err: unknown, what: string): void {
    this.options.onError?.(err, what);
  }

  /** @internal the consumer loops' view. */
  get internals() {
    return { js: this.js, jsm: this.jsm, options: this.options, nodeId: this.nodeId, closed: this.closed };
  }

  private async connectLoop(): Promise<void> {
    const retryMs = this.options.retryMs ?? 1000;
    while (!this.closed) {
      let nc: NatsConnection | undefined;
      try {
        nc = await connect({
          servers: this.options.servers.split(',').map((s) => s.trim()),
          name: `promoguard-${this.nodeId}`,
          // Once connected, the client reconnects by itself for as long as the process runs.
          maxReconnectAttempts: -1,
          reconnectTimeWait: retryMs,
          timeout: Math.max(1000, retryMs),
        });
      } catch (err) {
        this.options.onAvailability?.(false, err);
        await sleep(retryMs);
        continue;
      }
      if (this.closed) {
        await nc.close().catch(() => {});
        return;
      }
      this.nc = nc;
      this.js = jetstream(nc, { timeout: this.options.publishTimeoutMs });
      for (const attach of this.transient) attach();
      this.watch(nc);
      await this.becomeReady(nc);
      return;
    }
  }

  /** Check the stream, then open for publishing and start the consumers; retried until it works. */
  private async becomeReady(nc: NatsConnection): Promise<void> {
    const retryMs = this.options.retryMs ?? 1000;
    while (!this.closed && !nc.isClosed()) {
      try {
        this.jsm = await jetstreamManager(nc, { timeout: this.options.publishTimeoutMs });
        await ensureStream(this.jsm, this.options);
        this.ready = true;
        this.options.onAvailability?.(true);
        for (const loop of this.consumers) loop.start();
        return;
      } catch (err) {
        this.options.onAvailability?.(false, err);
        await sleep(retryMs);
      }
    }
  }

  private watch(nc: NatsConnection): void {
    void (async () => {
      for await (const status of nc.status()) {
        if (this.closed) return;
        if (status.type === 'disconnect') {
          this.ready = false;
          this.options.onAvailability?.(false, new EventStreamUnavailable('disconnected from NATS'));
        } else if (status.type === 'reconnect') {
          // The server may have lost the stream (a new server without the old store): check it again.
          void this.becomeReady(nc);
        }
      }
    })().catch(() => {});
  }
}

/** Create the stream, or bring an existing one to the configured subjects, age and duplicate window. */
export async function ensureStream(
  jsm: JetStreamManager,
  options: Pick<
    JetStreamBusOptions,
    'stream' | 'subjectPrefix' | 'retention' | 'maxAgeMs' | 'duplicateWindowMs'
  >,
): Promise<void> {
  const wanted: Partial<StreamConfig> & { name: string } = {
    name: options.stream,
    subjects: [`${options.subjectPrefix}.>`],
    retention: options.retention === 'interest' ? RetentionPolicy.Interest : RetentionPolicy.Limits,
    max_age: nanos(options.maxAgeMs),
    duplicate_window: nanos(options.duplicateWindowMs),
  };
  let current: StreamConfig;
  try {
    current = (await jsm.streams.info(options.stream)).config;
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await jsm.streams.add(wanted);
    return;
  }
  if (current.retention !== wanted.retention) {
    // JetStream cannot change a stream's retention in place; refusing beats publishing elsewhere.
    throw new Error(
      `stream ${options.stream} has retention ${current.retention}, NATS_STREAM_RETENTION asks for ${wanted.retention}`,
    );
  }
  const subjects = wanted.subjects ?? [];
  const sameSubjects = subjects.every((s) => current.subjects?.includes(s));
  if (
    !sameSubjects ||
    current.max_age !== wanted.max_age ||
    current.duplicate_window !== wanted.duplicate_window
  ) {
    await jsm.streams.update(options.stream, {
      ...current,
      subjects: [...new Set([...(current.subjects ?? []), ...subjects])],
      max_age: wanted.max_age,
      duplicate_window: wanted.duplicate_window,
    });
  }
}

function isNotFound(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown; api_error?: { err_code?: number } };
  return e?.api_error?.err_code === 10059 || /stream not found/i.test(String(e?.message ?? ''));
}

/** Consumer names allow letters, digits, - and _ only. */
function consumerName(name: string): string {
  return name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 200);
}

/**
 * One subscription's consumer: a durable consumer shared by every node (work-queue) or one of this
 * node's own (broadcast; removed by JetStream after it stays unused for a while). Each message is
 * acknowledged after the handler returns and refused (redelivered after a pause) when it throws, in
 * stream order.
 */
class ConsumerLoop {
  private messages: ConsumerMessages | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly bus: JetStreamBus,
    private readonly subscription: Subscription,
  ) {}

  start(): void {
    if (this.running || this.stopped) return;
    this.running = this.run().finally(() => {
      this.running = undefined;
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.messages?.stop();
    await this.running;
  }

  private config(): Partial<ConsumerConfig> {
    const { options, nodeId } = this.bus.internals;
    const s = this.subscription;
    const only = s.types?.length === 1 ? s.types[0] : undefined;
    const base: Partial<ConsumerConfig> = {
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(options.ackWaitMs),
      // Reactions start with the events after they first subscribe; a work queue then keeps its place.
      deliver_policy: DeliverPolicy.New,
      filter_subject: only ? subjectOf(options.subjectPrefix, only) : `${options.subjectPrefix}.>`,
      max_ack_pending: 1000,
    };
    if (s.mode === 'work-queue') return { ...base, durable_name: consumerName(s.name) };
    return {
      ...base,
      durable_name: consumerName(`${s.name}-${nodeId}`),
      // A node that is gone leaves its broadcast consumer behind; JetStream removes it after this.
      inactive_threshold: nanos(Math.max(60_000, options.ackWaitMs * 2)),
    };
  }

  private async run(): Promise<void> {
    const retryMs = this.bus.internals.options.retryMs ?? 1000;
    while (!this.stopped && !this.bus.internals.closed) {
      const { js, jsm, options } = this.bus.internals;
      if (!js || !jsm) return;
      try {
        const config = this.config();
        const name = config.durable_name as string;
        await jsm.consumers.add(options.stream, config);
        const consumer = await js.consumers.get(options.stream, name);
        if (this.stopped) return;
        this.messages = await consumer.consume({ max_messages: 100 });
        for await (const m of this.messages) {
          let event: DomainEvent;
          try {
            event = decodeEvent(m.string());
          } catch (err) {
            // Not an event of ours (or of a newer version this node cannot read): leave it to others.
            this.bus.reportError(err, `undecodable message ${m.seq} on ${m.subject}`);
            m.term();
            continue;
          }
          if (!wants(this.subscription, event)) {
            m.ack();
            continue;
          }
          try {
            await this.subscription.handler(event);
            m.ack();
          } catch (err) {
            this.bus.reportError(err, `subscription ${this.subscription.name} failed on ${event.id}`);
            m.nak(retryMs);
          }
        }
      } catch (err) {
        if (!this.stopped) this.bus.reportError(err, `subscription ${this.subscription.name} interrupted`);
      }
      if (!this.stopped) await sleep(retryMs);
    }
  }
}
