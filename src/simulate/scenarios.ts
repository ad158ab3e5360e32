/** Every scenario the simulator knows, honest first, and the selection `--scenarios` makes. */
import type { Scenario } from './scenario.js';
import { ABUSE_SCENARIOS } from './scenarios-abuse.js';
import { HONEST_SCENARIOS } from './scenarios-honest.js';
import { TAKEOVER_ABUSE_SCENARIOS, TAKEOVER_HONEST_SCENARIOS } from './scenarios-takeover.js';

export const SCENARIOS: readonly Scenario[] = [
  ...HONEST_SCENARIOS,
  ...TAKEOVER_HONEST_SCENARIOS,
  ...ABUSE_SCENARIOS,
  ...TAKEOVER_ABUSE_SCENARIOS,
];

/** The scenarios named (all when none), in the registry's order; unknown names are an error. */
export function selectScenarios(names: readonly string[] | null | undefined): Scenario[] {
  if (!names || names.length === 0) return [...SCENARIOS];
  const known = new Map(SCENARIOS.map((s) => [s.name, s]));
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length > 0) {
    throw new Error(
      `unknown scenario${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; known: ${[...known.keys()].join(', ')}`,
    );
  }
  const wanted = new Set(names);
  return SCENARIOS.filter((s) => wanted.has(s.name));
}
