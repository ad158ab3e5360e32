/** Reading the audit trail. It is written by each service in the transaction of its change. */
import { type AuditEntry, type AuditFilter, listAudit } from '../store/audit.js';
import type { ServiceContext } from './context.js';

export class AuditService {
  constructor(private readonly ctx: ServiceContext) {}

  /** Newest first; a filter left out matches everything. */
  list(filter: AuditFilter): Promise<AuditEntry[]> {
    return listAudit(this.ctx.db, filter);
  }
}
