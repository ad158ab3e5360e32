/**
 * Webhook endpoints (Standard Webhooks): created, changed, rotated and deleted by a key, each change
 * audited and evented in its transaction; their delivery log and redelivery. The signing secret is
 * shown once, at creation or rotation, and otherwise kept only encrypted (security/webhook-secrets.ts).
 * A URL is judged by the SSRF guard when it is saved and again before every attempt.
 */

import type { Kysely } from 'kysely';
import type { EventType } from '../domain/events.js';
import { AppError } from '../errors.js';
import { newId } from '../lib/ids.js';
import { type AllowList, checkTarget, type Resolver } from '../security/ssrf-guard.js';
import { newWebhookSecret, type WebhookSecretBox } from '../security/webhook-secrets.js';
import { insertAudit } from '../store/audit.js';
import { appendEvents } from '../store/outbox.js';
import type { Database, WebhookDeliveryStatus } from '../store/schema.js';
import { bumpStamp } from '../store/stamps.js';
import {
  attemptsOf,
  type EndpointChanges,
  findEndpoint,
  insertEndpoint,
  listDeliveries,
  listEndpoints,
  requeueDelivery,
  updateEndpoint,
  type WebhookAttemptRow,
  type WebhookDeliveryRow,
  type WebhookEndpointRow,
} from '../store/webhooks.js';
import type { Actor, ServiceContext } from './context.js';

/** How long the secret a rotation replaced keeps signing next to the new one. */
export const PREVIOUS_SECRET_VALID_MS = 24 * 3_600_000;

export interface WebhookEndpoint {
  id: string;
  url: string;
  description: string | null;
  eventTypes: string[];
  enabled: boolean;
  disabledReason: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface WebhookInput {
  url: string;
  eventTypes: (EventType | '*')[];
  description?: string | null;
  enabled?: boolean;
}

export type WebhookPatch = Partial<WebhookInput>;

export interface WebhookDelivery extends WebhookDeliveryRow {
  attemptLog: WebhookAttemptRow[];
}

export interface WebhookServiceOptions {
  allow: AllowList;
  resolve?: Resolver;
  /** The node's endpoint copy is out of date (this node changed an endpoint). */
  onEndpointsChanged(): void;
  /** A delivery is due now (redelivery): wake the sender. */
  onDeliveryDue(): void;
}

const endpointOf = (row: WebhookEndpointRow): WebhookEndpoint => ({
  id: row.id,
  url: row.url,
  description: row.description,
  eventTypes: row.event_types,
  enabled: row.enabled,
  disabledReason: row.disabled_reason,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

/** What events and the audit log say about an endpoint: never its secret. */
const publicFields = (e: WebhookEndpoint) => ({
  id: e.id,
  url: e.url,
  description: e.description,
  event_types: e.eventTypes,
  enabled: e.enabled,
});

export class WebhookService {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly box: WebhookSecretBox,
    private readonly options: WebhookServiceOptions,
  ) {}

  private async checkUrl(url: string): Promise<void> {
    const target = await checkTarget(url, this.options.allow, this.options.resolve);
    if (!target.ok) {
      throw new AppError('webhook_url_refused', `The webhook URL is refused: ${target.reason}`, {
        ...(target.addressClass ? { address_class: target.addressClass } : {}),
      });
    }
  }

  /** The endpoint and its signing secret, which is not shown again. */
  async create(input: WebhookInput, actor: Actor): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
    await this.checkUrl(input.url);
    const secret = newWebhookSecret();
    const now = this.ctx.clock.now();
    const endpoint = await this.ctx.db.transaction().execute(async (trx) => {
      const row = await insertEndpoint(trx, {
        id: newId('webhook', now.getTime()),
        url: input.url,
        description: input.description ?? null,
        event_types: [...new Set(input.eventTypes)],
        enabled: input.enabled ?? true,
        disabled_reason: null,
        secret_encrypted: this.box.seal(secret),
        created_by: actor,
        created_at: now,
        updated_at: now,
      });
      const created = endpointOf(row);
      await this.record(
        trx,
        actor,
        'webhook.created',
        created,
        null,
        { webhook: publicFields(created) },
        now,
      );
      return created;
    });
    this.changed();
    return { endpoint, secret };
  }

  async get(id: string): Promise<WebhookEndpoint> {
    const row = await findEndpoint(this.ctx.db, id);
    if (!row) throw new AppError('webhook_not_found');
    return endpointOf(row);
  }

  async list(limit: number, cursor?: string): Promise<WebhookEndpoint[]> {
    return (await listEndpoints(this.ctx.db, limit, cursor)).map(endpointOf);
  }

  async update(id: string, patch: WebhookPatch, actor: Actor): Promise<WebhookEndpoint> {
    if (patch.url !== undefined) await this.checkUrl(patch.url);
    const now = this.ctx.clock.now();
    const updated = await this.ctx.db.transaction().execute(async (trx) => {
      const before = await findEndpoint(trx, id);
      if (!before) throw new AppError('webhook_not_found');
      const changes: EndpointChanges = {};
      if (patch.url !== undefined) changes.url = patch.url;
      if (patch.description !== undefined) changes.description = patch.description;
      if (patch.eventTypes !== undefined) changes.event_types = [...new Set(patch.eventTypes)];
      if (patch.enabled !== undefined) {
        changes.enabled = patch.enabled;
        // Enabling again clears why the service had disabled it.
        if (patch.enabled) changes.disabled_reason = null;
      }
      const row = await updateEndpoint(trx, id, changes, now);
      if (!row) throw new AppError('webhook_not_found');
      const after = endpointOf(row);
      const was = publicFields(endpointOf(before));
      const is = publicFields(after);
      const diff = Object.fromEntries(
        (Object.keys(is) as (keyof typeof is)[])
          .filter((k) => JSON.stringify(was[k]) !== JSON.stringify(is[k]))
          .map((k) => [k, { from: was[k], to: is[k] }]),
      );
      await this.record(trx, actor, 'webhook.updated', after, null, { webhook: is, changes: diff }, now);
      return after;
    });
    this.changed();
    return updated;
  }

  /** Deleted endpoints receive nothing more; their delivery log is kept. */
  async delete(id: string, actor: Actor): Promise<void> {
    const now = this.ctx.clock.now();
    await this.ctx.db.transaction().execute(async (trx) => {
      const row = await updateEndpoint(trx, id, { deleted_at: now, enabled: false }, now);
      if (!row) throw new AppError('webhook_not_found');
      const deleted = endpointOf(row);
      await this.record(
        trx,
        actor,
        'webhook.deleted',
        deleted,
        null,
        { webhook: publicFields(deleted) },
        now,
      );
    });
    this.changed();
  }

  /**
   * A new signing secret, shown once. The old one keeps signing next to it for a day, so receivers
   * can move to the new secret without rejecting a message in between.
   */
  async rotateSecret(id: string, actor: Actor): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
    const secret = newWebhookSecret();
    const now = this.ctx.clock.now();
    const endpoint = await this.ctx.db.transaction().execute(async (trx) => {
      const before = await findEndpoint(trx, id);
      if (!before) throw new AppError('webhook_not_found');
      const row = await updateEndpoint(
        trx,
        id,
        {
          secret_encrypted: this.box.seal(secret),
          previous_secret_encrypted: before.secret_encrypted,
          previous_secret_expires_at: new Date(now.getTime() + PREVIOUS_SECRET_VALID_MS),
        },
        now,
      );
      if (!row) throw new AppError('webhook_not_found');
      const rotated = endpointOf(row);
      await this.record(trx, actor, 'webhook.secret_rotated', rotated, null, { webhook_id: id }, now);
      return rotated;
    });
    this.changed();
    return { endpoint, secret };
  }

  /** Newest first, each with its attempts. */
  async deliveries(
    id: string,
    limit: number,
    cursor: string | undefined,
    status: WebhookDeliveryStatus | undefined,
  ): Promise<WebhookDelivery[]> {
    await this.get(id);
    const rows = await listDeliveries(this.ctx.db, id, limit, cursor, status);
    const attempts = await attemptsOf(
      this.ctx.db,
      rows.map((r) => r.id),
    );
    return rows.map((r) => ({ ...r, attemptLog: attempts.get(r.id) ?? [] }));
  }

  /** Send a delivery again from the start of the schedule (the same webhook-id: receivers dedupe). */
  async redeliver(id: string, deliveryId: string, actor: Actor): Promise<WebhookDelivery> {
    await this.get(id);
    const now = this.ctx.clock.now();
    const row = await this.ctx.db.transaction().execute(async (trx) => {
      const requeued = await requeueDelivery(trx, id, deliveryId, now);
      if (!requeued) throw new AppError('webhook_delivery_not_found');
      await insertAudit(
        trx,
        {
          actor,
          action: 'webhook.redelivery_requested',
          targetId: deliveryId,
          reason: null,
          details: { webhook_id: id, event_id: requeued.event_id },
        },
        now,
      );
      return requeued;
    });
    this.options.onDeliveryDue();
    const attempts = await attemptsOf(this.ctx.db, [row.id]);
    return { ...row, attemptLog: attempts.get(row.id) ?? [] };
  }

  /** The audit entry and the event of an endpoint change, and the stamp every node's copy follows. */
  private async record(
    trx: Kysely<Database>,
    actor: Actor,
    action: EventType,
    endpoint: WebhookEndpoint,
    reason: string | null,
    details: Record<string, unknown>,
    now: Date,
  ): Promise<void> {
    await insertAudit(trx, { actor, action, targetId: endpoint.id, reason, details }, now);
    await appendEvents(
      trx,
      [{ type: action, aggregateId: endpoint.id, payload: { ...details, actor } }],
      now,
    );
    await bumpStamp(trx, 'webhooks');
  }

  private changed(): void {
    this.ctx.afterCommit();
    this.options.onEndpointsChanged();
  }
}
