/**
 * The unused single-use codes the spread loads draw from. Codes are dealt round-robin over their
 * campaigns, so consecutive redemptions hit different campaigns (the "spread" the load is named for).
 * Every consumer (the limit, pgbench, HTTP) takes fresh codes from one pool: no code is redeemed twice.
 */

export class CodePool {
  constructor(rows) {
    const byCampaign = new Map();
    for (const row of rows) {
      let list = byCampaign.get(row.campaign_id);
      if (!list) {
        list = [];
        byCampaign.set(row.campaign_id, list);
      }
      list.push(row);
    }
    const lists = [...byCampaign.values()];
    const longest = Math.max(0, ...lists.map((l) => l.length));
    this.rows = [];
    for (let j = 0; j < longest; j++) {
      for (const list of lists) if (j < list.length) this.rows.push(list[j]);
    }
    this.campaigns = lists.length;
    this.index = 0;
  }

  next() {
    return this.index < this.rows.length ? this.rows[this.index++] : null;
  }

  take(n) {
    const taken = this.rows.slice(this.index, this.index + n);
    this.index += taken.length;
    return taken;
  }

  get remaining() {
    return this.rows.length - this.index;
  }
}

/** Set aside `count` codes for validations (spread over the campaigns); they are never redeemed. */
export function reserve(rows, count) {
  const pool = new CodePool(rows);
  return pool.take(count);
}
