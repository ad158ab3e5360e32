/**
 * On-call: live panels, the detectors' alerts (acknowledge, resolve), the remediations in force (lift),
 * what is paused or throttled now (with undo), and the kill switch.
 */
import { type FormEvent, useEffect, useRef, useState } from 'react';
import { ApiError, api, need, problemMessage, type Schema } from '../api.ts';
import { loadSummary, quantile, type Summary, sumBy, total } from '../metrics.ts';
import { count, Empty, ErrorBox, Show, Spinner, useLoad, when } from '../ui.tsx';

type Campaign = Schema<'Campaign'>;
type Alert = Schema<'Alert'>;
type Remediation = Schema<'Remediation'>;

/** The validation latency objective the panels compare against (docs/operations.md). */
const VALIDATION_SLO_SECONDS = 0.05;
const POLL_MS = 5000;

function usePoll(ms: number): number {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const timer = window.setInterval(() => setTick((n) => n + 1), ms);
    return () => window.clearInterval(timer);
  }, [ms]);
  return tick;
}

function Panel({ title, value, hint, bad }: { title: string; value: string; hint?: string; bad?: boolean }) {
  return (
    <div className={`panel${bad ? ' bad' : ''}`}>
      <h3>{title}</h3>
      <p className="figure">{value}</p>
      {hint && <p className="muted">{hint}</p>}
    </div>
  );
}

const ms = (seconds: number | null) =>
  seconds === null
    ? '—'
    : seconds === Number.POSITIVE_INFINITY
      ? '> top bucket'
      : `≤ ${Math.round(seconds * 1000)} ms`;

function Panels() {
  const tick = usePoll(POLL_MS);
  const loaded = useLoad(() => loadSummary(), [tick]);
  const last = useRef<{ at: number; redeemed: number } | null>(null);
  const [rate, setRate] = useState<number | null>(null);
  const summary = loaded.state === 'ready' ? loaded.data : null;
  useEffect(() => {
    if (!summary) return;
    const now = {
      at: Date.parse(summary.at),
      redeemed: total(summary, 'promoguard_redemptions_total', { outcome: 'redeemed' }),
    };
    const before = last.current;
    if (before && now.at > before.at)
      setRate(((now.redeemed - before.redeemed) * 60_000) / (now.at - before.at));
    last.current = now;
  }, [summary]);
  if (!summary)
    return loaded.state === 'error' ? <ErrorBox error={loaded.error} retry={loaded.reload} /> : <Spinner />;
  return <PanelGrid summary={summary} rate={rate} />;
}

function PanelGrid({ summary, rate }: { summary: Summary; rate: number | null }) {
  const redeemed = total(summary, 'promoguard_redemptions_total', { outcome: 'redeemed' });
  const p95 = quantile(summary, 'promoguard_validation_duration_seconds', 0.95);
  const p99 = quantile(summary, 'promoguard_validation_duration_seconds', 0.99);
  const decisions = sumBy(summary, 'promoguard_risk_decisions_total', 'action');
  const pending = total(summary, 'promoguard_review_queue_pending');
  const oldest = total(summary, 'promoguard_review_queue_oldest_age_seconds');
  const backlog = total(summary, 'promoguard_outbox_backlog_events');
  const lag = total(summary, 'promoguard_outbox_oldest_age_seconds');
  const mismatch = total(summary, 'promoguard_reconciliation_mismatch_rows');
  const controls = sumBy(summary, 'promoguard_active_controls', 'kind');
  return (
    <section className="panels" aria-labelledby="metrics-title">
      {/* The panels' h3 titles need an h2 above them: screen readers list headings as an outline. */}
      <h2 id="metrics-title" className="visually-hidden">
        Live metrics
      </h2>
      <Panel
        title="Redemptions"
        value={count(redeemed)}
        hint={rate === null ? 'since this node started' : `${rate.toFixed(1)} per minute now`}
      />
      <Panel
        title="Validation latency p95 / p99"
        value={`${ms(p95)} / ${ms(p99)}`}
        hint={`objective ${VALIDATION_SLO_SECONDS * 1000} ms`}
        bad={p99 !== null && p99 > VALIDATION_SLO_SECONDS}
      />
      <Panel
        title="Decisions by action"
        value={['allow', 'review', 'challenge', 'block']
          .map((a) => `${a} ${count(decisions.get(a) ?? 0)}`)
          .join(' · ')}
      />
      <Panel
        title="Review queue"
        value={count(pending)}
        hint={pending ? `oldest ${Math.round(oldest / 60)} min` : 'empty'}
        bad={oldest > 3600}
      />
      <Panel
        title="Outbox"
        value={`${count(backlog)} waiting`}
        hint={`oldest ${Math.round(lag)} s`}
        bad={lag > 60}
      />
      <Panel
        title="Reconciliation"
        value={mismatch ? `${count(mismatch)} rows off` : 'balanced'}
        bad={mismatch > 0}
        hint="last finished run"
      />
      <Panel
        title="Controls in force"
        value={count([...controls.values()].reduce((a, b) => a + b, 0))}
        hint={[...controls.entries()].map(([k, n]) => `${k.replace(/_/g, ' ')} ${n}`).join(', ') || 'none'}
      />
    </section>
  );
}

function ActiveControls({ campaigns, changed }: { campaigns: Campaign[]; changed: () => void }) {
  const [reason, setReason] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const controlled = campaigns.filter((c) => c.status === 'paused' || c.throttle_per_minute !== null);

  async function undo(c: Campaign, what: 'resume' | 'unthrottle') {
    if (reason.trim() === '') {
      setError(new Error('Write why you undo it in the reason field first.'));
      return;
    }
    setBusy(`${what}:${c.id}`);
    setError(null);
    try {
      if (what === 'resume')
        await need(
          api.POST('/v1/campaigns/{id}/resume', { params: { path: { id: c.id } }, body: { reason } }),
        );
      else
        await need(
          api.POST('/v1/campaigns/{id}/throttle', {
            params: { path: { id: c.id } },
            body: { per_minute: null, reason },
          }),
        );
      changed();
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.problem : caught);
    } finally {
      setBusy(null);
    }
  }

  return (
    <section aria-labelledby="active-title">
      <h2 id="active-title">Paused and throttled now</h2>
      {controlled.length === 0 ? (
        <Empty>No campaign is paused or throttled.</Empty>
      ) : (
        <>
          <label>
            Reason for an undo
            <input value={reason} onChange={(e) => setReason(e.target.value)} maxLength={500} />
          </label>
          <table className="list">
            <thead>
              <tr>
                <th scope="col">Campaign</th>
                <th scope="col">Control</th>
                <th scope="col">Undo</th>
              </tr>
            </thead>
            <tbody>
              {controlled.map((c) => (
                <tr key={c.id}>
                  <td>{c.name}</td>
                  <td>
                    {c.status === 'paused' && <span className="badge badge-paused">paused</span>}{' '}
                    {c.throttle_per_minute !== null && `throttled to ${count(c.throttle_per_minute)}/min`}
                  </td>
                  <td>
                    {c.status === 'paused' && (
                      <button type="button" disabled={busy !== null} onClick={() => void undo(c, 'resume')}>
                        {busy === `resume:${c.id}` ? 'Resuming…' : 'Resume'}
                      </button>
                    )}{' '}
                    {c.throttle_per_minute !== null && (
                      <button
                        type="button"
                        disabled={busy !== null}
                        onClick={() => void undo(c, 'unthrottle')}
                      >
                        Lift throttle
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      {error !== null && <ErrorBox error={error} />}
    </section>
  );
}

function KillSwitch({ campaigns, changed }: { campaigns: Campaign[]; changed: () => void }) {
  const active = campaigns.filter((c) => c.status === 'active');
  const [campaignId, setCampaignId] = useState('');
  const [partner, setPartner] = useState('');
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);
  const chosen = campaignId || active[0]?.id || '';
  const partners = useLoad(
    () =>
      chosen
        ? need(api.GET('/v1/campaigns/{id}/partners', { params: { path: { id: chosen } } }))
        : Promise.resolve({ data: [] }),
    [chosen],
  );

  async function stop(event: FormEvent) {
    event.preventDefault();
    setDone(null);
    if (!chosen) return;
    if (reason.trim().length < 3) {
      setError(new Error('A kill switch needs a reason: say what you saw (at least a few words).'));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      if (partner) {
        await need(
          api.PUT('/v1/campaigns/{id}/partners/{partner}', {
            params: { path: { id: chosen, partner } },
            body: { cap: 0, reason },
          }),
        );
        setDone(`Partner ${partner} stopped: its codes are refused from the next request on.`);
      } else {
        const { error, response } = await api.POST('/v1/campaigns/{id}/pause', {
          params: { path: { id: chosen } },
          body: { reason },
        });
        if (error) throw new ApiError(error, response.status);
        setDone('Campaign paused: every redemption is refused from the next request on.');
      }
      setReason('');
      changed();
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.problem : caught);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="form kill" onSubmit={stop} aria-labelledby="kill-title" noValidate>
      <h2 id="kill-title">Kill switch</h2>
      {active.length === 0 ? (
        <Empty>No active campaign to stop.</Empty>
      ) : (
        <>
          <label>
            Campaign
            <select value={chosen} onChange={(e) => setCampaignId(e.target.value)}>
              {active.map((c) => (
                <option key={c.id} value={c.id}>
                  {c.name}
                </option>
              ))}
            </select>
          </label>
          <label>
            Scope
            <select value={partner} onChange={(e) => setPartner(e.target.value)}>
              <option value="">The whole campaign (pause)</option>
              {partners.state === 'ready' &&
                partners.data.data.map((p) => (
                  <option key={p.partner} value={p.partner}>
                    Partner {p.partner} only (cap 0)
                  </option>
                ))}
            </select>
          </label>
          <label>
            Reason (required, kept in the audit log)
            <textarea
              value={reason}
              onChange={(e) => setReason(e.target.value)}
              required
              maxLength={500}
              rows={2}
            />
          </label>
          <button type="submit" className="danger" disabled={busy}>
            {busy ? 'Stopping…' : partner ? 'Stop this partner' : 'Pause campaign'}
          </button>
        </>
      )}
      {done && (
        <p className="notice" role="status">
          {done}
        </p>
      )}
      {error !== null && (
        <p className="field-error" role="alert">
          {problemMessage(error instanceof ApiError ? error.problem : error)}
        </p>
      )}
    </form>
  );
}

const caught = (e: unknown) => (e instanceof ApiError ? e.problem : e);

/** Unresolved alerts first: the ones someone must look at (open) or is looking at (acknowledged). */
function loadAlerts(view: 'unresolved' | 'resolved') {
  if (view === 'resolved')
    return need(api.GET('/v1/alerts', { params: { query: { status: 'resolved', limit: 50 } } })).then(
      (p) => p.data,
    );
  return Promise.all(
    (['open', 'acknowledged'] as const).map((status) =>
      need(api.GET('/v1/alerts', { params: { query: { status, limit: 100 } } })),
    ),
  ).then(([open, acked]) =>
    [...(open?.data ?? []), ...(acked?.data ?? [])].sort((a, b) => b.raised_at.localeCompare(a.raised_at)),
  );
}

function scopeText(a: Alert): string {
  const s = a.scope;
  const where = [
    s.campaign_id && s.campaign_id !== s.id ? `campaign ${s.campaign_id}` : null,
    s.partner && s.type !== 'partner' ? `partner ${s.partner}` : null,
  ]
    .filter(Boolean)
    .join(', ');
  return `${s.type} ${s.id}${where ? ` (${where})` : ''}`;
}

function Alerts({ tick, changed }: { tick: number; changed: () => void }) {
  const [view, setView] = useState<'unresolved' | 'resolved'>('unresolved');
  const [version, setVersion] = useState(0);
  const loaded = useLoad(() => loadAlerts(view), [view, tick, version]);
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);

  async function act(a: Alert, action: 'acknowledge' | 'resolve') {
    setBusy(`${action}:${a.id}`);
    setError(null);
    try {
      const path = action === 'acknowledge' ? '/v1/alerts/{id}/acknowledge' : '/v1/alerts/{id}/resolve';
      await need(api.POST(path, { params: { path: { id: a.id } }, body: {} }));
      setVersion((n) => n + 1);
      changed();
    } catch (e) {
      setError(caught(e));
    } finally {
      setBusy(null);
    }
  }

  return (
    <section aria-labelledby="alerts-title">
      <div className="page-head">
        <h2 id="alerts-title">Alerts</h2>
        <label>
          Show
          <select value={view} onChange={(e) => setView(e.target.value as 'unresolved' | 'resolved')}>
            <option value="unresolved">Open and acknowledged</option>
            <option value="resolved">Resolved</option>
          </select>
        </label>
      </div>
      {error !== null && <ErrorBox error={error} />}
      <Show loaded={loaded}>
        {(alerts) =>
          alerts.length === 0 ? (
            <Empty>
              {view === 'unresolved'
                ? 'No open alert. The detectors raise one when redemptions, refusals or new accounts rise above their baseline.'
                : 'No resolved alert yet.'}
            </Empty>
          ) : (
            <table className="list" aria-label="Alerts">
              <thead>
                <tr>
                  <th scope="col">Raised</th>
                  <th scope="col">Alert</th>
                  <th scope="col">Observed / expected</th>
                  <th scope="col">Status</th>
                  <th scope="col">Act</th>
                </tr>
              </thead>
              <tbody>
                {alerts.map((a) => (
                  <tr key={a.id} data-alert={a.id}>
                    <td>{when(a.raised_at)}</td>
                    <td className="details">
                      <span className={`badge badge-${a.severity === 'page' ? 'failed' : 'paused'}`}>
                        {a.severity}
                      </span>{' '}
                      {a.kind.replace(/_/g, ' ')}
                      <div className="muted">{scopeText(a)}</div>
                    </td>
                    <td className="num">
                      {count(Math.round(a.observed))} / {count(Math.round(a.expected))} per{' '}
                      {a.interval_seconds >= 60
                        ? `${Math.round(a.interval_seconds / 60)} min`
                        : `${a.interval_seconds} s`}
                    </td>
                    <td>
                      <span className={`badge badge-alert-${a.status}`}>{a.status}</span>
                      {a.acknowledged_by && <div className="muted mono">by {a.acknowledged_by}</div>}
                    </td>
                    <td>
                      {a.status === 'open' && (
                        <button
                          type="button"
                          disabled={busy !== null}
                          onClick={() => void act(a, 'acknowledge')}
                        >
                          {busy === `acknowledge:${a.id}` ? 'Acknowledging…' : 'Acknowledge'}
                        </button>
                      )}{' '}
                      {a.status !== 'resolved' && (
                        <button type="button" disabled={busy !== null} onClick={() => void act(a, 'resolve')}>
                          {busy === `resolve:${a.id}` ? 'Resolving…' : 'Resolve'}
                        </button>
                      )}
                    </td>
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

function targetText(r: Remediation): string {
  const t = r.target;
  if (t.type === 'code') return `code ${t.code_id ?? ''}`;
  if (t.type === 'partner') return `partner ${t.partner ?? ''} of ${t.campaign_id ?? ''}`;
  if (t.type === 'batch') return `batch ${t.batch_id ?? ''}`;
  return `campaign ${t.campaign_id ?? ''}`;
}

function Remediations({
  tick,
  version: outer,
  changed,
}: {
  tick: number;
  version: number;
  changed: () => void;
}) {
  const [version, setVersion] = useState(0);
  const loaded = useLoad(
    () => need(api.GET('/v1/remediations', { params: { query: { status: 'active', limit: 100 } } })),
    [tick, version, outer],
  );
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);

  async function lift(r: Remediation) {
    setDone(null);
    if (reason.trim().length < 3) {
      setError(new Error('Lifting needs a reason: say why the remediation is not needed.'));
      return;
    }
    setBusy(r.id);
    setError(null);
    try {
      await need(
        api.POST('/v1/remediations/{id}/lift', { params: { path: { id: r.id } }, body: { reason } }),
      );
      setDone(`Lifted ${r.action.replace(/_/g, ' ')} on ${targetText(r)}: its change is undone.`);
      setVersion((n) => n + 1);
      // Lifting may resume a campaign or lift its throttle: the controls below change too.
      changed();
    } catch (e) {
      setError(caught(e));
    } finally {
      setBusy(null);
    }
  }

  return (
    <section aria-labelledby="remediations-title">
      <h2 id="remediations-title">Remediations in force</h2>
      <Show loaded={loaded}>
        {(page) =>
          page.data.length === 0 ? (
            <Empty>No remediation is in force. Policies apply one when an alert matches them.</Empty>
          ) : (
            <>
              <label>
                Reason for a lift (required, kept in the audit log)
                <input
                  value={reason}
                  onChange={(e) => {
                    setReason(e.target.value);
                    setError(null);
                  }}
                  maxLength={500}
                />
              </label>
              <table className="list" aria-label="Remediations">
                <thead>
                  <tr>
                    <th scope="col">Action</th>
                    <th scope="col">On</th>
                    <th scope="col">Since / until</th>
                    <th scope="col">Lift</th>
                  </tr>
                </thead>
                <tbody>
                  {page.data.map((r) => (
                    <tr key={r.id} data-remediation={r.id}>
                      <td>
                        {r.action.replace(/_/g, ' ')}
                        {r.dry_run && <span className="badge"> dry run</span>}
                        <div className="muted">{r.alert_kind.replace(/_/g, ' ')}</div>
                      </td>
                      <td className="details">{targetText(r)}</td>
                      <td>
                        {when(r.applied_at)}
                        <div className="muted">until {when(r.expires_at)}</div>
                      </td>
                      <td>
                        <button type="button" disabled={busy !== null} onClick={() => void lift(r)}>
                          {busy === r.id ? 'Lifting…' : 'Lift'}
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          )
        }
      </Show>
      {done && (
        <p className="notice" role="status">
          {done}
        </p>
      )}
      {error !== null && <ErrorBox error={error} />}
    </section>
  );
}

export function OnCallPage() {
  const [version, setVersion] = useState(0);
  const tick = usePoll(POLL_MS);
  const campaigns = useLoad(
    () => need(api.GET('/v1/campaigns', { params: { query: { limit: 200 } } })),
    [version],
  );
  return (
    <section>
      <div className="page-head">
        <h1>On-call</h1>
        <span className="muted">Panels refresh every {POLL_MS / 1000} s</span>
      </div>
      <Panels />
      <div className="stack">
        <Alerts tick={tick} changed={() => setVersion((n) => n + 1)} />
        <Remediations tick={tick} version={version} changed={() => setVersion((n) => n + 1)} />
      </div>
      <Show loaded={campaigns}>
        {(page) => (
          <div className="grid-2">
            <KillSwitch campaigns={page.data} changed={() => setVersion((n) => n + 1)} />
            <ActiveControls campaigns={page.data} changed={() => setVersion((n) => n + 1)} />
          </div>
        )}
      </Show>
    </section>
  );
}
