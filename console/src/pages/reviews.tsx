/**
 * The review queue: "next case" holds the oldest free case for the analyst, the inbox with its
 * filters and SLA age, one case (its decision and every rule that fired, the person's linked accounts
 * as a graph, the customer's history), a verdict with a label and a note, and one verdict for a ring.
 */
import { GraphChart } from 'echarts/charts';
import * as echarts from 'echarts/core';
import { type FormEvent, useMemo, useState } from 'react';
import { ApiError, api, need, type Schema } from '../api.ts';
import { Chart, type ChartOption } from '../chart.tsx';
import { count, Empty, ErrorBox, money, Show, useLoad, when } from '../ui.tsx';

echarts.use([GraphChart]);

type Review = Schema<'Review'>;
type ReviewCase = Schema<'ReviewCase'>;
type Label = 'abuse' | 'legitimate';
type Status = 'pending' | 'approved' | 'rejected';

interface Filters {
  status: Status;
  campaign: string;
  rule: string;
  assigned: '' | 'me' | 'unassigned';
  minAge: string;
  person: string;
}

const NO_FILTERS: Filters = {
  status: 'pending',
  campaign: '',
  rule: '',
  assigned: '',
  minAge: '',
  person: '',
};

/** Graph nodes beyond these are left out of the picture (the list below it names them all). */
const GRAPH_ACCOUNTS = 40;
const GRAPH_IDENTIFIERS = 40;
/** The most cases one bulk verdict takes (the API's limit). */
const BULK_MAX = 100;

function age(seconds: number): string {
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

function clock(iso: string): string {
  return new Date(iso).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

function holder(review: Review): string {
  if (!review.assignment) return '—';
  return review.assignment.mine ? 'you' : 'another analyst';
}

/** The problem's message for a person, or the error itself. */
const problemOf = (caught: unknown) => (caught instanceof ApiError ? caught.problem : caught);

function AgeCell({ review }: { review: Review }) {
  return (
    <span className={review.overdue ? 'overdue' : undefined}>
      {age(review.age_seconds)}
      {review.overdue && <span className="badge badge-failed"> past SLA</span>}
    </span>
  );
}

// ---------------------------------------------------------------------------------------------------
// Linked accounts
// ---------------------------------------------------------------------------------------------------

function linkGraph(review: ReviewCase): ChartOption {
  const links = review.linked_accounts;
  const self = review.redemption.customer_id;
  const accounts = [self, ...links.customers.filter((c) => c !== self)].slice(0, GRAPH_ACCOUNTS);
  const shown = new Set(accounts);
  const identifiers = links.shared_identifiers.slice(0, GRAPH_IDENTIFIERS);
  const nodes = [
    ...accounts.map((c) => ({
      id: `c:${c}`,
      name: c,
      category: c === self ? 0 : 1,
      symbolSize: c === self ? 26 : 18,
    })),
    ...identifiers.map((s) => ({
      id: `i:${s.type}:${s.hash}`,
      name: `${s.type} ${s.hash.slice(0, 6)}`,
      category: 2,
      symbol: 'rect',
      symbolSize: 14,
    })),
  ];
  const edges = identifiers.flatMap((s) =>
    s.customers
      .filter((c) => shown.has(c))
      .map((c) => ({ source: `i:${s.type}:${s.hash}`, target: `c:${c}` })),
  );
  return {
    animation: false,
    // Rich text draws inside the canvas: customer ids are never parsed as HTML.
    tooltip: { renderMode: 'richText' },
    legend: { data: ['This account', 'Linked account', 'Shared identifier'], bottom: 0 },
    series: [
      {
        type: 'graph',
        layout: 'force',
        force: { repulsion: 260, edgeLength: 90, gravity: 0.15, layoutAnimation: false },
        roam: true,
        label: { show: true, position: 'right', fontSize: 11, width: 140, overflow: 'truncate' },
        categories: [{ name: 'This account' }, { name: 'Linked account' }, { name: 'Shared identifier' }],
        data: nodes,
        links: edges,
        lineStyle: { color: '#8c959f' },
      },
    ],
  };
}

function LinkedAccounts({
  review,
  selectPerson,
}: {
  review: ReviewCase;
  selectPerson: (person: string) => void;
}) {
  const links = review.linked_accounts;
  const option = useMemo(() => linkGraph(review), [review]);
  if (links.customers.length <= 1) {
    return <p className="muted">No other account shares an identifier with this customer.</p>;
  }
  return (
    <>
      <Chart
        option={option}
        label={`Linked accounts: ${links.customers.length} accounts sharing ${links.shared_identifiers.length} identifiers`}
        height={280}
      />
      <ul className="plain">
        {links.shared_identifiers.map((s) => (
          <li key={`${s.type}:${s.hash}`}>
            {s.type} <span className="mono small">{s.hash.slice(0, 12)}</span> shared by{' '}
            <span className="mono">{s.customers.join(', ')}</span>
          </li>
        ))}
      </ul>
      {links.person_id && (
        <button type="button" onClick={() => selectPerson(links.person_id as string)}>
          Select this person’s cases
        </button>
      )}
    </>
  );
}

// ---------------------------------------------------------------------------------------------------
// One case
// ---------------------------------------------------------------------------------------------------

function Assignment({ review, changed }: { review: ReviewCase; changed: () => void }) {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const id = review.redemption.id;
  async function act(what: 'take' | 'release') {
    setBusy(true);
    setError(null);
    try {
      const path = what === 'take' ? '/v1/reviews/{id}/take' : '/v1/reviews/{id}/release';
      await need(api.POST(path, { params: { path: { id } } }));
      changed();
    } catch (caught) {
      setError(problemOf(caught));
    } finally {
      setBusy(false);
    }
  }
  if (review.redemption.review_status !== 'pending') return null;
  const a = review.assignment;
  return (
    <div className="holder" data-testid="holder">
      {a?.mine ? (
        <>
          <span>Held by you until {clock(a.locked_until)}</span>
          <button type="button" disabled={busy} onClick={() => void act('release')}>
            Release
          </button>
        </>
      ) : a ? (
        <span className="warn" title={a.assigned_to}>
          Held by another analyst until {clock(a.locked_until)}: theirs to decide
        </span>
      ) : (
        <>
          <span className="muted">Nobody holds this case.</span>
          <button type="button" disabled={busy} onClick={() => void act('take')}>
            Take case
          </button>
        </>
      )}
      {error !== null && <ErrorBox error={error} />}
    </div>
  );
}

function Verdict({ id, decided }: { id: string; decided: () => void }) {
  const [label, setLabel] = useState<Label>('abuse');
  const [note, setNote] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  async function decide(verdict: 'approve' | 'reject') {
    setBusy(true);
    setError(null);
    try {
      const path = verdict === 'approve' ? '/v1/reviews/{id}/approve' : '/v1/reviews/{id}/reject';
      await need(api.POST(path, { params: { path: { id } }, body: { label, ...(note ? { note } : {}) } }));
      decided();
    } catch (caught) {
      setError(problemOf(caught));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form aria-label="Verdict" onSubmit={(e) => e.preventDefault()}>
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
        <textarea value={note} onChange={(e) => setNote(e.target.value)} maxLength={2000} rows={2} />
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
    </form>
  );
}

function History({ review }: { review: ReviewCase }) {
  const { redemptions, decisions } = review.history;
  return (
    <>
      <h3>Customer history</h3>
      {redemptions.length === 0 ? (
        <p className="muted">No redemptions.</p>
      ) : (
        <table className="list" aria-label="Recent redemptions">
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Campaign</th>
              <th scope="col">Discount</th>
              <th scope="col">Status</th>
              <th scope="col">Review</th>
            </tr>
          </thead>
          <tbody>
            {redemptions.map((r) => (
              <tr key={r.id} className={r.id === review.redemption.id ? 'selected' : undefined}>
                <td>{when(r.created_at)}</td>
                <td className="mono small">{r.campaign_id}</td>
                <td>{money(r.discount_minor, r.currency)}</td>
                <td>{r.status}</td>
                <td>{r.review_status ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {decisions.length > 0 && (
        <table className="list" aria-label="Recent decisions">
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Action</th>
              <th scope="col">Outcome</th>
              <th scope="col">Because</th>
              <th scope="col">Label</th>
            </tr>
          </thead>
          <tbody>
            {decisions.map((d) => (
              <tr key={d.id}>
                <td>{when(d.created_at)}</td>
                <td>{d.action}</td>
                <td>{d.outcome}</td>
                <td className="mono small">{d.because.join(', ') || '—'}</td>
                <td>{d.label ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

function Case({
  id,
  version,
  decided,
  changed,
  filterCampaign,
  selectPerson,
}: {
  id: string;
  version: number;
  decided: () => void;
  changed: () => void;
  filterCampaign: (campaign: string) => void;
  selectPerson: (person: string) => void;
}) {
  const loaded = useLoad(
    () => need(api.GET('/v1/reviews/{id}', { params: { path: { id } } })),
    [id, version],
  );
  return (
    <Show loaded={loaded}>
      {(review) => {
        const r = review.redemption;
        const decision = review.decision;
        return (
          <article className="case" aria-label={`Case ${r.id}`}>
            <h2>
              Case <span className="mono">{r.id}</span>
            </h2>
            <Assignment review={review} changed={changed} />
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
                <dt>Held for</dt>
                <dd>
                  <AgeCell review={review} />
                </dd>
              </div>
              <div>
                <dt>Campaign</dt>
                <dd>
                  <button type="button" className="link mono" onClick={() => filterCampaign(r.campaign_id)}>
                    {r.campaign_id}
                  </button>
                </dd>
              </div>
              <div>
                <dt>Order</dt>
                <dd className="mono">{r.order_id ?? '—'}</dd>
              </div>
              <div>
                <dt>Review</dt>
                <dd>{r.review_status}</dd>
              </div>
            </dl>
            <h3>Decision: {decision?.action ?? 'none recorded'}</h3>
            {decision && decision.rules.length > 0 ? (
              <table className="list" aria-label="Rules that fired">
                <thead>
                  <tr>
                    <th scope="col">Rule</th>
                    <th scope="col">Result</th>
                    <th scope="col">Action</th>
                    <th scope="col">Mode</th>
                    <th scope="col">Reason</th>
                    <th scope="col">Values</th>
                  </tr>
                </thead>
                <tbody>
                  {decision.rules.map((rule) => (
                    <tr key={rule.id}>
                      <td>
                        {rule.name}
                        {decision.because.includes(rule.id) && <span className="badge"> set the action</span>}
                      </td>
                      <td>{rule.result}</td>
                      <td>{rule.action}</td>
                      <td>{rule.mode}</td>
                      <td>{rule.reason}</td>
                      <td className="mono small">
                        {Object.entries(rule.features)
                          .map(([k, v]) => `${k}=${v}`)
                          .join(', ') || '—'}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            ) : (
              <p className="muted">No rule fired.</p>
            )}
            {decision?.model?.enforcing && (
              <p className="muted">Learned score: {decision.model.enforcing.score.toFixed(3)}</p>
            )}
            <h3>Linked accounts</h3>
            <LinkedAccounts review={review} selectPerson={selectPerson} />
            <History review={review} />
            {r.review_status === 'pending' && <Verdict key={r.id} id={r.id} decided={decided} />}
          </article>
        );
      }}
    </Show>
  );
}

// ---------------------------------------------------------------------------------------------------
// Bulk verdict
// ---------------------------------------------------------------------------------------------------

const OUTCOME_TEXT: Record<string, string> = {
  decided: 'decided',
  unchanged: 'already had this verdict',
  locked: 'held by another analyst',
  conflict: 'decided the other way before',
  not_found: 'not found',
  not_under_review: 'never held for review',
};

function BulkVerdict({ ids, done }: { ids: string[]; done: (summary: string) => void }) {
  const [label, setLabel] = useState<Label>('abuse');
  const [note, setNote] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  async function decide(verdict: 'approve' | 'reject') {
    setBusy(true);
    setError(null);
    try {
      const result = await need(
        api.POST('/v1/reviews/bulk', { body: { ids, verdict, label, ...(note ? { note } : {}) } }),
      );
      const tally = new Map<string, number>();
      for (const r of result.results) tally.set(r.outcome, (tally.get(r.outcome) ?? 0) + 1);
      done(
        [...tally]
          .map(([outcome, n]) => `${n} ${OUTCOME_TEXT[outcome] ?? outcome}`)
          .join('; ')
          .replace(/^/, `${verdict === 'approve' ? 'Approved' : 'Rejected'}: `),
      );
    } catch (caught) {
      setError(problemOf(caught));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="bulk" aria-label="Bulk verdict" onSubmit={(e) => e.preventDefault()}>
      <strong>{ids.length} selected</strong>
      <fieldset>
        <legend>Label for all</legend>
        <label className="inline">
          <input
            type="radio"
            name="bulk-label"
            checked={label === 'abuse'}
            onChange={() => setLabel('abuse')}
          />{' '}
          Abuse
        </label>
        <label className="inline">
          <input
            type="radio"
            name="bulk-label"
            checked={label === 'legitimate'}
            onChange={() => setLabel('legitimate')}
          />{' '}
          Legitimate
        </label>
      </fieldset>
      <label>
        Note for all selected
        <textarea value={note} onChange={(e) => setNote(e.target.value)} maxLength={2000} rows={2} />
      </label>
      <div className="actions">
        <button type="button" className="primary" disabled={busy} onClick={() => void decide('approve')}>
          Approve selected
        </button>
        <button type="button" className="danger" disabled={busy} onClick={() => void decide('reject')}>
          Reject selected
        </button>
      </div>
      {error !== null && <ErrorBox error={error} />}
    </form>
  );
}

// ---------------------------------------------------------------------------------------------------
// The page
// ---------------------------------------------------------------------------------------------------

function FilterBar({
  filters,
  sla,
  apply,
}: {
  filters: Filters;
  sla: number | null;
  apply: (f: Filters) => void;
}) {
  const [draft, setDraft] = useState(filters);
  const [seen, setSeen] = useState(filters);
  // A filter set from elsewhere (a campaign or person picked in a case) replaces the draft.
  if (seen !== filters) {
    setSeen(filters);
    setDraft(filters);
  }
  const rules = useLoad(() => need(api.GET('/v1/rules')), []);
  const set = <K extends keyof Filters>(key: K, value: Filters[K]) =>
    setDraft((d) => ({ ...d, [key]: value }));
  const submit = (event: FormEvent) => {
    event.preventDefault();
    apply(draft);
  };
  return (
    <form className="filters review-filters" aria-label="Filters" onSubmit={submit}>
      <label>
        Status
        <select value={draft.status} onChange={(e) => set('status', e.target.value as Status)}>
          <option value="pending">Pending</option>
          <option value="approved">Approved</option>
          <option value="rejected">Rejected</option>
        </select>
      </label>
      <label>
        Campaign
        <input
          value={draft.campaign}
          onChange={(e) => set('campaign', e.target.value.trim())}
          placeholder="cmp_…"
          pattern="cmp_[0-9A-HJKMNP-TV-Z]{26}"
          size={20}
        />
      </label>
      <label>
        Rule
        <select value={draft.rule} onChange={(e) => set('rule', e.target.value)}>
          <option value="">Any rule</option>
          {rules.state === 'ready' &&
            rules.data.data.map((rule) => (
              <option key={rule.id} value={rule.id}>
                {rule.name}
              </option>
            ))}
        </select>
      </label>
      <label>
        Held by
        <select
          value={draft.assigned}
          onChange={(e) => set('assigned', e.target.value as Filters['assigned'])}
        >
          <option value="">Anyone or nobody</option>
          <option value="me">Me</option>
          <option value="unassigned">Nobody</option>
        </select>
      </label>
      <label>
        Age
        <select value={draft.minAge} onChange={(e) => set('minAge', e.target.value)}>
          <option value="">Any age</option>
          <option value="15">15 min or more</option>
          <option value="60">1 h or more</option>
          {sla !== null && <option value={String(sla)}>Past the SLA ({age(sla * 60)})</option>}
        </select>
      </label>
      {draft.person && (
        <span className="chip">
          Person <span className="mono small">{draft.person.slice(0, 14)}</span>
          <button type="button" className="link" onClick={() => set('person', '')} aria-label="Clear person">
            ×
          </button>
        </span>
      )}
      <button type="submit">Apply</button>
      <button type="button" onClick={() => apply(NO_FILTERS)}>
        Clear
      </button>
    </form>
  );
}

export function ReviewsPage() {
  const [version, setVersion] = useState(0);
  const [open, setOpen] = useState<string | null>(null);
  const [filters, setFilters] = useState<Filters>(NO_FILTERS);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [taking, setTaking] = useState(false);
  const reload = () => setVersion((n) => n + 1);

  const loaded = useLoad(() => {
    const query: Record<string, string | number> = { limit: 100, status: filters.status };
    if (filters.campaign) query.campaign_id = filters.campaign;
    if (filters.rule) query.rule_id = filters.rule;
    if (filters.assigned) query.assigned = filters.assigned;
    if (filters.minAge) query.min_age_minutes = Number(filters.minAge);
    if (filters.person) query.person_id = filters.person;
    return need(api.GET('/v1/reviews', { params: { query } }));
  }, [filters, version]);
  const filtered = JSON.stringify(filters) !== JSON.stringify(NO_FILTERS);

  async function nextCase() {
    setTaking(true);
    setError(null);
    setNotice(null);
    try {
      const { review } = await need(api.POST('/v1/reviews/next'));
      if (review) setOpen(review.redemption.id);
      else setNotice('No case is free: every pending case is held by an analyst.');
      reload();
    } catch (caught) {
      setError(problemOf(caught));
    } finally {
      setTaking(false);
    }
  }

  async function selectPerson(person: string) {
    setError(null);
    try {
      const cases = await need(
        api.GET('/v1/reviews', {
          params: { query: { person_id: person, status: 'pending', limit: BULK_MAX } },
        }),
      );
      setFilters({ ...NO_FILTERS, person });
      setSelected(new Set(cases.data.map((c) => c.redemption.id)));
    } catch (caught) {
      setError(problemOf(caught));
    }
  }

  const toggle = (id: string) =>
    setSelected((was) => {
      const next = new Set(was);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });

  return (
    <section>
      <div className="page-head">
        <h1>Review queue</h1>
        {loaded.state === 'ready' && (
          <span className="muted">
            {count(loaded.data.pending)} pending · SLA {age(loaded.data.sla_minutes * 60)}
          </span>
        )}
        <button type="button" className="primary" disabled={taking} onClick={() => void nextCase()}>
          Next case
        </button>
      </div>
      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      {error !== null && <ErrorBox error={error} />}
      <FilterBar
        filters={filters}
        sla={loaded.state === 'ready' ? loaded.data.sla_minutes : null}
        apply={(f) => {
          setFilters(f);
          setSelected(new Set());
        }}
      />
      <Show loaded={loaded}>
        {(page) => {
          const shownIds = page.data.map((r) => r.redemption.id);
          const chosen = shownIds.filter((id) => selected.has(id));
          const pendingShown = page.data.filter((r) => r.redemption.review_status === 'pending');
          return (
            <div className="review-grid">
              <div className="inbox">
                {page.data.length === 0 ? (
                  <Empty>
                    {filtered
                      ? 'No case matches these filters.'
                      : 'The queue is empty: nothing waits for a person.'}
                  </Empty>
                ) : (
                  <table className="list" aria-label="Inbox">
                    <thead>
                      <tr>
                        <th scope="col">
                          <input
                            type="checkbox"
                            aria-label="Select every pending case shown"
                            checked={
                              pendingShown.length > 0 &&
                              pendingShown.every((r) => selected.has(r.redemption.id))
                            }
                            onChange={(e) =>
                              setSelected(
                                e.target.checked
                                  ? new Set(pendingShown.map((r) => r.redemption.id))
                                  : new Set(),
                              )
                            }
                          />
                        </th>
                        <th scope="col">Customer</th>
                        <th scope="col">Because</th>
                        <th scope="col">Discount</th>
                        <th scope="col">Age</th>
                        <th scope="col">Held by</th>
                      </tr>
                    </thead>
                    <tbody>
                      {page.data.map((r) => {
                        const id = r.redemption.id;
                        const classes = [id === open ? 'selected' : '', r.overdue ? 'overdue-row' : '']
                          .filter(Boolean)
                          .join(' ');
                        return (
                          <tr key={id} className={classes || undefined} data-case={id}>
                            <td>
                              <input
                                type="checkbox"
                                aria-label={`Select case ${id}`}
                                disabled={r.redemption.review_status !== 'pending'}
                                checked={selected.has(id)}
                                onChange={() => toggle(id)}
                              />
                            </td>
                            <td>
                              <button type="button" className="link" onClick={() => setOpen(id)}>
                                {r.redemption.customer_id}
                              </button>
                            </td>
                            <td className="small">
                              {r.decision?.rules
                                .filter((rule) => r.decision?.because.includes(rule.id))
                                .map((rule) => rule.name)
                                .join(', ') || '—'}
                            </td>
                            <td>{money(r.redemption.discount_minor, r.redemption.currency)}</td>
                            <td>
                              <AgeCell review={r} />
                            </td>
                            <td>{holder(r)}</td>
                          </tr>
                        );
                      })}
                    </tbody>
                  </table>
                )}
                {page.next_cursor && (
                  <p className="muted small">
                    Showing the oldest {page.data.length}; narrow the filters to see more.
                  </p>
                )}
                {chosen.length > 0 && (
                  <BulkVerdict
                    ids={chosen}
                    done={(summary) => {
                      setNotice(summary);
                      setSelected(new Set());
                      reload();
                    }}
                  />
                )}
              </div>
              {open ? (
                <Case
                  key={open}
                  id={open}
                  version={version}
                  decided={() => {
                    setOpen(null);
                    reload();
                  }}
                  changed={reload}
                  filterCampaign={(campaign) => setFilters({ ...NO_FILTERS, campaign })}
                  selectPerson={(person) => void selectPerson(person)}
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
