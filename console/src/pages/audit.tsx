/** The audit log: who changed what, filtered by actor, resource, action prefix and period. */
import { type FormEvent, useState } from 'react';
import { api, need } from '../api.ts';
import { Empty, Show, useLoad, when } from '../ui.tsx';

interface Filters {
  actor: string;
  resource: string;
  action: string;
  from: string;
  to: string;
}

const none: Filters = { actor: '', resource: '', action: '', from: '', to: '' };

export function AuditPage() {
  const [draft, setDraft] = useState(none);
  const [filters, setFilters] = useState(none);
  const loaded = useLoad(() => {
    const query: Record<string, string | number> = { limit: 100 };
    if (filters.actor) query.actor = filters.actor;
    if (filters.resource) query.resource = filters.resource;
    if (filters.action) query.action = filters.action;
    if (filters.from) query.from = new Date(filters.from).toISOString();
    if (filters.to) query.to = new Date(filters.to).toISOString();
    return need(api.GET('/v1/audit', { params: { query } }));
  }, [filters]);
  const set = (key: keyof Filters, value: string) => setDraft((d) => ({ ...d, [key]: value }));
  const apply = (event: FormEvent) => {
    event.preventDefault();
    setFilters(draft);
  };

  return (
    <section>
      <h1>Audit log</h1>
      <form className="filters" onSubmit={apply} aria-label="Filters">
        <label>
          Actor
          <input
            value={draft.actor}
            onChange={(e) => set('actor', e.target.value)}
            placeholder="usr_… or key id"
          />
        </label>
        <label>
          Resource
          <input
            value={draft.resource}
            onChange={(e) => set('resource', e.target.value)}
            placeholder="cmp_…"
          />
        </label>
        <label>
          Action starts with
          <input
            value={draft.action}
            onChange={(e) => set('action', e.target.value)}
            placeholder="campaign."
          />
        </label>
        <label>
          From
          <input type="datetime-local" value={draft.from} onChange={(e) => set('from', e.target.value)} />
        </label>
        <label>
          To
          <input type="datetime-local" value={draft.to} onChange={(e) => set('to', e.target.value)} />
        </label>
        <button type="submit" className="primary">
          Filter
        </button>
      </form>
      <Show loaded={loaded}>
        {(page) =>
          page.data.length === 0 ? (
            <Empty>No entries match these filters.</Empty>
          ) : (
            <table className="list" aria-label="Audit entries">
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Actor</th>
                  <th scope="col">Action</th>
                  <th scope="col">Resource</th>
                  <th scope="col">Reason</th>
                  <th scope="col">Details</th>
                </tr>
              </thead>
              <tbody>
                {page.data.map((e) => (
                  <tr key={e.id}>
                    <td>{when(e.created_at)}</td>
                    <td className="mono">{e.actor}</td>
                    <td>{e.action}</td>
                    <td className="mono">{e.resource}</td>
                    <td>{e.reason ?? '—'}</td>
                    <td className="mono small details">{JSON.stringify(e.details)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Show>
    </section>
  );
}
