/**
 * Risk rules are CEL expressions (https://cel.dev) over what is known at decision time. The variables
 * and their fields are declared here, once: the type checker refuses a rule that reads an undeclared
 * feature or field, compares a count with a string, or does not yield a bool — when the rule is saved,
 * not when it silently never fires. The same declaration converts stored decision inputs back into
 * CEL values, so a backtest evaluates a rule over exactly what a live decision saw.
 *
 * Evaluator: @marcbachmann/cel-js (zero dependencies, type-checking Environment API). Its `matches()`
 * uses JavaScript regular expressions; every string a rule can read is bounded in length (the user
 * agent to 256 characters) so a rule's pattern runs over short input.
 */
import { Environment } from '@marcbachmann/cel-js';
import { FEATURES } from '../domain/risk.js';

type CelFieldType = 'int' | 'double' | 'string' | 'bool' | 'map<string, string>';
type Schema = Record<string, Record<string, CelFieldType>>;

/** The variables a rule reads. Absent optional fields are tested with `has(...)`. */
export const RULE_VARIABLES: Schema = {
  features: Object.fromEntries(FEATURES.map((f) => [f.name, f.type])) as Record<string, CelFieldType>,
  request: {
    operation: 'string',
    channel: 'string',
    user_agent: 'string',
    has_device: 'bool',
    has_payment: 'bool',
    has_email: 'bool',
    has_phone: 'bool',
    has_shipping_address: 'bool',
    has_ip: 'bool',
  },
  order: { currency: 'string', subtotal_minor: 'int', shipping_minor: 'int', discount_minor: 'int' },
  campaign: { id: 'string', name: 'string', discount_type: 'string', metadata: 'map<string, string>' },
  code: { kind: 'string', bound: 'bool', partner: 'string', max_uses: 'int' },
  customer: { id: 'string', segment: 'string', region: 'string', first_order: 'bool' },
  /** Conversions only: what is converted, and the balance before it. */
  loyalty: {
    program_id: 'string',
    points: 'int',
    amount_minor: 'int',
    currency: 'string',
    balance: 'int',
  },
};

/** What a decision saw, as stored JSON (numbers, strings, booleans; absent = unknown). */
export type DecisionInputs = Record<string, Record<string, unknown>>;

export const MAX_EXPRESSION_LENGTH = 4_000;
export const USER_AGENT_LIMIT = 256;

/**
 * One class per variable, registered as its CEL type (named as cel-js names a variable's schema type,
 * `$features` …): a value toActivation builds with it is that type already. A plain object would be
 * wrapped into a typed copy on every read of every rule — a dozen copies per decision.
 */
const VARIABLE_TYPES: Record<string, new () => Record<string, unknown>> = Object.fromEntries(
  Object.keys(RULE_VARIABLES).map((name) => [name, class {} as new () => Record<string, unknown>]),
);

const environment = (() => {
  const env = new Environment({ limits: { maxAstNodes: 1_000, maxDepth: 50 } });
  for (const [name, schema] of Object.entries(RULE_VARIABLES)) {
    const ctor = VARIABLE_TYPES[name] as new () => Record<string, unknown>;
    env.registerType(`$${name}`, { schema, ctor, convert: (v: object) => Object.assign(new ctor(), v) });
    env.registerVariable(name, `$${name}`);
  }
  return env;
})();

export interface CompiledRule {
  evaluate(activation: Record<string, unknown>): boolean;
  /** The features the expression reads: if one cannot be computed, the rule fails open to review. */
  features: string[];
  /**
   * The variables an expression reads (`order`, `code`, `loyalty`, …): a rule reading one an operation
   * does not have (a wallet read has no order) does not apply to it.
   */
  variables: string[];
}

/** Where in the expression a refusal points: offsets in UTF-16 code units, line and column from 1. */
export interface SourcePosition {
  offset: number;
  end: number;
  line: number;
  column: number;
}

export type CompileResult =
  | { ok: true; rule: CompiledRule }
  | { ok: false; message: string; position?: SourcePosition };

/** The span a cel-js error names (its node's start and end), as a position in `expression`. */
function positionOf(err: unknown, expression: string): SourcePosition | undefined {
  const node = (err as { node?: { start?: unknown; end?: unknown } } | null)?.node;
  const start = node?.start;
  if (typeof start !== 'number' || !Number.isInteger(start) || start < 0 || start > expression.length) {
    return undefined;
  }
  const rawEnd = typeof node?.end === 'number' ? node.end : start;
  const end = Math.min(Math.max(rawEnd, start), expression.length);
  const before = expression.slice(0, start);
  const line = before.split('\n').length;
  const column = start - (before.lastIndexOf('\n') + 1) + 1;
  return { offset: start, end, line, column };
}

/** A refusal with its position, when the checker named one. */
function refusal(err: unknown, expression: string): CompileResult {
  const position = positionOf(err, expression);
  return position ? { ok: false, message: firstLine(err), position } : { ok: false, message: firstLine(err) };
}

/** The first line of a cel-js message, without the source excerpt it appends. */
function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return (text.split('\n')[0] ?? text).trim();
}

type AstNode = { op?: unknown; args?: unknown };
const isFeaturesVariable = (node: unknown): boolean =>
  (node as AstNode | null)?.op === 'id' && (node as AstNode).args === 'features';

/**
 * The features an expression reads: `features.x` and `features['x']` read x; the map used any other
 * way (a computed key, `dyn(features)`, …) may read any feature, so it counts as reading all of them.
 * Missing one here would let the rule fail at run time (no fire) instead of failing open to review.
 */
function featuresRead(ast: unknown, into: Set<string>): void {
  if (Array.isArray(ast)) {
    for (const item of ast) featuresRead(item, into);
    return;
  }
  if (ast === null || typeof ast !== 'object') return;
  const node = ast as AstNode;
  if ((node.op === '.' || node.op === '[]') && Array.isArray(node.args) && isFeaturesVariable(node.args[0])) {
    const key = node.args[1] as unknown;
    if (node.op === '.' && typeof key === 'string') {
      into.add(key);
      return;
    }
    const literal = key as AstNode | null;
    if (node.op === '[]' && literal?.op === 'value' && typeof literal.args === 'string') {
      into.add(literal.args);
      return;
    }
  }
  if (isFeaturesVariable(node)) {
    for (const f of FEATURES) into.add(f.name);
    return;
  }
  featuresRead(node.args, into);
}

/** The declared variables an expression names (comprehension variables are not declared ones). */
function variablesRead(ast: unknown, into: Set<string>): void {
  if (Array.isArray(ast)) {
    for (const item of ast) variablesRead(item, into);
    return;
  }
  if (ast === null || typeof ast !== 'object') return;
  const node = ast as AstNode;
  if (node.op === 'id' && typeof node.args === 'string' && node.args in RULE_VARIABLES) {
    into.add(node.args);
    return;
  }
  variablesRead(node.args, into);
}

/** Parse and type-check; a refusal names what is wrong (e.g. `No such key: device_count`). */
export function compileRule(expression: string): CompileResult {
  if (expression.length > MAX_EXPRESSION_LENGTH) {
    return { ok: false, message: `an expression has at most ${MAX_EXPRESSION_LENGTH} characters` };
  }
  let checked: { valid: boolean; type?: string; error?: unknown };
  try {
    checked = environment.check(expression);
  } catch (err) {
    return refusal(err, expression);
  }
  if (!checked.valid) return refusal(checked.error, expression);
  if (checked.type !== 'bool') {
    return { ok: false, message: `a rule must yield a bool, this expression yields ${checked.type}` };
  }
  const program = environment.parse(expression);
  const features = new Set<string>();
  featuresRead(program.ast, features);
  const variables = new Set<string>();
  variablesRead(program.ast, variables);
  return {
    ok: true,
    rule: {
      features: [...features].sort(),
      variables: [...variables].sort(),
      evaluate: (activation) => program(activation) === true,
    },
  };
}

/** The declared fields of each variable, as lists: toActivation runs on every decision. */
const VARIABLE_FIELDS = Object.entries(RULE_VARIABLES).map(
  ([variable, schema]) => [variable, Object.entries(schema)] as const,
);

/** Stored inputs → CEL values: declared ints become BigInt, undeclared fields are dropped. */
export function toActivation(inputs: DecisionInputs): Record<string, Record<string, unknown>> {
  const activation: Record<string, Record<string, unknown>> = {};
  for (const [variable, fields] of VARIABLE_FIELDS) {
    const source = inputs[variable] ?? {};
    const value = new (VARIABLE_TYPES[variable] as new () => Record<string, unknown>)();
    for (const [field, type] of fields) {
      const raw = source[field];
      if (raw === undefined || raw === null) continue;
      if (type === 'int') {
        if (typeof raw === 'number' && Number.isSafeInteger(raw)) value[field] = BigInt(raw);
      } else if (type === 'double') {
        if (typeof raw === 'number' && Number.isFinite(raw)) value[field] = raw;
      } else if (type === 'string') {
        if (typeof raw === 'string') value[field] = raw;
      } else if (type === 'bool') {
        if (typeof raw === 'boolean') value[field] = raw;
      } else if (typeof raw === 'object' && !Array.isArray(raw)) {
        value[field] = Object.fromEntries(
          Object.entries(raw as Record<string, unknown>).filter(([, v]) => typeof v === 'string'),
        );
      }
    }
    activation[variable] = value;
  }
  return activation;
}
