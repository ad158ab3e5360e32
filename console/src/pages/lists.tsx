/**
 * Block and allow lists: the active entries (kept only as keyed hashes, so a value is shown once, when
 * it is added), adding one with a reason and an optional expiry (an `ip` may be a CIDR range), and
 * taking one off its list.
 */
import { type FormEvent, useState } from 'react';
import { ApiError, api, fieldErrors, need, problemMessage, type Schema } from '../api.ts';
import { Empty, ErrorBox, Show, useLoad, when } from '../ui.tsx';
import '../rules.css';

type Entry = Schema<'ListEntry'>;
type ListName = Entry['list'];
type IdentifierType = Entry['type'];

const TYPES: IdentifierType[] = ['customer', 'email', 'phone', 'device', 'payment', 'address', 'ip'];
const PLACEHOLDERS: Record<IdentifierType, string> = {
  customer: 'cus_…',
  email: 'name@example.com',
  phone: '+81 90 1234 5678',
  device: 'device id',
  payment: 'payment fingerprint',
  address: 'shipping address',
  ip: '203.0.113.7 or 203.0.113.0/24',
};

interface Draft {
  list: ListName;
  type: IdentifierType;
  value: string;
  reason: string;
  expires: string;
}

const EMPTY: Draft = { list: 'block', type: 'email', value: '', reason: '', expires: '' };

function FieldError({ errors, field }: { errors: Record<string, string>; field: string }) {
  const message = errors[field];
  return message ? (
    <span className="field-error" role="alert">
      {message}
    </span>
  ) : null;
}

function AddEntry({ added }: { added: (entry: Entry, value: string) => void }) {
  const [draft, setDraft] = useState<Draft>(EMPTY);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const set = <K extends keyof Draft>(key: K, value: Draft[K]) => setDraft((d) => ({ ...d, [key]: value }));
  const errors = fieldErrors(error);

  async function add(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const entry = await need(
        api.POST('/v1/lists', {
          body: {
            list: draft.list,
            type: draft.type,
            value: draft.value,
            reason: draft.reason,
            expires_at: draft.expires ? new Date(draft.expires).toISOString() : null,
          },
        }),
      );
      added(entry, draft.value);
      setDraft((d) => ({ ...EMPTY, list: d.list, type: d.type }));
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.problem : caught);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="form compact list-entry-form" onSubmit={add} aria-labelledby="add-entry-title">
      <h2 id="add-entry-title">Add an entry</h2>
      <div className="row">
        <label>
          List
          <select value={draft.list} onChange={(e) => set('list', e.target.value as ListName)}>
            <option value="block">block</option>
            <option value="allow">allow</option>
          </select>
        </label>
        <label>
          Identifier type
          <select value={draft.type} onChange={(e) => set('type', e.target.value as IdentifierType)}>
            {TYPES.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </label>
        <label>
          Value
          <input
            value={draft.value}
            onChange={(e) => set('value', e.target.value)}
            placeholder={PLACEHOLDERS[draft.type]}
            required
            maxLength={320}
            autoComplete="off"
          />
          <FieldError errors={errors} field="body/value" />
        </label>
      </div>
      <div className="row">
        <label>
          Reason
          <input
            value={draft.reason}
            onChange={(e) => set('reason', e.target.value)}
            required
            maxLength={500}
          />
          <FieldError errors={errors} field="body/reason" />
        </label>
        <label>
          Expires (optional)
          <input
            type="datetime-local"
            value={draft.expires}
            onChange={(e) => set('expires', e.target.value)}
          />
          <FieldError errors={errors} field="body/expires_at" />
        </label>
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Adding…' : 'Add entry'}
        </button>
      </div>
      {draft.list === 'allow' && (
        <p className="muted small">An allowed identifier skips rate limits and lockouts, never a cap.</p>
      )}
      {error !== null && Object.keys(errors).length === 0 && <ErrorBox error={error} />}
    </form>
  );
}

function EntryRow({ entry, removed }: { entry: Entry; removed: (entry: Entry) => void }) {
  const [confirming, setConfirming] = useState(false);
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const expired = entry.expires_at !== null && new Date(entry.expires_at).getTime() <= Date.now();

  async function remove(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      removed(
        await need(
          api.POST('/v1/lists/{entry}/remove', {
            params: { path: { entry: entry.id } },
            body: reason.trim() ? { reason: reason.trim() } : {},
          }),
        ),
      );
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.problem : caught);
      setBusy(false);
    }
  }

  return (
    <tr data-entry={entry.id}>
      <td>
        <span className={`badge ${entry.list === 'block' ? 'badge-failed' : 'badge-ok'}`}>{entry.list}</span>
      </td>
      <td>{entry.type}</td>
      <td>
        {entry.network ? (
          <span className="mono">{entry.network}</span>
        ) : (
          <span className="mono small hash" title={entry.identifier_hash}>
            {entry.identifier_hash}
          </span>
        )}
      </td>
      <td className="details">{entry.reason}</td>
      <td className="mono small">{entry.created_by}</td>
      <td>{when(entry.created_at)}</td>
      <td>{entry.expires_at ? `${when(entry.expires_at)}${expired ? ' (expired)' : ''}` : 'never'}</td>
      <td>
        {confirming ? (
          <form onSubmit={remove} aria-label={`Remove entry ${entry.id}`} className="row">
            <label>
              Reason for removal (optional)
              <input value={reason} onChange={(e) => setReason(e.target.value)} maxLength={500} />
            </label>
            <button type="submit" className="danger" disabled={busy}>
              {busy ? 'Removing…' : 'Confirm removal'}
            </button>
            <button type="button" onClick={() => setConfirming(false)} disabled={busy}>
              Cancel
            </button>
            {error !== null && <span className="field-error">{problemMessage(error)}</span>}
          </form>
        ) : (
          <button type="button" onClick={() => setConfirming(true)} aria-label={`Remove entry ${entry.id}`}>
            Remove
          </button>
        )}
      </td>
    </tr>
  );
}

export function ListsPage() {
  const [list, setList] = useState<ListName | ''>('');
  const [type, setType] = useState<IdentifierType | ''>('');
  const [version, setVersion] = useState(0);
  const [more, setMore] = useState<Entry[]>([]);
  const [cursor, setCursor] = useState<number | null>(null);
  const [notice, setNotice] = useState('');
  const [moreError, setMoreError] = useState<unknown>(null);

  const query = () => ({ limit: 50, ...(list ? { list } : {}), ...(type ? { type } : {}) });
  const loaded = useLoad(async () => {
    const page = await need(api.GET('/v1/lists', { params: { query: query() } }));
    setMore([]);
    setCursor(page.next_cursor);
    return page;
  }, [list, type, version]);

  async function loadMore() {
    if (cursor === null) return;
    setMoreError(null);
    try {
      const page = await need(api.GET('/v1/lists', { params: { query: { ...query(), cursor } } }));
      setMore((m) => [...m, ...page.data]);
      setCursor(page.next_cursor);
    } catch (caught) {
      setMoreError(caught instanceof ApiError ? caught.problem : caught);
    }
  }

  return (
    <section>
      <h1>Block and allow lists</h1>
      <p className="muted">
        Values are kept only as keyed hashes: an entry shows its hash (or its IP range), never the value.
      </p>
      <AddEntry
        added={(entry, value) => {
          setNotice(`Added ${value} to the ${entry.list} list (entry ${entry.id}).`);
          setVersion((n) => n + 1);
        }}
      />
      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      <h2>Active entries</h2>
      <fieldset className="filters">
        <legend className="visually-hidden">Filter the entries</legend>
        <label>
          Show list
          <select value={list} onChange={(e) => setList(e.target.value as ListName | '')}>
            <option value="">all</option>
            <option value="block">block</option>
            <option value="allow">allow</option>
          </select>
        </label>
        <label>
          Show type
          <select value={type} onChange={(e) => setType(e.target.value as IdentifierType | '')}>
            <option value="">all</option>
            {TYPES.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </label>
      </fieldset>
      <Show loaded={loaded}>
        {(page) => {
          const entries = [...page.data, ...more];
          return entries.length === 0 ? (
            <Empty>No active entries{list || type ? ' match these filters' : ''}.</Empty>
          ) : (
            <>
              <table className="list" aria-label="List entries">
                <thead>
                  <tr>
                    <th scope="col">List</th>
                    <th scope="col">Type</th>
                    <th scope="col">Hash or range</th>
                    <th scope="col">Reason</th>
                    <th scope="col">Added by</th>
                    <th scope="col">Added</th>
                    <th scope="col">Expires</th>
                    <th scope="col">
                      <span className="visually-hidden">Remove</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {entries.map((entry) => (
                    <EntryRow
                      key={entry.id}
                      entry={entry}
                      removed={(gone) => {
                        setNotice(`Removed entry ${gone.id} from the ${gone.list} list.`);
                        setVersion((n) => n + 1);
                      }}
                    />
                  ))}
                </tbody>
              </table>
              {cursor !== null && (
                <button type="button" onClick={() => void loadMore()}>
                  Load more
                </button>
              )}
              {moreError !== null && <ErrorBox error={moreError} />}
            </>
          );
        }}
      </Show>
    </section>
  );
}
