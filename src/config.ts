/**
 * Configuration comes from the environment, is checked once at start-up and then frozen. A bad value
 * stops the process with a message naming the variable; nothing secret has a default.
 */
import { type Static, Type } from 'typebox';
import { Value } from 'typebox/value';
import type { ApprovalPolicy } from './domain/approvals.js';
import { MAX_AMOUNT_MINOR } from './domain/money.js';
import { DEFAULT_MAX_KEYS } from './limits/window-counters.js';
import { parseAllowList } from './security/ssrf-guard.js';
import { DEFAULT_PGLITE_SHARED_BUFFERS_MB } from './store/connect.js';

const EnvSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: 'TCP port of the HTTP API' }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1', description: 'Interface to listen on' }),
  DATABASE_URL: Type.Optional(
    Type.String({ pattern: '^postgres(ql)?://', description: 'PostgreSQL server; unset = embedded PGlite' }),
  ),
  PROMOGUARD_DATA_DIR: Type.String({ minLength: 1, default: './data', description: 'PGlite data folder' }),
  DATABASE_POOL_SIZE: Type.Integer({ minimum: 1, maximum: 500, default: 20 }),
  PGLITE_SHARED_BUFFERS_MB: Type.Integer({
    minimum: 1,
    maximum: 4096,
    default: DEFAULT_PGLITE_SHARED_BUFFERS_MB,
    description: "PGlite's buffer pool in MB (resident for the process's life; ignored with DATABASE_URL)",
  }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
  TRUST_PROXY: Type.String({
    default: 'false',
    pattern: '^(false|[0-9]{1,2}|[0-9A-Fa-f:.,/ ]+)$',
    description:
      'Behind your proxies: how many hops to trust (e.g. 1), or their addresses/CIDRs (comma-separated); ' +
      'false = use the connection address. Never "true": that would let a client pick its own address.',
  }),
  OUTBOX_POLL_MS: Type.Integer({ minimum: 10, maximum: 60_000, default: 1000 }),
  PROMOGUARD_SECRET: Type.Optional(
    Type.String({
      minLength: 32,
      description: 'Key for HMACs (customer tokens); unset = generated once and kept in the database',
    }),
  ),
  REDIS_URL: Type.Optional(
    Type.String({
      pattern: '^rediss?://',
      description: 'Redis for rate limits, lockouts and risk feature counters; unset = in memory',
    }),
  ),
  NATS_URL: Type.Optional(
    Type.String({
      pattern: '^(nats|tls)://',
      description:
        'NATS server(s) with JetStream, comma-separated: the outbox relay publishes every event to a stream and consumers subscribe there; unset = in-process bus',
    }),
  ),
  NATS_STREAM: Type.String({
    pattern: '^[A-Za-z0-9_-]{1,64}$',
    default: 'PROMOGUARD',
    description: 'JetStream stream that holds the events (created or updated at start)',
  }),
  NATS_SUBJECT_PREFIX: Type.String({
    pattern: '^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$',
    default: 'promoguard',
    description: 'Events are published on <prefix>.<event type>, e.g. promoguard.redemption.created',
  }),
  NATS_STREAM_RETENTION: Type.Union([Type.Literal('limits'), Type.Literal('interest')], {
    default: 'limits',
    description:
      'limits = kept until NATS_STREAM_MAX_AGE_HOURS; interest = dropped once every consumer acked',
  }),
  NATS_STREAM_MAX_AGE_HOURS: Type.Integer({
    minimum: 0,
    maximum: 87_600,
    default: 168,
    description: 'How long the stream keeps an event (0 = no limit)',
  }),
  NATS_DUPLICATE_WINDOW_MS: Type.Integer({
    minimum: 60_000,
    maximum: 86_400_000,
    default: 120_000,
    description:
      "JetStream's duplicate window: a repeat of an event id within it is dropped; longer than the relay's 30 s lease so a redelivery after a crash is caught",
  }),
  NATS_PUBLISH_TIMEOUT_MS: Type.Integer({
    minimum: 100,
    maximum: 60_000,
    default: 2000,
    description:
      "How long the relay waits for JetStream's acknowledgement before leaving the event for a later pass",
  }),
  NATS_ACK_WAIT_MS: Type.Integer({
    minimum: 1000,
    maximum: 3_600_000,
    default: 30_000,
    description:
      'How long a consumer inside Promoguard may take over an event before JetStream redelivers it',
  }),
  REDIS_KEY_PREFIX: Type.String({
    minLength: 1,
    maxLength: 64,
    default: 'pg:guard',
    description: 'Namespace of the rate-limit and risk-counter keys in Redis',
  }),
  RATE_LIMIT_PER_MINUTE: Type.Integer({
    minimum: 1,
    maximum: 100_000,
    default: 60,
    description: 'Validation and redemption attempts per minute per customer and per device',
  }),
  RATE_LIMIT_PER_MINUTE_PER_ADDRESS: Type.Integer({
    minimum: 1,
    maximum: 1_000_000,
    default: 300,
    description:
      'Attempts per minute per client address (IPv6: /64); higher than per customer, as households, offices and carrier NATs share one',
  }),
  LOCKOUT_AFTER_FAILURES_PER_ADDRESS: Type.Integer({
    minimum: 1,
    maximum: 1_000_000,
    default: 30,
    description: 'Consecutive failed attempts that lock a client address',
  }),
  LOCKOUT_AFTER_FAILURES: Type.Integer({
    minimum: 1,
    maximum: 10_000,
    default: 10,
    description:
      'Consecutive failed attempts (unknown, used, revoked, expired, not-yours codes; blocked) that lock a customer or a device',
  }),
  LOCKOUT_BASE_SECONDS: Type.Integer({
    minimum: 1,
    maximum: 86_400,
    default: 60,
    description: 'First lock; each further lock in a row doubles it',
  }),
  LOCKOUT_MAX_SECONDS: Type.Integer({
    minimum: 1,
    maximum: 604_800,
    default: 86_400,
    description: 'Longest lock',
  }),
  BODY_LIMIT_BYTES: Type.Integer({ minimum: 1024, maximum: 50 * 1024 * 1024, default: 1024 * 1024 }),
  RISK_DEFAULT_PACK: Type.Union([Type.Literal('on'), Type.Literal('off')], {
    default: 'on',
    description: 'Seed the shipped risk rules on start (`off`: start with no rules; seeded ones stay)',
  }),
  RISK_COUNTERS_MAX_KEYS: Type.Integer({
    minimum: 1_000,
    maximum: 10_000_000,
    default: DEFAULT_MAX_KEYS,
    description:
      'Keys the in-memory risk feature counters keep (~270 bytes each); past it the least recently written is dropped. Ignored with REDIS_URL',
  }),
  IDENTITY_SHARED_LIMIT: Type.Integer({
    minimum: 2,
    maximum: 1_000_000,
    default: 8,
    description:
      'An identifier (address, card, device, phone, email) already seen with this many other customers links nobody into a person: a pickup locker or an office, not one person',
  }),
  JSON_MAX_DEPTH: Type.Integer({
    minimum: 8,
    maximum: 512,
    default: 32,
    description:
      'Deepest nesting of objects and arrays a JSON body may have (the deepest request needs 4); deeper is a 400 before it is parsed',
  }),
  HTTP_MAX_HEADER_BYTES: Type.Integer({
    minimum: 4096,
    maximum: 65_536,
    default: 16_384,
    description: 'Largest request line plus headers in bytes; larger is a 431',
  }),
  HTTP_HEADERS_TIMEOUT_MS: Type.Integer({
    minimum: 100,
    maximum: 120_000,
    default: 5000,
    description:
      'Time a connection has to send a request line and headers (also a connection that sends nothing); then 408 and closed',
  }),
  HTTP_REQUEST_TIMEOUT_MS: Type.Integer({
    minimum: 100,
    maximum: 600_000,
    default: 8000,
    description: 'Time a request has to arrive whole, headers and body; then 408 and closed',
  }),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: Type.Integer({
    minimum: 100,
    maximum: 600_000,
    default: 5000,
    description: 'How long an idle keep-alive connection is kept open for its next request',
  }),
  HTTP_IDLE_TIMEOUT_MS: Type.Integer({
    minimum: 1000,
    maximum: 3_600_000,
    default: 60_000,
    description:
      'A connection on which nothing moves for this long, while a request is handled or an answer sent, is closed (a client that stops reading)',
  }),
  CORS_ORIGINS: Type.String({
    default: '',
    description:
      'Origins (e.g. https://shop.example) whose pages may call the storefront routes, comma-separated; empty = no CORS headers',
  }),
  DATABASE_STATEMENT_TIMEOUT_MS: Type.Integer({
    minimum: 0,
    maximum: 3_600_000,
    default: 5_000,
    description:
      'PostgreSQL cancels a statement running longer (statement_timeout), and the request answers 503; 0 = no limit. Migrations run without it. Ignored by PGlite',
  }),
  DATABASE_QUERY_TIMEOUT_MS: Type.Integer({
    minimum: 0,
    maximum: 3_600_000,
    default: 6_000,
    description:
      'The client gives up waiting for any answer from PostgreSQL and drops the connection (a frozen server or a cut network cannot cancel anything); 0 = no limit. Must exceed DATABASE_STATEMENT_TIMEOUT_MS. Ignored by PGlite',
  }),
  DATABASE_CONNECT_TIMEOUT_MS: Type.Integer({
    minimum: 100,
    maximum: 600_000,
    default: 3_000,
    description:
      'Opening a PostgreSQL connection, or waiting for a free one of the pool, before the request answers 503. Ignored by PGlite',
  }),
  APPROVALS: Type.Union([Type.Literal('on'), Type.Literal('off')], {
    default: 'on',
    description:
      'Two-person approval of risky campaign changes (the APPROVAL_* rules): such a change waits until a second key approves it',
  }),
  APPROVAL_PERCENT_BP_AT_LEAST: Type.Integer({
    minimum: 1,
    maximum: 10_000,
    default: 5_000,
    description: 'A live campaign with a percentage discount at or above this (basis points) needs approval',
  }),
  APPROVAL_FIXED_AMOUNT_AT_LEAST_MINOR: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: MAX_AMOUNT_MINOR,
      description:
        'A live campaign with a fixed amount off at or above this needs approval; unset = no such rule',
    }),
  ),
  APPROVAL_UNCAPPED: Type.Union([Type.Literal('on'), Type.Literal('off')], {
    default: 'on',
    description: 'A live campaign with neither a redemption cap nor a budget needs approval',
  }),
  APPROVAL_BUDGET_ABOVE_MINOR: Type.Integer({
    minimum: 0,
    maximum: MAX_AMOUNT_MINOR,
    default: 10_000_000,
    description: 'A live campaign with a budget above this (minor units, any currency) needs approval',
  }),
  APPROVAL_RAISE_FACTOR: Type.Number({
    minimum: 1,
    maximum: 1_000_000,
    default: 10,
    description:
      'Raising the redemption cap or budget of a live campaign to more than this many times its value (or removing it) needs approval',
  }),
  APPROVAL_EXPIRES_AFTER_HOURS: Type.Integer({
    minimum: 1,
    maximum: 24 * 90,
    default: 72,
    description: 'A pending approval not decided within this many hours expires',
  }),
  DETECTION: Type.Union([Type.Literal('on'), Type.Literal('off')], {
    default: 'on',
    description: 'Streaming detectors that raise alerts (docs/detection.md); off = none run on this node',
  }),
  DETECTION_LEASE_SECONDS: Type.Integer({
    minimum: 2,
    maximum: 600,
    default: 15,
    description:
      'One node with DETECTION=on runs the detectors, holding a lease in the database for this long and renewing it every third; another takes over when it lapses',
  }),
  DETECTION_INTERVAL_SECONDS: Type.Integer({
    minimum: 1,
    maximum: 3600,
    default: 60,
    description: 'Interval the rate, distinct and refusal detectors count in',
  }),
  DETECTION_WARMUP_INTERVALS: Type.Integer({
    minimum: 0,
    maximum: 10_000,
    default: 30,
    description: 'Intervals a new code, campaign or partner only learns its baseline before it may alert',
  }),
  DETECTION_TARGET_ARL: Type.Number({
    minimum: 10,
    maximum: 1e12,
    default: 100_000,
    description: 'Intervals between false alarms per key at least (sets the CUSUM threshold)',
  }),
  DETECTION_MAX_KEYS: Type.Integer({
    minimum: 100,
    maximum: 10_000_000,
    default: 100_000,
    description: 'Keys each detector holds; past it the least recently seen key is dropped',
  }),
  DETECTION_SNAPSHOT_SECONDS: Type.Integer({
    minimum: 1,
    maximum: 86_400,
    default: 60,
    description: "How often the detectors' state is saved to the database (and on shutdown)",
  }),
  DETECTION_ACTOR_WINDOW_HOURS: Type.Integer({
    minimum: 1,
    maximum: 720,
    default: 24,
    description: 'Window of the per person, device and address counts (rollbacks, small orders)',
  }),
  DETECTION_ROLLBACKS_PER_WINDOW: Type.Integer({
    minimum: 2,
    maximum: 1000,
    default: 3,
    description: 'Rollbacks by one person, device or address within the window that raise rollback_cycle',
  }),
  DETECTION_SMALL_ORDERS_PER_WINDOW: Type.Integer({
    minimum: 2,
    maximum: 1000,
    default: 5,
    description: 'Small orders by one person, device or address within the window that raise order_splitting',
  }),
  DETECTION_SMALL_ORDER_MINOR: Type.Integer({
    minimum: 0,
    maximum: MAX_AMOUNT_MINOR,
    default: 2500,
    description: 'An order whose subtotal is at most this (minor units) counts as small',
  }),
  DETECTION_NEW_ACCOUNT_HOURS: Type.Integer({
    minimum: 1,
    maximum: 8760,
    default: 24,
    description: 'An account younger than this counts as new (distinct new accounts per code or campaign)',
  }),
  RECONCILIATION_INTERVAL_MINUTES: Type.Integer({
    minimum: 0,
    maximum: 525_600,
    default: 1440,
    description:
      'Minutes between scheduled reconciliations (one node runs each); 0 = no schedule (run on demand only)',
  }),
  REMEDIATION_SWEEP_SECONDS: Type.Integer({
    minimum: 1,
    maximum: 3600,
    default: 15,
    description: 'How often each node ends the remediations past their expiry (each is ended by one node)',
  }),
  REVIEW_SLA_MINUTES: Type.Integer({
    minimum: 1,
    maximum: 43_200,
    default: 240,
    description: 'A case held for review longer than this is overdue (the console highlights it)',
  }),
  REVIEW_LOCK_MINUTES: Type.Integer({
    minimum: 1,
    maximum: 1440,
    default: 15,
    description: 'How long taking a review case holds it for the analyst before it is free again',
  }),
  CONSOLE_SESSION_IDLE_MINUTES: Type.Integer({
    minimum: 1,
    maximum: 1440,
    default: 30,
    description: 'A console session unused this long is over; the person signs in again',
  }),
  CONSOLE_SESSION_MAX_HOURS: Type.Integer({
    minimum: 1,
    maximum: 720,
    default: 12,
    description: 'A console session is over this long after sign-in, however busy',
  }),
  CONSOLE_LOCKOUT_AFTER_FAILURES: Type.Integer({
    minimum: 1,
    maximum: 100,
    default: 5,
    description: 'Failed console sign-ins in a row that lock the user for CONSOLE_LOCKOUT_MINUTES',
  }),
  CONSOLE_LOCKOUT_MINUTES: Type.Integer({
    minimum: 1,
    maximum: 1440,
    default: 15,
    description: 'How long a locked console user is refused, even with the right password',
  }),
  CONSOLE_PASSWORD_MIN_LENGTH: Type.Integer({
    minimum: 8,
    maximum: 128,
    default: 12,
    description: 'Shortest console password accepted (characters)',
  }),
  CONSOLE_PASSWORD_SCRYPT_LOG_N: Type.Integer({
    minimum: 14,
    maximum: 20,
    default: 17,
    description:
      'scrypt cost of new console password hashes as log2(N), r=8, p=1 (17 = 128 MiB per hash); raising it re-hashes each password at its next sign-in',
  }),
  CONSOLE_COOKIE_SECURE: Type.Union([Type.Literal('auto'), Type.Literal('always'), Type.Literal('never')], {
    default: 'auto',
    description:
      'Mark the session cookie Secure: auto = when the request came over TLS (directly, or per X-Forwarded-Proto from a TRUST_PROXY hop)',
  }),
  CONSOLE_DIR: Type.Optional(
    Type.String({
      minLength: 1,
      description: 'Folder of the built console served at /console; unset = dist/console of the package',
    }),
  ),
  METRICS_TOKEN: Type.Optional(
    Type.String({
      minLength: 32,
      description:
        'Bearer token GET /metrics requires; unset = /metrics answers only direct loopback connections (no proxy in between)',
    }),
  ),
  METRICS_PORT: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: 65535,
      description: 'Serve /metrics on this port of its own (on METRICS_HOST) instead of the API port',
    }),
  ),
  METRICS_HOST: Type.String({
    minLength: 1,
    default: '127.0.0.1',
    description: 'Interface of the METRICS_PORT listener',
  }),
  METRICS_CAMPAIGN_LABEL_LIMIT: Type.Integer({
    minimum: 1,
    maximum: 10_000,
    default: 100,
    description: 'Campaigns that get a campaign_id label of their own on this node; later ones share "other"',
  }),
  METRICS_DATABASE_READING_MS: Type.Integer({
    minimum: 0,
    maximum: 600_000,
    default: 5000,
    description: 'How long one reading of the database gauges serves scrapes (every node reads its own)',
  }),
  METRICS_TOP_N: Type.Integer({
    minimum: 1,
    maximum: 1000,
    default: 10,
    description: 'Codes and campaigns of the distinct-payment-instrument gauges (M5), the highest first',
  }),
  METRICS_TOP_N_READING_MS: Type.Integer({
    minimum: 0,
    maximum: 3_600_000,
    default: 300_000,
    description: 'How long one reading of the M5 top lists (a scan of 30 days of redemptions) serves scrapes',
  }),
  WEBHOOKS_ALLOW_HOSTS: Type.String({
    default: '',
    maxLength: 4096,
    description:
      'Webhook targets allowed although private, loopback or link-local: host names, addresses or CIDRs, comma-separated; unset = none',
  }),
  WEBHOOKS_TIMEOUT_MS: Type.Integer({
    minimum: 100,
    maximum: 60_000,
    default: 10_000,
    description: 'A webhook attempt (connect, send, answer) that takes longer is abandoned and retried',
  }),
  WEBHOOKS_MAX_RESPONSE_BYTES: Type.Integer({
    minimum: 0,
    maximum: 1_048_576,
    default: 65_536,
    description: "Bytes of a webhook receiver's answer read before the connection is closed",
  }),
  WEBHOOKS_POLL_MS: Type.Integer({
    minimum: 10,
    maximum: 60_000,
    default: 1000,
    description: 'How often each node looks for webhook deliveries that are due',
  }),
});

const SECRET_VARIABLES = new Set([
  'PROMOGUARD_SECRET',
  'DATABASE_URL',
  'REDIS_URL',
  'NATS_URL',
  'METRICS_TOKEN',
]);

/** Fastify's trustProxy: false, the nearest N hops, or the proxies' addresses. */
export function trustProxySetting(
  value: string,
): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (value === 'false') return false;
  if (/^[0-9]+$/.test(value)) {
    const hops = Number(value);
    return (_address, hop) => hop < hops;
  }
  return value
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
}

/**
 * CORS_ORIGINS as exact origins (`scheme://host[:port]`, as a browser sends them in `Origin`). A
 * wildcard or a path is refused: an allow-list that matched more than it names would let any page
 * drive a customer's token.
 */
export function corsOrigins(value: string): string[] {
  const origins = value
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
  for (const origin of origins) {
    let parsed: URL | null = null;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = null;
    }
    if (!parsed || !/^https?:$/.test(parsed.protocol) || parsed.origin !== origin || origin.includes('*')) {
      throw new ConfigError(
        `invalid configuration:\n  CORS_ORIGINS=${JSON.stringify(value)}: ${JSON.stringify(origin)} is not an exact origin such as https://shop.example (scheme, host and port only; no wildcard, path or trailing slash)`,
      );
    }
  }
  return origins;
}

export type Config = Readonly<Static<typeof EnvSchema>>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses the environment (or a given map, for tests). Unknown variables are ignored. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const input: Record<string, unknown> = {};
  for (const key of Object.keys(EnvSchema.properties)) {
    const raw = env[key];
    if (raw !== undefined && raw !== '') input[key] = raw;
  }
  const withDefaults = Value.Default(EnvSchema, input);
  const converted = Value.Convert(EnvSchema, withDefaults);
  const errors = [...Value.Errors(EnvSchema, converted)];
  if (errors.length > 0) {
    const lines = errors.map((e) => {
      const name = e.instancePath.replace(/^\//, '') || '(environment)';
      // Never echo a secret, or a URL that may carry a password.
      const shown = SECRET_VARIABLES.has(name) ? '(value hidden)' : JSON.stringify(env[name] ?? null);
      return `${name}=${shown}: ${e.message}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${[...new Set(lines)].join('\n  ')}`);
  }
  const config = converted as Config;
  // Settings that only make sense together, named here rather than by the component they would break.
  if (config.LOCKOUT_BASE_SECONDS > config.LOCKOUT_MAX_SECONDS) {
    throw new ConfigError(
      `invalid configuration:\n  LOCKOUT_BASE_SECONDS=${config.LOCKOUT_BASE_SECONDS}: must not exceed LOCKOUT_MAX_SECONDS=${config.LOCKOUT_MAX_SECONDS}`,
    );
  }
  if (config.HTTP_HEADERS_TIMEOUT_MS > config.HTTP_REQUEST_TIMEOUT_MS) {
    throw new ConfigError(
      `invalid configuration:\n  HTTP_HEADERS_TIMEOUT_MS=${config.HTTP_HEADERS_TIMEOUT_MS}: must not exceed HTTP_REQUEST_TIMEOUT_MS=${config.HTTP_REQUEST_TIMEOUT_MS}`,
    );
  }
  corsOrigins(config.CORS_ORIGINS);
  try {
    parseAllowList(config.WEBHOOKS_ALLOW_HOSTS);
  } catch (err) {
    throw new ConfigError(
      `invalid configuration:\n  WEBHOOKS_ALLOW_HOSTS=${JSON.stringify(config.WEBHOOKS_ALLOW_HOSTS)}: ${(err as Error).message}`,
    );
  }
  const statement = config.DATABASE_STATEMENT_TIMEOUT_MS;
  const query = config.DATABASE_QUERY_TIMEOUT_MS;
  // The server's cancel must come first: a client timeout drops the connection, a cancel keeps it.
  if (query > 0 && (statement === 0 || query <= statement)) {
    throw new ConfigError(
      `invalid configuration:\n  DATABASE_QUERY_TIMEOUT_MS=${query}: must exceed DATABASE_STATEMENT_TIMEOUT_MS=${statement} (or be 0)`,
    );
  }
  return Object.freeze(config);
}

export const CONFIG_DOCS = Object.entries(EnvSchema.properties).map(([name, schema]) => ({
  name,
  default: (schema as { default?: unknown }).default,
  description: (schema as { description?: string }).description ?? '',
}));

/** The two-person approval policy the configuration describes. */
export function approvalPolicy(config: Config): ApprovalPolicy {
  return {
    enabled: config.APPROVALS === 'on',
    percentBpAtLeast: config.APPROVAL_PERCENT_BP_AT_LEAST,
    fixedAmountAtLeastMinor: config.APPROVAL_FIXED_AMOUNT_AT_LEAST_MINOR ?? null,
    uncapped: config.APPROVAL_UNCAPPED === 'on',
    budgetAboveMinor: config.APPROVAL_BUDGET_ABOVE_MINOR,
    raiseFactor: config.APPROVAL_RAISE_FACTOR,
  };
}
