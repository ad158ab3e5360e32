/**
 * Operator mode: the server's own operating loop runs while the simulator drives it — the streaming
 * detectors raise alerts, remediation policies act on them (throttles, step-ups, holds, paused
 * partners, tightened guessing limits) and the traffic still under way meets them. Before the run every
 * enabled policy in `dry_run` is switched to `enforce` (and switched back afterwards, so a server driven
 * with `--url` keeps its configuration); after it, the alerts raised and the remediations applied
 * during the run are read back through the API, each with its time from the start of the traffic.
 */
import type { SimHttpClient } from './http-client.js';

export interface OperatorPolicy {
  id: string;
  name: string;
  alertKind: string;
  action: string;
  /** The mode the policy had before the run. */
  mode: string;
  /** Switched from dry_run to enforce for the run (and back after it). */
  switched: boolean;
}

export interface OperatorAlert {
  id: string;
  kind: string;
  severity: string;
  scope: { type: string; id: string; campaignId: string | null; partner: string | null };
  observed: number;
  expected: number;
  /** Milliseconds from the start of the traffic (server clock). */
  atMs: number;
}

export interface OperatorRemediation {
  id: string;
  policyId: string;
  alertId: string;
  alertKind: string;
  action: string;
  target: {
    type: string;
    campaignId: string | null;
    partner: string | null;
    batchId: string | null;
    codeId: string | null;
  };
  dryRun: boolean;
  status: string;
  change: Record<string, unknown>;
  /** Milliseconds from the start of the traffic (server clock). */
  atMs: number;
  endedAtMs: number | null;
}

export interface OperatorReport {
  policies: OperatorPolicy[];
  alerts: OperatorAlert[];
  remediations: OperatorRemediation[];
}

type Json = Record<string, unknown>;

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const strOrNull = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v ?? 0));

/** Switches every enabled dry-run policy to enforce; returns the policies as they were. */
export async function enforcePolicies(http: SimHttpClient): Promise<OperatorPolicy[]> {
  const listed = await http.expect(200, 'GET', '/v1/remediation-policies', { bucket: 'setup' });
  const policies: OperatorPolicy[] = [];
  for (const p of (listed['data'] as Json[] | undefined) ?? []) {
    const dryRun = p['enabled'] === true && p['mode'] === 'dry_run';
    if (dryRun) {
      await http.expect(200, 'PATCH', `/v1/remediation-policies/${str(p['id'])}`, {
        bucket: 'setup',
        body: { mode: 'enforce' },
      });
    }
    policies.push({
      id: str(p['id']),
      name: str(p['name']),
      alertKind: str(p['alert_kind']),
      action: str(p['action']),
      mode: str(p['mode']),
      switched: dryRun,
    });
  }
  return policies;
}

/** Puts the policies switched by enforcePolicies back into dry_run. */
export async function restorePolicies(
  http: SimHttpClient,
  policies: readonly OperatorPolicy[],
): Promise<void> {
  for (const p of policies.filter((x) => x.switched)) {
    await http.request('PATCH', `/v1/remediation-policies/${p.id}`, {
      bucket: 'setup',
      body: { mode: 'dry_run' },
    });
  }
}

/** Every item of a newest-first cursor list, up to the first one older than `sinceMs`. */
async function listSince(http: SimHttpClient, route: string, at: string, sinceMs: number): Promise<Json[]> {
  const items: Json[] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 100; pages++) {
    const sep = route.includes('?') ? '&' : '?';
    const page = await http.expect(
      200,
      'GET',
      `${route}${sep}limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      { bucket: 'operator' },
    );
    const data = (page['data'] as Json[] | undefined) ?? [];
    for (const item of data) {
      if (new Date(str(item[at])).getTime() < sinceMs) return items;
      items.push(item);
    }
    cursor = strOrNull(page['next_cursor']);
    if (!cursor) break;
  }
  return items;
}

/** The alerts raised and remediations applied since `t0ServerMs` (the traffic's start), oldest first. */
export async function collectOperatorReport(
  http: SimHttpClient,
  policies: OperatorPolicy[],
  sinceServerMs: number,
  t0ServerMs: number,
): Promise<OperatorReport> {
  const rel = (iso: unknown) => Math.round(new Date(str(iso)).getTime() - t0ServerMs);
  const since = new Date(sinceServerMs).toISOString();
  const alerts = (
    await listSince(http, `/v1/alerts?since=${encodeURIComponent(since)}`, 'raised_at', sinceServerMs)
  ).map((a): OperatorAlert => {
    const scope = (a['scope'] as Json | undefined) ?? {};
    return {
      id: str(a['id']),
      kind: str(a['kind']),
      severity: str(a['severity']),
      scope: {
        type: str(scope['type']),
        id: str(scope['id']),
        campaignId: strOrNull(scope['campaign_id']),
        partner: strOrNull(scope['partner']),
      },
      observed: num(a['observed']),
      expected: num(a['expected']),
      atMs: rel(a['raised_at']),
    };
  });
  const remediations = (await listSince(http, '/v1/remediations', 'applied_at', sinceServerMs)).map(
    (r): OperatorRemediation => {
      const target = (r['target'] as Json | undefined) ?? {};
      return {
        id: str(r['id']),
        policyId: str(r['policy_id']),
        alertId: str(r['alert_id']),
        alertKind: str(r['alert_kind']),
        action: str(r['action']),
        target: {
          type: str(target['type']),
          campaignId: strOrNull(target['campaign_id']),
          partner: strOrNull(target['partner']),
          batchId: strOrNull(target['batch_id']),
          codeId: strOrNull(target['code_id']),
        },
        dryRun: r['dry_run'] === true,
        status: str(r['status']),
        change: (r['change'] as Record<string, unknown> | undefined) ?? {},
        atMs: rel(r['applied_at']),
        endedAtMs: r['ended_at'] ? rel(r['ended_at']) : null,
      };
    },
  );
  alerts.sort((a, b) => a.atMs - b.atMs);
  remediations.sort((a, b) => a.atMs - b.atMs);
  return { policies, alerts, remediations };
}
