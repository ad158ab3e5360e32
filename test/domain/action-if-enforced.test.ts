/** What a shadow rule would have done had it been enforced: the same resolution as a live decision. */
import { describe, expect, it } from 'vitest';
import { actionIfEnforced, type RiskAction, resolveDecision } from '../../src/domain/risk.js';

const base = { allowListed: false, stepUp: false, result: 'fired' as const };

describe('actionIfEnforced', () => {
  it('raises the decided action to the rule’s when the rule’s is more severe, and never lowers it', () => {
    expect(actionIfEnforced({ ...base, decided: 'allow', ruleAction: 'block' })).toBe('block');
    expect(actionIfEnforced({ ...base, decided: 'review', ruleAction: 'challenge' })).toBe('challenge');
    expect(actionIfEnforced({ ...base, decided: 'block', ruleAction: 'review' })).toBe('block');
    expect(actionIfEnforced({ ...base, decided: 'review', ruleAction: 'allow' })).toBe('review');
  });

  it('keeps an allow-listed decision allowed, a satisfied challenge satisfied, and ignores a failed rule', () => {
    expect(actionIfEnforced({ ...base, decided: 'allow', ruleAction: 'block', allowListed: true })).toBe(
      'allow',
    );
    expect(actionIfEnforced({ ...base, decided: 'allow', ruleAction: 'challenge', stepUp: true })).toBe(
      'allow',
    );
    expect(actionIfEnforced({ ...base, decided: 'allow', ruleAction: 'block', stepUp: true })).toBe('block');
    expect(actionIfEnforced({ ...base, decided: 'allow', ruleAction: 'block', result: 'error' })).toBe(
      'allow',
    );
  });

  it('fails an unevaluable rule open to review, as an enforced one would', () => {
    expect(actionIfEnforced({ ...base, decided: 'allow', ruleAction: 'block', result: 'unavailable' })).toBe(
      'review',
    );
  });

  it('agrees with resolveDecision on a decision with one more enforced rule', () => {
    const actions: RiskAction[] = ['allow', 'review', 'challenge', 'block'];
    for (const decided of actions)
      for (const ruleAction of actions)
        for (const stepUp of [false, true]) {
          // The decision as taken: one enforced rule that set `decided` (a satisfied challenge leaves allow).
          const live = {
            rule: { id: 'rule_a', name: 'a', reason: 'a', mode: 'enforce' as const, action: decided },
            result: 'fired' as const,
          };
          const was = resolveDecision({ outcomes: [live], allowListed: false, stepUp });
          const shadow = {
            rule: { id: 'rule_b', name: 'b', reason: 'b', mode: 'enforce' as const, action: ruleAction },
            result: 'fired' as const,
          };
          const both = resolveDecision({ outcomes: [live, shadow], allowListed: false, stepUp });
          expect(
            actionIfEnforced({
              decided: was.action,
              ruleAction,
              result: 'fired',
              allowListed: false,
              stepUp,
            }),
            `${decided} + ${ruleAction}, step-up ${stepUp}`,
          ).toBe(both.action);
        }
  });
});
