/** Finance's read of discount spend: by campaign and day, week or month, from the ledger. */
import { AppError } from '../errors.js';
import { type SpendPeriod, type SpendRow, spendByPeriod } from '../store/spend.js';
import type { ServiceContext } from './context.js';

const DAY_MS = 86_400_000;
/** The longest window per period: a report stays a bounded read of the ledger. */
const MAX_WINDOW_DAYS: Record<SpendPeriod, number> = { day: 400, week: 3 * 366, month: 10 * 366 };
/** Rows in one answer at most; a wider report asks for one campaign or a larger period. */
export const MAX_SPEND_ROWS = 20_000;

export class SpendService {
  constructor(private readonly ctx: ServiceContext) {}

  async report(q: {
    from?: Date | undefined;
    to?: Date | undefined;
    period: SpendPeriod;
    campaignId?: string | undefined;
  }): Promise<{ from: Date; to: Date; rows: SpendRow[] }> {
    const to = q.to ?? this.ctx.clock.now();
    const from = q.from ?? new Date(to.getTime() - 30 * DAY_MS);
    const span = to.getTime() - from.getTime();
    if (span <= 0) throw new AppError('validation_failed', 'querystring/to must be after from');
    if (span > MAX_WINDOW_DAYS[q.period] * DAY_MS) {
      throw new AppError(
        'validation_failed',
        `a ${q.period} report covers at most ${MAX_WINDOW_DAYS[q.period]} days; choose a larger period or a shorter window`,
      );
    }
    const rows = await spendByPeriod(this.ctx.db, {
      from,
      to,
      period: q.period,
      campaignId: q.campaignId,
      limit: MAX_SPEND_ROWS + 1,
    });
    if (rows.length > MAX_SPEND_ROWS) {
      throw new AppError(
        'validation_failed',
        `the report has more than ${MAX_SPEND_ROWS} rows; choose one campaign, a larger period or a shorter window`,
      );
    }
    return { from, to, rows };
  }
}
