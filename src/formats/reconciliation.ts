/** A reconciliation report for finance (CSV: one row per mismatch, amounts in minor units) and for a terminal. */
import { stringify } from 'csv-stringify/sync';
import type { MismatchItem, Reconciliation } from '../store/reconciliation.js';

export const RECONCILIATION_COLUMNS = [
  'kind',
  'entity',
  'currency',
  'expected',
  'actual',
  'difference',
] as const;

/** `campaign_id=cmp_…; code_id=code_…`: the ids that name the mismatched thing, in one cell. */
export function entityText(entity: Record<string, string>): string {
  return Object.entries(entity)
    .map(([key, value]) => `${key}=${value}`)
    .join('; ');
}

/**
 * A spreadsheet runs a cell starting with = + - @ (or a tab or CR before them) as a formula; ids come
 * from callers (customer ids), so text cells are quoted out of that. Numbers stay numbers.
 */
export function safeText(text: string): string {
  return /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
}

export async function* reconciliationCsv(pages: AsyncIterable<MismatchItem[]>): AsyncGenerator<string> {
  yield stringify([[...RECONCILIATION_COLUMNS]]);
  for await (const items of pages) {
    yield stringify(
      items.map((i) => [
        i.kind,
        safeText(entityText(i.entity)),
        i.currency ?? '',
        i.expected,
        i.actual,
        i.difference,
      ]),
    );
  }
}

const UNIT_NAMES = { minor: 'minor units', count: 'rows', points: 'points' } as const;

const signed = (n: number) => (n > 0 ? `+${n}` : String(n));

/**
 * The report for a terminal: its status, a table of every kind (zeros included, so a clean run shows
 * what was checked) and the first mismatches, each naming its entity and the difference in its unit.
 */
export function reconciliationTable(r: Reconciliation, firstItems: MismatchItem[]): string {
  const lines: string[] = [];
  const summary = r.summary;
  const checked = summary
    ? ` — ${summary.checked.campaigns} campaigns, ${summary.checked.points_accounts} points accounts`
    : '';
  lines.push(`reconciliation ${r.id}: ${r.status}${r.failure ? ` (${r.failure})` : ''}${checked}`);
  if (summary) {
    const rows = Object.entries(summary.kinds).map(([kind, k]) => {
      const byCurrency = Object.entries(k.by_currency ?? {}).filter(([, n]) => n !== 0);
      const difference =
        byCurrency.length > 0 ? byCurrency.map(([c, n]) => `${n} ${c}`).join(', ') : String(k.difference);
      return [kind, UNIT_NAMES[k.unit], String(k.rows), difference];
    });
    const table = [['kind', 'unit', 'rows', 'difference'], ...rows];
    const widths = [0, 1, 2].map((col) => Math.max(...table.map((row) => (row[col] as string).length)));
    for (const row of table) {
      lines.push(
        `  ${(row[0] as string).padEnd(widths[0] as number)}  ${(row[1] as string).padEnd(widths[1] as number)}  ${(row[2] as string).padStart(widths[2] as number)}  ${row[3]}`,
      );
    }
    lines.push(`  mismatched rows: ${summary.mismatched_rows}`);
  }
  if (firstItems.length > 0) {
    const total = summary?.mismatched_rows ?? firstItems.length;
    lines.push(
      `mismatches (${firstItems.length} of ${total} shown; all of them: --out file.csv, or GET /v1/reconciliations/${r.id}):`,
    );
    for (const i of firstItems) {
      const unit = i.currency ? `${i.currency} minor units` : UNIT_NAMES[i.unit];
      lines.push(
        `  ${i.kind}  ${entityText(i.entity)}  expected ${i.expected}, actual ${i.actual}, difference ${signed(i.difference)} ${unit}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
