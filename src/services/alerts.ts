/** Alerts as people work them: list, read, acknowledge, resolve (audited, evented). */
import type { AlertKind } from '../domain/alerts.js';
import { AppError } from '../errors.js';
import {
  type AlertRecord,
  type AlertTransition,
  findAlert,
  listAlerts,
  transitionAlert,
} from '../store/alerts.js';
import type { AlertStatus } from '../store/schema.js';
import type { Actor, ServiceContext } from './context.js';

export class AlertService {
  constructor(private readonly ctx: ServiceContext) {}

  list(filter: {
    limit: number;
    before?: string | undefined;
    status?: AlertStatus | undefined;
    kind?: AlertKind | undefined;
    campaignId?: string | undefined;
    since?: Date | undefined;
  }): Promise<AlertRecord[]> {
    return listAlerts(this.ctx.db, filter);
  }

  async get(id: string): Promise<AlertRecord> {
    const alert = await findAlert(this.ctx.db, id);
    if (!alert) throw new AppError('alert_not_found');
    return alert;
  }

  acknowledge(id: string, actor: Actor, reason: string | null): Promise<AlertRecord> {
    return this.transition(id, 'acknowledge', actor, reason);
  }

  resolve(id: string, actor: Actor, reason: string | null): Promise<AlertRecord> {
    return this.transition(id, 'resolve', actor, reason);
  }

  private async transition(
    id: string,
    to: AlertTransition,
    actor: Actor,
    reason: string | null,
  ): Promise<AlertRecord> {
    const result = await transitionAlert(this.ctx.db, id, to, actor, reason, this.ctx.clock.now());
    if (result === null) throw new AppError('alert_not_found');
    if (result === 'resolved') throw new AppError('alert_resolved');
    this.ctx.afterCommit();
    return result;
  }
}
