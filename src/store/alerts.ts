/**
 * Alerts raised by the streaming detectors, and the detectors' saved state. Raising is one statement:
 * the alert row (unique per detector key and episode) and its `alert.raised` outbox event are written
 * together or not at all, so an event delivered again never makes a second alert nor a second event.
 */
import { type Kysely, sql } from 'kysely';
import type { AlertKind, AlertScopeType, AlertSeverity } from '../domain/alerts.js';
import { newId } from '../lib/ids.js';
import { insertAudit } from './audit.js';
import { appendEvents } from './outbox.js';
import { parseJsonResult, toDate, toDateOrNull } from './rows.js';
import type { AlertStatus, AlertsTable, Database } from './schema.js';

export interface AlertRecord {
  id: string;
  kind: AlertKind;
  detectorKey: string;
  episodeStart: Date;
  scope: {
    type: AlertScopeType;
    id: string;
    campaignId: string | null;
    partner: string | null;
    batchId: string | null;
  };
  severity: AlertSeverity;
  status: AlertStatus;
  observed: number;
  expected: number;
  intervalSeconds: number;
  details: Record<string, unknown>;
  triggeredByEventId: string | null;
  triggeredAt: Date;
  raisedAt: Date;
  acknowledgedAt: Date | null;
  acknowledgedBy: string | null;
  resolvedAt: Date | null;
  resolvedBy: string | null;
}

type AlertRow = { [K in keyof AlertsTable]: unknown };

function alertFromRow(row: AlertRow): AlertRecord {
  return {
    id: row.id as string,
    kind: row.kind as AlertKind,
    detectorKey: row.detector_key as string,
    episodeStart: toDate(row.episode_start as Date),
    scope: {
      type: row.scope_type as AlertScopeType,
      id: row.scope_id as string,
      campaignId: (row.campaign_id as string | null) ?? null,
      partner: (row.partner as string | null) ?? null,
      batchId: (row.batch_id as string | null) ?? null,
    },
    severity: row.severity as AlertSeverity,
    status: row.status as AlertStatus,
    observed: Number(row.observed),
    expected: Number(row.expected),
    intervalSeconds: Number(row.interval_seconds),
    details: parseJsonResult<Record<string, unknown> | null>(row.details) ?? {},
    triggeredByEventId: (row.triggered_by_event_id as string | null) ?? null,
    triggeredAt: toDate(row.triggered_at as Date),
    raisedAt: toDate(row.raised_at as Date),
    acknowledgedAt: toDateOrNull(row.acknowledged_at as Date | null),
    acknowledgedBy: (row.acknowledged_by as string | null) ?? null,
    resolvedAt: toDateOrNull(row.resolved_at as Date | null),
    resolvedBy: (row.resolved_by as string | null) ?? null,
  };
}

export interface NewAlert {
  kind: AlertKind;
  detectorKey: string;
  episodeStart: Date;
  scope: AlertRecord['scope'];
  severity: AlertSeverity;
  observed: number;
  expected: number;
  intervalSeconds: number;
  details: Record<string, unknown>;
  triggeredByEventId: string | null;
  triggeredAt: Date;
}

/** The `alert.raised` payload (the contract of domain/alerts.ts, in snake_case as every payload). */
export function alertRaisedPayload(
  a: Omit<AlertRecord, 'status' | 'acknowledgedAt' | 'acknowledgedBy' | 'resolvedAt' | 'resolvedBy'>,
) {
  return {
    alert_id: a.id,
    kind: a.kind,
    scope: {
      type: a.scope.type,
      id: a.scope.id,
      ...(a.scope.campaignId !== null ? { campaign_id: a.scope.campaignId } : {}),
      ...(a.scope.partner !== null ? { partner: a.scope.partner } : {}),
      ...(a.scope.batchId !== null ? { batch_id: a.scope.batchId } : {}),
    },
    severity: a.severity,
    observed: a.observed,
    expected: a.expected,
    interval_seconds: a.intervalSeconds,
    triggered_by_event_id: a.triggeredByEventId,
    triggered_at: a.triggeredAt.toISOString(),
    raised_at: a.raisedAt.toISOString(),
    detector_key: a.detectorKey,
    episode_start: a.episodeStart.toISOString(),
  };
}

/**
 * Writes the alert and its `alert.raised` event in one statement, unless this detector key's episode
 * already has its alert. Returns the new alert, or null when it existed.
 */
export async function raiseAlert(
  db: Kysely<Database>,
  alert: NewAlert,
  now: Date,
): Promise<AlertRecord | null> {
  const id = newId('alert', now.getTime());
  const record: AlertRecord = {
    id,
    ...alert,
    status: 'open',
    raisedAt: now,
    acknowledgedAt: null,
    acknowledgedBy: null,
    resolvedAt: null,
    resolvedBy: null,
  };
  const payload = JSON.stringify(alertRaisedPayload(record));
  const result = await sql<{ aggregate_id: string }>`
    WITH raised AS (
      INSERT INTO alerts (id, kind, detector_key, episode_start, scope_type, scope_id, campaign_id, partner,
                          batch_id, severity, observed, expected, interval_seconds, details,
                          triggered_by_event_id, triggered_at, raised_at)
      VALUES (${id}, ${alert.kind}, ${alert.detectorKey}, ${alert.episodeStart}, ${alert.scope.type},
              ${alert.scope.id}, ${alert.scope.campaignId}, ${alert.scope.partner}, ${alert.scope.batchId},
              ${alert.severity}, ${alert.observed}, ${alert.expected}, ${alert.intervalSeconds},
              ${JSON.stringify(alert.details)}::jsonb, ${alert.triggeredByEventId}, ${alert.triggeredAt}, ${now})
      ON CONFLICT (detector_key, episode_start) DO NOTHING
      RETURNING id
    )
    INSERT INTO outbox (id, type, aggregate_id, payload, created_at)
    SELECT ${newId('event', now.getTime())}, 'alert.raised', id, ${payload}::jsonb, ${now} FROM raised
    RETURNING aggregate_id`.execute(db);
  return result.rows.length > 0 ? record : null;
}

export async function findAlert(db: Kysely<Database>, id: string): Promise<AlertRecord | null> {
  const row = await db.selectFrom('alerts').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? alertFromRow(row as AlertRow) : null;
}

export interface AlertFilter {
  limit: number;
  /** Alerts older than this id (the cursor of the page before). */
  before?: string | undefined;
  status?: AlertStatus | undefined;
  kind?: AlertKind | undefined;
  campaignId?: string | undefined;
  /** Raised at or after this instant. */
  since?: Date | undefined;
}

/** Newest first. */
export async function listAlerts(db: Kysely<Database>, f: AlertFilter): Promise<AlertRecord[]> {
  let query = db.selectFrom('alerts').selectAll().orderBy('id', 'desc').limit(f.limit);
  if (f.before !== undefined) query = query.where('id', '<', f.before);
  if (f.status !== undefined) query = query.where('status', '=', f.status);
  if (f.kind !== undefined) query = query.where('kind', '=', f.kind);
  if (f.campaignId !== undefined) query = query.where('campaign_id', '=', f.campaignId);
  if (f.since !== undefined) query = query.where('raised_at', '>=', f.since);
  const rows = await query.execute();
  return rows.map((r) => alertFromRow(r as AlertRow));
}

export type AlertTransition = 'acknowledge' | 'resolve';

/**
 * Acknowledges or resolves an alert, with its audit entry, in one transaction. Repeats are harmless
 * (the alert is returned as it is); acknowledging a resolved alert is refused. Null when unknown.
 */
export async function transitionAlert(
  db: Kysely<Database>,
  id: string,
  to: AlertTransition,
  actor: string,
  reason: string | null,
  now: Date,
): Promise<AlertRecord | 'resolved' | null> {
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .selectFrom('alerts')
      .selectAll()
      .where('id', '=', id)
      .forUpdate()
      .executeTakeFirst();
    if (!row) return null;
    const current = alertFromRow(row as AlertRow);
    const target: AlertStatus = to === 'acknowledge' ? 'acknowledged' : 'resolved';
    if (current.status === target) return current;
    if (current.status === 'resolved') return 'resolved';
    const updated = await trx
      .updateTable('alerts')
      .set(
        to === 'acknowledge'
          ? { status: 'acknowledged', acknowledged_at: now, acknowledged_by: actor }
          : { status: 'resolved', resolved_at: now, resolved_by: actor },
      )
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    await insertAudit(
      trx,
      {
        actor,
        action: `alert.${target}`,
        targetId: id,
        reason,
        details: { kind: current.kind, scope: current.scope, from: current.status, to: target },
      },
      now,
    );
    await appendEvents(
      trx,
      [
        {
          type: to === 'acknowledge' ? 'alert.acknowledged' : 'alert.resolved',
          aggregateId: id,
          payload: { alert_id: id, kind: current.kind, from: current.status, to: target, actor, reason },
        },
      ],
      now,
    );
    return alertFromRow(updated as AlertRow);
  });
}

/** The saved state of each named detector, or an empty map. */
export async function loadSnapshots(db: Kysely<Database>): Promise<Map<string, string>> {
  const rows = await db.selectFrom('detector_snapshots').select(['name', 'snapshot']).execute();
  return new Map(rows.map((r) => [r.name, r.snapshot]));
}

export async function saveSnapshots(
  db: Kysely<Database>,
  snapshots: Map<string, string>,
  now: Date,
): Promise<void> {
  if (snapshots.size === 0) return;
  await db
    .insertInto('detector_snapshots')
    .values([...snapshots].map(([name, snapshot]) => ({ name, snapshot, saved_at: now })))
    .onConflict((oc) =>
      oc.column('name').doUpdateSet({
        snapshot: (eb) => eb.ref('excluded.snapshot'),
        saved_at: (eb) => eb.ref('excluded.saved_at'),
      }),
    )
    .execute();
}
