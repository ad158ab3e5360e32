/**
 * Two-person approval: campaign changes waiting for a second person, each with what it changes and
 * which policy rules it trips; approve (the change applies now) or reject, with a note for the audit log.
 */
import { useState } from 'react';
import { ApiError, api, need, problemMessage, type Schema } from '../api.ts';
import { Link } from '../router.tsx';
import { Empty, Show, useLoad, when } from '../ui.tsx';

type Approval = Schema<'Approval'>;
type Status = Approval['status'];

const RULE_TEXT: Record<string, string> = {
  percentage_at_least: 'a large percentage off',
  fixed_amount_at_least: 'a large amount off',
  uncapped: 'neither a cap nor a budget',
  budget_above: 'a large budget',
  cap_raised: 'the redemption cap raised or removed',
  budget_raised: 'the budget raised or removed',
};

function changeText(value: unknown): string {
  if (value === null) return 'none';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function ApprovalCard({ approval, decided }: { approval: Approval; decided: () => void }) {
  const [note, setNote] = useState('');
  const [busy, setBusy] = useState<'approve' | 'reject' | null>(null);
  const [error, setError] = useState<unknown>(null);

  async function decide(verdict: 'approve' | 'reject') {
    setBusy(verdict);
    setError(null);
    try {
      const path = verdict === 'approve' ? '/v1/approvals/{id}/approve' : '/v1/approvals/{id}/reject';
      await need(
        api.POST(path, {
          params: { path: { id: approval.id } },
          body: note.trim() ? { note: note.trim() } : {},
        }),
      );
      decided();
    } catch (e) {
      setError(e instanceof ApiError ? e.problem : e);
    } finally {
      setBusy(null);
    }
  }

  const campaign = useLoad(
    () => need(api.GET('/v1/campaigns/{id}', { params: { path: { id: approval.target_id } } })),
    [approval.target_id],
  );
  const fields = Object.entries(approval.change);
  return (
    <article className="case" aria-label={`Approval ${approval.id}`}>
      <div className="page-head">
        <h2>
          {approval.kind === 'campaign.create' ? 'Activate a new campaign' : 'Change a campaign'}{' '}
          <Link to={`/campaigns/${approval.target_id}`}>
            {campaign.state === 'ready' ? campaign.data.name : approval.target_id}
          </Link>
        </h2>
        <span
          className={`badge badge-${approval.status === 'pending' ? 'paused' : approval.status === 'approved' ? 'active' : 'ended'}`}
        >
          {approval.status}
        </span>
      </div>
      <dl className="facts">
        <div>
          <dt>Asked by</dt>
          <dd className="mono">{approval.requested_by}</dd>
        </div>
        <div>
          <dt>Asked</dt>
          <dd>{when(approval.created_at)}</dd>
        </div>
        <div>
          <dt>{approval.status === 'pending' ? 'Lapses' : 'Decided'}</dt>
          <dd>
            {approval.status === 'pending'
              ? when(approval.expires_at)
              : `${when(approval.decided_at)}${approval.decided_by ? ` by ${approval.decided_by}` : ''}`}
          </dd>
        </div>
        <div>
          <dt>Policy rules tripped</dt>
          <dd>{approval.rules.map((r) => RULE_TEXT[r] ?? r.replace(/_/g, ' ')).join(', ') || '—'}</dd>
        </div>
      </dl>
      {approval.reason && <p>Reason given: {approval.reason}</p>}
      <table className="list" aria-label="Requested change">
        <thead>
          <tr>
            <th scope="col">Field</th>
            <th scope="col">New value</th>
          </tr>
        </thead>
        <tbody>
          {fields.map(([field, value]) => (
            <tr key={field}>
              <td className="mono">{field}</td>
              <td className="details">{changeText(value)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {approval.note && <p>Note: {approval.note}</p>}
      {approval.status === 'pending' && (
        <>
          <label>
            Note (kept in the audit log)
            <textarea rows={2} maxLength={2000} value={note} onChange={(e) => setNote(e.target.value)} />
          </label>
          <div className="actions">
            <button
              type="button"
              className="primary"
              disabled={busy !== null}
              onClick={() => void decide('approve')}
            >
              {busy === 'approve' ? 'Approving…' : 'Approve'}
            </button>
            <button
              type="button"
              className="danger"
              disabled={busy !== null}
              onClick={() => void decide('reject')}
            >
              {busy === 'reject' ? 'Rejecting…' : 'Reject'}
            </button>
          </div>
        </>
      )}
      {error !== null && (
        <p className="field-error" role="alert">
          {problemMessage(error)}
        </p>
      )}
    </article>
  );
}

export function ApprovalsPage() {
  const [status, setStatus] = useState<Status>('pending');
  const [version, setVersion] = useState(0);
  const loaded = useLoad(
    () => need(api.GET('/v1/approvals', { params: { query: { status, limit: 50 } } })),
    [status, version],
  );
  return (
    <section>
      <div className="page-head">
        <h1>Approvals</h1>
        <label className="inline">
          Show
          <select value={status} onChange={(e) => setStatus(e.target.value as Status)}>
            <option value="pending">Waiting</option>
            <option value="approved">Approved</option>
            <option value="rejected">Rejected</option>
            <option value="expired">Lapsed</option>
          </select>
        </label>
      </div>
      <p className="muted">
        A risky campaign change waits here for a second person; the one who asked cannot approve it.
      </p>
      <Show loaded={loaded}>
        {(page) =>
          page.data.length === 0 ? (
            <Empty>
              {status === 'pending' ? 'Nothing waits for a second person.' : `No ${status} approval.`}
            </Empty>
          ) : (
            <div className="stack">
              {page.data.map((a) => (
                <ApprovalCard key={a.id} approval={a} decided={() => setVersion((n) => n + 1)} />
              ))}
            </div>
          )
        }
      </Show>
    </section>
  );
}
