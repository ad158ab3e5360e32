/** CSV in and out for codes: the same columns for import and export, so an export re-imports. */
import { parse } from 'csv-parse/sync';
import { AppError } from '../errors.js';
import { CODE_EXPORT_COLUMNS } from '../store/codes.js';

/** One imported row, as the code service takes it. */
export interface CodeCsvRow {
  code: string;
  customerId: string | null;
  maxUses: number | null;
  partner: string | null;
  status: 'active' | 'revoked';
}

/** The store builds each line; the columns and their order are its. */
export const EXPORT_COLUMNS = CODE_EXPORT_COLUMNS;
const IMPORT_COLUMNS = new Set<string>([...EXPORT_COLUMNS, 'normalized', 'id']);

/**
 * Parse `code[,customer_id][,max_uses][,partner][,status]` with a header row. `status` keeps a revoked
 * code revoked, so an export re-imported never revives a leaked code; the other columns an export adds
 * (uses, created_at, …) are accepted and ignored. Any other column, a bad value or too many rows is a
 * validation error naming the line.
 */
export function parseCodeCsv(text: string, maxRows: number): CodeCsvRow[] {
  let records: Record<string, string>[];
  try {
    records = parse(text, { columns: true, skip_empty_lines: true, trim: true, bom: true, to: maxRows + 1 });
  } catch (err) {
    throw new AppError(
      'validation_failed',
      `the CSV cannot be read: ${(err as Error).message.slice(0, 200)}`,
    );
  }
  if (records.length > maxRows)
    throw new AppError('validation_failed', `at most ${maxRows} codes per import`);
  const first = records[0];
  if (!first) throw new AppError('validation_failed', 'the CSV has no rows');
  const unknown = Object.keys(first).filter((c) => !IMPORT_COLUMNS.has(c));
  if (!('code' in first) || unknown.length > 0) {
    throw new AppError(
      'validation_failed',
      `the CSV header must have a code column and only: ${[...IMPORT_COLUMNS].join(', ')}`,
    );
  }
  return records.map((r, i) => {
    const line = i + 2;
    const maxUses = r.max_uses === undefined || r.max_uses === '' ? null : Number(r.max_uses);
    if (maxUses !== null && (!Number.isInteger(maxUses) || maxUses < 1 || maxUses > 2_000_000_000)) {
      throw new AppError('validation_failed', `line ${line}: max_uses must be a whole number from 1`);
    }
    const customerId = r.customer_id ? r.customer_id : null;
    if (customerId !== null && customerId.length > 128) {
      throw new AppError('validation_failed', `line ${line}: customer_id is longer than 128 characters`);
    }
    const status = r.status === undefined || r.status === '' ? 'active' : r.status;
    if (status !== 'active' && status !== 'revoked') {
      throw new AppError('validation_failed', `line ${line}: status must be active or revoked`);
    }
    const partner = r.partner ? r.partner : null;
    if (partner !== null && !/^[A-Za-z0-9_.-]{1,64}$/.test(partner)) {
      throw new AppError('validation_failed', `line ${line}: partner must be 1-64 letters, digits, _ . -`);
    }
    return { code: r.code ?? '', customerId, maxUses, partner, status };
  });
}

/**
 * The export: a header, then the pages of lines as they come (streamed, never all in memory).
 * `onPage` hears how many codes each page held, for a progress bar.
 */
export async function* codesCsv(
  pages: AsyncIterable<{ text: string; count: number }>,
  onPage?: (count: number) => void,
): AsyncGenerator<string> {
  yield `${EXPORT_COLUMNS.join(',')}\n`;
  for await (const page of pages) {
    yield page.text;
    onPage?.(page.count);
  }
}
