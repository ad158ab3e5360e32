import { describe, expect, it } from 'vitest';
import type { AlertRaised } from '../../src/domain/alerts.js';
import {
  alertFromPayload,
  checkPolicy,
  chooseTarget,
  type PolicyInput,
  policiesFor,
  type RemediationPolicy,
  reachesCaller,
} from '../../src/domain/remediation.js';

function policy(overrides: Partial<RemediationPolicy>): RemediationPolicy {
  return {
    id: 'rpol_x',
    name: 'x',
    scope: { type: 'global', campaignId: null, partner: null },
    alertKind: 'redemption_spike',
    alertScopes: null,
    minSeverity: null,
    action: 'throttle',
    params: { per_minute: 10 },
    mode: 'enforce',
    durationSeconds: 600,
    enabled: true,
    pack: null,
    version: 1,
    createdBy: 'test',
    createdAt: new Date(0),
    updatedAt: new Date(0),
    ...overrides,
  };
}

function alert(overrides: Partial<AlertRaised> = {}): AlertRaised {
  return {
    alertId: 'alr_1',
    kind: 'redemption_spike',
    scope: { type: 'code', id: 'code_1', campaignId: 'cmp_1' },
    severity: 'ticket',
    observed: 50,
    expected: 2,
    intervalSeconds: 60,
    triggeredByEventId: null,
    triggeredAt: '',
    raisedAt: '',
    ...overrides,
  };
}

describe('which policies answer an alert', () => {
  it('takes only the most specific scope present: partner over campaign over global', () => {
    const global = policy({ id: 'rpol_g' });
    const campaign = policy({
      id: 'rpol_c',
      scope: { type: 'campaign', campaignId: 'cmp_1', partner: null },
    });
    const other = policy({ id: 'rpol_o', scope: { type: 'campaign', campaignId: 'cmp_2', partner: null } });
    const partner = policy({
      id: 'rpol_p',
      action: 'pause',
      params: {},
      scope: { type: 'partner', campaignId: null, partner: 'acme' },
    });
    const onCode = alert();
    expect(policiesFor([global, campaign, other, partner], onCode).map((p) => p.id)).toEqual(['rpol_c']);
    expect(policiesFor([global, other], onCode).map((p) => p.id)).toEqual(['rpol_g']);
    const onPartner = alert({ scope: { type: 'partner', id: 'acme', campaignId: 'cmp_1' } });
    expect(policiesFor([global, campaign, partner], onPartner).map((p) => p.id)).toEqual(['rpol_p']);
  });

  it('filters by kind, alert scope, severity and enabled', () => {
    const pageOnly = policy({ id: 'rpol_page', minSeverity: 'page' });
    const partnerOnly = policy({ id: 'rpol_partner', alertScopes: ['partner'] });
    const disabled = policy({ id: 'rpol_off', enabled: false });
    const wave = policy({ id: 'rpol_wave', alertKind: 'refusal_wave' });
    const all = [pageOnly, partnerOnly, disabled, wave];
    expect(policiesFor(all, alert())).toEqual([]);
    expect(policiesFor(all, alert({ severity: 'page' })).map((p) => p.id)).toEqual(['rpol_page']);
  });

  it('without alert_scopes, an action answers only the scopes it can act on', () => {
    const revoke = policy({ action: 'revoke_unredeemed', params: {} });
    expect(policiesFor([revoke], alert())).toEqual([]);
    expect(
      policiesFor([revoke], alert({ scope: { type: 'batch', id: 'bat_1', campaignId: 'cmp_1' } })),
    ).toHaveLength(1);
  });
});

describe('targets', () => {
  const ids = { campaignId: 'cmp_1', partner: 'acme', batchId: 'bat_1', codeId: 'code_1' };
  it('acts on the narrowest thing the action can change', () => {
    expect(chooseTarget('throttle', ids)?.type).toBe('campaign');
    expect(chooseTarget('require_step_up', ids)?.type).toBe('code');
    expect(chooseTarget('pause', ids)?.type).toBe('partner');
    expect(chooseTarget('pause', { ...ids, partner: null })?.type).toBe('campaign');
    expect(chooseTarget('revoke_unredeemed', { ...ids, partner: null })?.type).toBe('batch');
    expect(chooseTarget('tighten_guessing', ids)?.type).toBe('batch');
  });
  it('cannot act without a campaign, nor revoke without a partner or batch', () => {
    expect(chooseTarget('throttle', { ...ids, campaignId: null })).toBeNull();
    expect(chooseTarget('revoke_unredeemed', { ...ids, partner: null, batchId: null })).toBeNull();
  });
});

describe('who a step-up or review reaches', () => {
  const now = new Date('2026-06-01T12:00:00Z');
  it('guests are unauthenticated; accounts younger than the hours are new', () => {
    expect(reachesCaller(['unauthenticated'], 72, null, now)).toBe(true);
    expect(reachesCaller(['new_accounts'], 72, null, now)).toBe(false);
    expect(reachesCaller(['new_accounts'], 72, new Date('2026-05-31T12:00:00Z'), now)).toBe(true);
    expect(reachesCaller(['new_accounts'], 72, new Date('2026-05-01T12:00:00Z'), now)).toBe(false);
    expect(reachesCaller(['everyone'], 72, new Date('2020-01-01T00:00:00Z'), now)).toBe(true);
  });
});

describe('checking a policy', () => {
  const base: PolicyInput = {
    name: 'p',
    scope: { type: 'global', campaignId: null, partner: null },
    alertKind: 'refusal_wave',
    alertScopes: null,
    minSeverity: null,
    action: 'tighten_guessing',
    params: {},
    mode: 'enforce',
    durationSeconds: 600,
    enabled: true,
  };
  it('fills parameter defaults', () => {
    expect(checkPolicy(base)).toEqual({
      ok: true,
      value: { action: 'tighten_guessing', failuresPerCaller: 3, windowSeconds: 600 },
    });
  });
  it('refuses a policy that never expires', () => {
    expect(checkPolicy({ ...base, durationSeconds: 0 })).toMatchObject({
      ok: false,
      problem: 'duration_out_of_range',
    });
  });
});

describe('the alert.raised payload', () => {
  it('reads the snake_case wire form and refuses what is not an alert', () => {
    const a = alertFromPayload({
      alert_id: 'alr_9',
      kind: 'redemption_spike',
      scope: { type: 'partner', id: 'acme', campaign_id: 'cmp_1' },
      severity: 'page',
      observed: 9,
      expected: 1,
      interval_seconds: 60,
      triggered_by_event_id: 'evt_1',
      triggered_at: 't',
      raised_at: 'r',
    });
    expect(a).toMatchObject({
      alertId: 'alr_9',
      scope: { type: 'partner', id: 'acme', campaignId: 'cmp_1' },
      intervalSeconds: 60,
    });
    expect(
      alertFromPayload({ alert_id: 'x', kind: 'nonsense', scope: { type: 'code', id: 'c' } }),
    ).toBeNull();
    expect(alertFromPayload(null)).toBeNull();
  });
});
