/** The review queue: the inbox, one case with its decision and linked accounts, approve/reject with a label and a note. */
import { useState } from 'react';
import { ApiError, api, need, type Schema } from '../api.ts';
import { count, Empty, ErrorBox, money, Show, useLoad, when } from '../ui.tsx';

type Review = Schema<'Review'>;

function age(iso: string): string {
  const minutes = Math.floor((Date.now() - Date.parse(iso)) / 60_000);
  return minutes < 60 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function Case({ review, decided }: { review: Review; decided: () => void }) {
  const r = review.redemption;
  const [label, setLabel] = useState<'abuse' | 'legitimate'>('abuse');
  const [note, setNote] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  async function decide(verdict: 'approve' | 'reject') {
    setBusy(true);
    setError(null);
    try {
      const path = verdict === 'approve' ? '/v1/reviews/{id}/approve' : '/v1/reviews/{id}/reject';
      await need(
        api.POST(path, { params: { path: { id: r.id } }, body: { label, ...(note ? { note } : {}) } }),
      );
      decided();
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.problem : caught);
    } finally {
      setBusy(false);
    }
  }

  return (
    <article className="case" aria-label={`Case ${r.id}`}>
      <h2>
        Case <span className="mono">{r.id}</span>
      </h2>
      <dl className="facts">
        <div>
          <dt>Customer</dt>
          <dd className="mono">{r.customer_id}</dd>
        </div>
        <div>
          <dt>Discount</dt>
          <dd>
            {money(r.discount_minor, r.currency)} on {money(r.subtotal_minor, r.currency)}
          </dd>
        </div>
        <div>
          <dt>Waiting</dt>
          <dd>{age(r.created_at)}</dd>
        </div>
        <div>
          <dt>Order</dt>
          <dd className="mono">{r.order_id ?? '—'}</dd>
        </div>
      </dl>
      <h3>Decision: {review.decision?.action ?? 'none recorded'}</h3>
      {review.decision && review.decision.rules.length > 0 ? (
        <table className="list">
          <thead>
            <tr>
              <th scope="col">Rule</th>
              <th scope="col">Action</th>
              <th scope="col">Mode</th>
              <th scope="col">Reason</th>
              <th scope="col">Values</th>
            </tr>
          </thead>
          <tbody>
            {review.decision.rules.map((rule) => (
              <tr key={rule.id}>
                <td>{rule.name}</td>
                <td>{rule.action}</td>
                <td>{rule.mode}</td>
                <td>{rule.reason}</td>
                <td className="mono">
                  {Object.entries(rule.features)
                    .map(([k, v]) => `${k}=${v}`)
                    .join(', ')}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p className="muted">No rule fired.</p>
      )}
      <h3>Linked accounts</h3>
      {review.linked_accounts.customers.length <= 1 ? (
        <p className="muted">No other account shares an identifier with this customer.</p>
      ) : (
        <ul className="plain">
          {review.linked_accounts.shared_identifiers.map((s) => (
            <li key={`${s.type}:${s.hash}`}>
              {s.type} shared by <span className="mono">{s.customers.join(', ')}</span>
            </li>
          ))}
        </ul>
      )}
      <fieldset>
        <legend>Label</legend>
        <label className="inline">
          <input type="radio" name="label" checked={label === 'abuse'} onChange={() => setLabel('abuse')} />{' '}
          Abuse
        </label>
        <label className="inline">
          <input
            type="radio"
            name="label"
            checked={label === 'legitimate'}
            onChange={() => setLabel('legitimate')}
          />{' '}
          Legitimate
        </label>
      </fieldset>
      <label>
        Note
        <textarea value={note} onChange={(e) => setNote(e.target.value)} maxLength={1000} rows={2} />
      </label>
      <div className="actions">
        <button type="button" className="primary" disabled={busy} onClick={() => void decide('approve')}>
          Approve
        </button>
        <button type="button" className="danger" disabled={busy} onClick={() => void decide('reject')}>
          Reject (rolls it back)
        </button>
      </div>
      {error !== null && <ErrorBox error={error} />}
    </article>
  );
}

export function ReviewsPage() {
  const [version, setVersion] = useState(0);
  const [open, setOpen] = useState<string | null>(null);
  const loaded = useLoad(
    () => need(api.GET('/v1/reviews', { params: { query: { limit: 100 } } })),
    [version],
  );
  return (
    <section>
      <div className="page-head">
        <h1>Review queue</h1>
        {loaded.state === 'ready' && <span className="muted">{count(loaded.data.pending)} pending</span>}
        <button
          type="button"
          className="primary"
          disabled={loaded.state !== 'ready' || loaded.data.data.length === 0}
          onClick={() => loaded.state === 'ready' && setOpen(loaded.data.data[0]?.redemption.id ?? null)}
        >
          Next case
        </button>
      </div>
      <Show loaded={loaded}>
        {(page) => {
          const current = page.data.find((r) => r.redemption.id === open);
          if (page.data.length === 0) return <Empty>The queue is empty: nothing waits for a person.</Empty>;
          return (
            <div className="grid-2">
              <table className="list" aria-label="Inbox">
                <thead>
                  <tr>
                    <th scope="col">Customer</th>
                    <th scope="col">Discount</th>
                    <th scope="col">Age</th>
                    <th scope="col">Since</th>
                  </tr>
                </thead>
                <tbody>
                  {page.data.map((r) => (
                    <tr key={r.redemption.id} className={r.redemption.id === open ? 'selected' : ''}>
                      <td>
                        <button type="button" className="link" onClick={() => setOpen(r.redemption.id)}>
                          {r.redemption.customer_id}
                        </button>
                      </td>
                      <td>{money(r.redemption.discount_minor, r.redemption.currency)}</td>
                      <td>{age(r.redemption.created_at)}</td>
                      <td>{when(r.redemption.created_at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              {current ? (
                <Case
                  key={current.redemption.id}
                  review={current}
                  decided={() => {
                    setOpen(null);
                    setVersion((n) => n + 1);
                  }}
                />
              ) : (
                <Empty>Choose a case, or take the oldest with “Next case”.</Empty>
              )}
            </div>
          );
        }}
      </Show>
    </section>
  );
}
