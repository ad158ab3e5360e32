/**
 * Whether each dependency (database, redis, nats) answers, as seen by this node. Failures are reported
 * here as they happen, often once per request; the log gets a line when a dependency goes down, one
 * every `repeatMs` while it stays down, and one when it is back — never one per failed request, which
 * under load would bury everything else. `state()` feeds the `promoguard_dependency_up` gauge.
 */
import type { Clock } from '../lib/clock.js';

export interface DependencyLogger {
  error(obj: object, msg: string): void;
  /** Recovery is logged here when present (else at error). */
  info?(obj: object, msg: string): void;
}

export interface DependencyState {
  dependency: string;
  up: boolean;
  /** When it last changed between up and down (or was first registered). */
  since: Date;
  /** Failures reported during the current outage (0 while up). */
  failures: number;
}

interface Tracked {
  up: boolean;
  since: number;
  failures: number;
  lastLogged: number;
  /** What failed since the last line, by message, so the "still down" line says what is going on. */
  lastError: string;
}

export interface DependencyHealthOptions {
  logger: DependencyLogger;
  clock: Clock;
  /** How often a dependency that stays down is logged again (default 30 s). */
  repeatMs?: number;
}

export const DEFAULT_REPEAT_MS = 30_000;

/** The message of an error, never its stack or its fields (which may carry a URL with a password). */
function describe(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return describe(err.errors[0]);
  if (err instanceof Error) return err.message.split('\n')[0] ?? err.name;
  return String(err);
}

export class DependencyHealth {
  private readonly tracked = new Map<string, Tracked>();
  private readonly repeatMs: number;

  constructor(private readonly options: DependencyHealthOptions) {
    this.repeatMs = options.repeatMs ?? DEFAULT_REPEAT_MS;
  }

  /** Starts watching a dependency (up unless told otherwise). Registering again changes nothing. */
  register(dependency: string, up = true): void {
    if (this.tracked.has(dependency)) return;
    const now = this.now();
    this.tracked.set(dependency, { up, since: now, failures: 0, lastLogged: up ? 0 : now, lastError: '' });
  }

  /** The dependency failed to answer. Cheap: called on every failed request. */
  down(dependency: string, err: unknown, consequence?: string): void {
    this.register(dependency);
    const t = this.tracked.get(dependency) as Tracked;
    const now = this.now();
    t.failures++;
    t.lastError = describe(err);
    if (t.up) {
      t.up = false;
      t.since = now;
      t.failures = 1;
      t.lastLogged = now;
      this.options.logger.error(
        { dependency, error: t.lastError, ...(consequence ? { consequence } : {}) },
        `${dependency} is down`,
      );
      return;
    }
    if (now - t.lastLogged >= this.repeatMs) {
      t.lastLogged = now;
      this.options.logger.error(
        { dependency, error: t.lastError, downForMs: now - t.since, failures: t.failures },
        `${dependency} is still down`,
      );
    }
  }

  /** The dependency answered. Cheap while it is up: called after any success that proves it. */
  up(dependency: string): void {
    const t = this.tracked.get(dependency);
    if (!t) {
      this.register(dependency);
      return;
    }
    if (t.up) return;
    const now = this.now();
    const fields = { dependency, downForMs: now - t.since, failures: t.failures };
    t.up = true;
    t.since = now;
    t.failures = 0;
    t.lastError = '';
    const { logger } = this.options;
    if (logger.info) logger.info(fields, `${dependency} is back up`);
    else logger.error(fields, `${dependency} is back up`);
  }

  isUp(dependency: string): boolean {
    return this.tracked.get(dependency)?.up ?? true;
  }

  /** Every registered dependency, for the `promoguard_dependency_up` gauge. */
  state(): DependencyState[] {
    return [...this.tracked].map(([dependency, t]) => ({
      dependency,
      up: t.up,
      since: new Date(t.since),
      failures: t.failures,
    }));
  }

  private now(): number {
    return this.options.clock.now().getTime();
  }
}
