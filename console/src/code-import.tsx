/**
 * Importing a CSV of chosen codes into a campaign. The API takes an import all or nothing; the file is
 * sent in slices of rows so a large file shows its progress, and a slice the API refuses for some of
 * its rows (a code already taken, a bad value) is sent again without them: every good row is imported
 * and every bad one is listed with its line and the API's reason.
 */
import { type ChangeEvent, type FormEvent, useState } from 'react';
import { ApiError, api, problemMessage } from './api.ts';
import { count, ErrorBox } from './ui.tsx';

const SLICE = 1000;
/** Retries of one slice at most: each drops at least one row, so a slice always ends. */
const MAX_RETRIES = 50;

export interface CsvRecord {
  /** The line the record starts on (the header is line 1). */
  line: number;
  raw: string;
  fields: string[];
}

/** Splits CSV text into records (RFC 4180: quoted fields may hold commas, quotes and line breaks). */
export function splitCsv(text: string): { header: string; columns: string[]; records: CsvRecord[] } {
  const source = text.replace(/^\uFEFF/, '');
  const records: CsvRecord[] = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let start = 0;
  let line = 1;
  let startLine = 1;
  const end = (at: number) => {
    fields.push(field);
    const raw = source.slice(start, at).replace(/\r$/, '');
    if (raw.trim() !== '') records.push({ line: startLine, raw, fields: fields.map((f) => f.trim()) });
    fields = [];
    field = '';
  };
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (quoted) {
      if (c === '"' && source[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else {
        if (c === '\n') line++;
        field += c;
      }
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      fields.push(field);
      field = '';
    } else if (c === '\n') {
      end(i);
      line++;
      start = i + 1;
      startLine = line;
    } else if (c !== '\r') field += c;
  }
  end(source.length);
  const [head, ...rest] = records;
  return { header: head?.raw ?? '', columns: head?.fields ?? [], records: rest };
}

interface RowError {
  line: number;
  code: string;
  message: string;
}

interface Progress {
  done: number;
  of: number;
  imported: number;
}

type ProblemExtras = {
  code?: string;
  detail?: string;
  errors?: { index?: number; message?: string }[];
  codes?: string[];
};

/** The rows of `slice` the API named in its refusal, with why; empty when it named none. */
function refusedRows(problem: ProblemExtras, slice: CsvRecord[], codeColumn: number): Map<number, string> {
  const out = new Map<number, string>();
  if (problem.code === 'code_already_exists' && Array.isArray(problem.codes)) {
    const taken = new Set(problem.codes);
    slice.forEach((r, i) => {
      if (taken.has(r.fields[codeColumn] ?? '')) out.set(i, 'already exists (in this or another campaign)');
    });
  } else if (problem.code === 'validation_failed' && Array.isArray(problem.errors)) {
    for (const e of problem.errors) {
      if (typeof e.index === 'number' && e.index < slice.length) out.set(e.index, e.message ?? 'refused');
    }
  } else if (problem.code === 'validation_failed' && typeof problem.detail === 'string') {
    // The CSV reader names a line of what it was sent: the header is line 1, the slice's rows follow.
    const m = /^line (\d+): (.*)$/.exec(problem.detail);
    const index = m ? Number(m[1]) - 2 : -1;
    if (m && index >= 0 && index < slice.length) out.set(index, m[2] as string);
  }
  return out;
}

export function ImportCodes({ campaignId, done }: { campaignId: string; done: () => void }) {
  const [text, setText] = useState('');
  const [fileName, setFileName] = useState<string | null>(null);
  const [progress, setProgress] = useState<Progress | null>(null);
  const [rowErrors, setRowErrors] = useState<RowError[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [running, setRunning] = useState(false);

  async function choose(event: ChangeEvent<HTMLInputElement>) {
    const file = event.target.files?.[0];
    if (!file) return;
    setFileName(file.name);
    setText(await file.text());
  }

  async function run(event: FormEvent) {
    event.preventDefault();
    setError(null);
    setRowErrors([]);
    const { header, columns, records } = splitCsv(text);
    const codeColumn = columns.indexOf('code');
    if (codeColumn < 0) {
      setError(
        new Error(
          'The first line must name the columns, with a code column: code,customer_id,max_uses,partner,status',
        ),
      );
      return;
    }
    if (records.length === 0) {
      setError(new Error('The file has a header but no codes.'));
      return;
    }
    setRunning(true);
    const errors: RowError[] = [];
    let imported = 0;
    let handled = 0;
    setProgress({ done: 0, of: records.length, imported: 0 });
    try {
      for (let i = 0; i < records.length; i += SLICE) {
        let slice = records.slice(i, i + SLICE);
        for (let attempt = 0; slice.length > 0; attempt++) {
          const {
            data,
            error: problem,
            response,
          } = await api.POST('/v1/campaigns/{id}/codes', {
            params: { path: { id: campaignId } },
            body: { csv: `${header}\n${slice.map((r) => r.raw).join('\n')}\n` },
          });
          if (data && 'imported' in data) {
            imported += data.imported;
            break;
          }
          const refused =
            attempt < MAX_RETRIES
              ? refusedRows((problem ?? {}) as ProblemExtras, slice, codeColumn)
              : new Map();
          if (refused.size === 0) {
            // Not about rows (the campaign, the session, the service): stop and say so.
            throw new ApiError(problem, response.status);
          }
          for (const [index, message] of refused) {
            const r = slice[index] as CsvRecord;
            errors.push({ line: r.line, code: r.fields[codeColumn] ?? '', message });
          }
          slice = slice.filter((_, index) => !refused.has(index));
        }
        handled = Math.min(i + SLICE, records.length);
        setProgress({ done: handled, of: records.length, imported });
        setRowErrors([...errors].sort((a, b) => a.line - b.line));
      }
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.problem : caught);
    } finally {
      setRunning(false);
      if (imported > 0) done();
    }
  }

  return (
    <form className="form compact" onSubmit={run} aria-label="Import codes">
      <h2>Import codes from CSV</h2>
      <p className="muted">
        A header line, then one code a line:{' '}
        <span className="mono">code,customer_id,max_uses,partner,status</span> (only code is needed; a code
        without max_uses is public). An export of codes imports as it is.
      </p>
      <div className="row">
        <label>
          CSV file
          <input type="file" accept=".csv,text/csv" onChange={(e) => void choose(e)} />
        </label>
        <button type="submit" className="primary" disabled={running || text.trim() === ''}>
          {running ? 'Importing…' : 'Import'}
        </button>
      </div>
      <label>
        Or paste the CSV
        <textarea
          rows={4}
          value={text}
          onChange={(e) => {
            setText(e.target.value);
            setFileName(null);
          }}
          spellCheck={false}
          className="mono"
        />
      </label>
      {fileName && <p className="muted">Read {fileName}.</p>}
      {progress && (
        <p className="progress-line" role="status">
          <progress max={progress.of} value={progress.done} aria-label="Rows imported" />
          {count(progress.done)} of {count(progress.of)} rows read: {count(progress.imported)} codes imported
          {rowErrors.length > 0 && `, ${count(rowErrors.length)} rows refused`}
        </p>
      )}
      {rowErrors.length > 0 && (
        <table className="list" aria-label="Refused rows">
          <thead>
            <tr>
              <th scope="col">Line</th>
              <th scope="col">Code</th>
              <th scope="col">Why</th>
            </tr>
          </thead>
          <tbody>
            {rowErrors.slice(0, 200).map((e) => (
              <tr key={e.line}>
                <td className="num">{e.line}</td>
                <td className="mono details">{e.code}</td>
                <td>{e.message}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {rowErrors.length > 200 && <p className="muted">The first 200 refused rows are shown.</p>}
      {error !== null && (
        <>
          <ErrorBox error={error} />
          {progress && progress.imported > 0 && (
            <p className="muted">
              The {count(progress.imported)} codes imported before this stay; import the rest again after
              fixing it ({problemMessage(error)}).
            </p>
          )}
        </>
      )}
    </form>
  );
}
