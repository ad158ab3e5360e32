/**
 * The simulator's HTTP client: global fetch (undici keeps connections alive), a bound on requests in
 * flight, and a record of every call's client-side latency under the bucket it was made for (a scenario
 * name, or `setup`). Latency is measured from the moment the request leaves the queue to the moment its
 * body is read, so waiting for a free slot is not counted as server time.
 */
import type { HttpAnswer } from './outcomes.js';

export interface CallRecord {
  bucket: string;
  method: string;
  path: string;
  status: number;
  latencyMs: number;
}

export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly method: string,
    readonly path: string,
    readonly answer: HttpAnswer,
  ) {
    super(`${method} ${path} answered ${answer.status}: ${JSON.stringify(answer.body).slice(0, 500)}`);
  }
}

/** A FIFO counting semaphore. */
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(size: number) {
    this.free = size;
  }
  async take(): Promise<void> {
    if (this.free > 0) {
      this.free -= 1;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  give(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free += 1;
  }
}

export interface RequestOptions {
  bucket: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** Send this bearer credential instead of the client's API key. */
  bearer?: string;
  timeoutMs?: number;
}

export class SimHttpClient {
  readonly calls: CallRecord[] = [];
  private readonly slots: Slots;
  private readonly base: string;

  constructor(
    baseUrl: string,
    private readonly apiKey: string,
    concurrency: number,
  ) {
    this.base = baseUrl.replace(/\/+$/, '');
    this.slots = new Slots(concurrency);
  }

  async request(method: string, path: string, options: RequestOptions): Promise<HttpAnswer> {
    await this.slots.take();
    const started = performance.now();
    let answer: HttpAnswer;
    try {
      const headers: Record<string, string> = {
        authorization: `Bearer ${options.bearer ?? this.apiKey}`,
        ...options.headers,
      };
      if (options.body !== undefined) headers['content-type'] = 'application/json';
      const response = await fetch(`${this.base}${path}`, {
        method,
        headers,
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
        signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
      });
      const text = await response.text();
      let body: unknown = text;
      if ((response.headers.get('content-type') ?? '').includes('json') && text.length > 0) {
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
      }
      const out: Record<string, string> = {};
      response.headers.forEach((value, key) => {
        out[key] = value;
      });
      answer = { status: response.status, body, headers: out, latencyMs: performance.now() - started };
    } catch (err) {
      answer = {
        status: 0,
        body: { error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) },
        headers: {},
        latencyMs: performance.now() - started,
      };
    } finally {
      this.slots.give();
    }
    this.calls.push({
      bucket: options.bucket,
      method,
      path,
      status: answer.status,
      latencyMs: answer.latencyMs,
    });
    return answer;
  }

  /** A request that must succeed with `expect` (setup calls); throws HttpError otherwise. */
  async expect(
    expect: number,
    method: string,
    path: string,
    options: RequestOptions,
  ): Promise<Record<string, unknown>> {
    const answer = await this.request(method, path, options);
    if (answer.status !== expect) throw new HttpError(method, path, answer);
    return (answer.body ?? {}) as Record<string, unknown>;
  }

  /** Calls made for each bucket. */
  countsByBucket(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const c of this.calls) counts[c.bucket] = (counts[c.bucket] ?? 0) + 1;
    return counts;
  }
}
