/**
 * Configuration comes from the environment, is checked once at start-up and then frozen. A bad value
 * stops the process with a message naming the variable; nothing secret has a default.
 */
import { type Static, Type } from 'typebox';
import { Value } from 'typebox/value';
import { DEFAULT_MAX_KEYS } from './limits/window-counters.js';
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
  RECONCILIATION_INTERVAL_MINUTES: Type.Integer({
    minimum: 0,
    maximum: 525_600,
    default: 1440,
    description:
      'Minutes between scheduled reconciliations (one node runs each); 0 = no schedule (run on demand only)',
  }),
});

const SECRET_VARIABLES = new Set(['PROMOGUARD_SECRET', 'DATABASE_URL', 'REDIS_URL']);

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
  return Object.freeze(config);
}

export const CONFIG_DOCS = Object.entries(EnvSchema.properties).map(([name, schema]) => ({
  name,
  default: (schema as { default?: unknown }).default,
  description: (schema as { description?: string }).description ?? '',
}));
