/** Marketing: the campaign list, create/edit with the API's validation messages, and one campaign's page. */
import { type FormEvent, useState } from 'react';
import { ApiError, api, fieldErrors, need, problemMessage, type Schema } from '../api.ts';
import { CampaignCharts } from '../campaign-charts.tsx';
import { ImportCodes } from '../code-import.tsx';
import { Link, navigate } from '../router.tsx';
import { count, Empty, ErrorBox, money, Show, Spinner, useLoad, when } from '../ui.tsx';

type Campaign = Schema<'Campaign'>;
type CampaignCreate = Schema<'CampaignCreate'>;

export function StatusBadge({ status }: { status: string }) {
  return <span className={`badge badge-${status}`}>{status}</span>;
}

export function discountText(c: Pick<Campaign, 'discount' | 'currency'>): string {
  const d = c.discount;
  if (d.type === 'fixed_amount') return `${money(d.amount_minor, c.currency)} off`;
  if (d.type === 'percentage') return `${d.basis_points / 100} % off`;
  return 'Free shipping';
}

function SpendBar({ campaign }: { campaign: Campaign }) {
  const { spent_minor: spent, budget_minor: budget, currency } = campaign;
  if (budget === null) return <span>{money(spent, currency)} (no budget)</span>;
  const share = budget === 0 ? 1 : Math.min(1, spent / budget);
  return (
    <span className="spend">
      <meter min={0} max={1} value={share} high={0.8} optimum={0} aria-label="Share of the budget spent" />
      <span>
        {money(spent, currency)} of {money(budget, currency)}
      </span>
    </span>
  );
}

export function CampaignList() {
  const [status, setStatus] = useState<'' | Campaign['status']>('');
  const loaded = useLoad(
    () =>
      need(api.GET('/v1/campaigns', { params: { query: { limit: 100, ...(status ? { status } : {}) } } })),
    [status],
  );
  return (
    <section>
      <div className="page-head">
        <h1>Campaigns</h1>
        <label className="inline">
          Status
          <select value={status} onChange={(e) => setStatus(e.target.value as typeof status)}>
            <option value="">all</option>
            <option value="draft">draft</option>
            <option value="active">active</option>
            <option value="paused">paused</option>
            <option value="ended">ended</option>
          </select>
        </label>
        <Link to="/campaigns/new" className="button primary">
          New campaign
        </Link>
      </div>
      <Show loaded={loaded}>
        {(page) =>
          page.data.length === 0 ? (
            <Empty>
              <p>No campaigns{status ? ` with status ${status}` : ''} yet.</p>
              <p>
                <Link to="/campaigns/new">Create the first one</Link>, then generate its codes.
              </p>
            </Empty>
          ) : (
            <table className="list">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Status</th>
                  <th scope="col">Discount</th>
                  <th scope="col">Spend vs budget</th>
                  <th scope="col">Redemptions</th>
                  <th scope="col">Ends</th>
                </tr>
              </thead>
              <tbody>
                {page.data.map((c) => (
                  <tr key={c.id} data-campaign={c.id}>
                    <td>
                      <Link to={`/campaigns/${c.id}`}>{c.name}</Link>
                    </td>
                    <td>
                      <StatusBadge status={c.status} />
                    </td>
                    <td>{discountText(c)}</td>
                    <td>
                      <SpendBar campaign={c} />
                    </td>
                    <td className="num">
                      {count(c.redemptions_used)}
                      {c.redemption_cap !== null ? ` / ${count(c.redemption_cap)}` : ''}
                    </td>
                    <td>{when(c.ends_at)}</td>
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

interface FormValues {
  name: string;
  currency: string;
  discountType: 'fixed_amount' | 'percentage' | 'free_shipping';
  amount: string;
  percent: string;
  budget: string;
  cap: string;
  perCustomer: string;
  endsAt: string;
  activate: boolean;
}

const blank: FormValues = {
  name: '',
  currency: 'JPY',
  discountType: 'fixed_amount',
  amount: '500',
  percent: '10',
  budget: '',
  cap: '',
  perCustomer: '1',
  endsAt: '',
  activate: true,
};

function fromCampaign(c: Campaign): FormValues {
  return {
    name: c.name,
    currency: c.currency,
    discountType: c.discount.type,
    amount: c.discount.type === 'fixed_amount' ? String(c.discount.amount_minor) : '',
    percent: c.discount.type === 'percentage' ? String(c.discount.basis_points / 100) : '',
    budget: c.budget_minor === null ? '' : String(c.budget_minor),
    cap: c.redemption_cap === null ? '' : String(c.redemption_cap),
    perCustomer: c.per_customer_cap === null ? '' : String(c.per_customer_cap),
    endsAt: c.ends_at ? c.ends_at.slice(0, 16) : '',
    activate: c.status === 'active',
  };
}

/** A number field as the API wants it: an integer, null when empty; a non-number is sent as is for the API to refuse. */
const intOrNull = (text: string): number | null => (text.trim() === '' ? null : Number(text));

function toBody(v: FormValues): CampaignCreate {
  const discount: CampaignCreate['discount'] =
    v.discountType === 'fixed_amount'
      ? { type: 'fixed_amount', amount_minor: Number(v.amount) }
      : v.discountType === 'percentage'
        ? { type: 'percentage', basis_points: Math.round(Number(v.percent) * 100) }
        : { type: 'free_shipping' };
  return {
    name: v.name,
    currency: v.currency.toUpperCase(),
    discount,
    budget_minor: intOrNull(v.budget),
    redemption_cap: intOrNull(v.cap),
    per_customer_cap: intOrNull(v.perCustomer),
    ends_at: v.endsAt ? new Date(v.endsAt).toISOString() : null,
  };
}

function CampaignForm({ initial, campaign }: { initial: FormValues; campaign?: Campaign }) {
  const [v, setV] = useState(initial);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const errors = fieldErrors(error);
  const set = <K extends keyof FormValues>(key: K, value: FormValues[K]) =>
    setV((old) => ({ ...old, [key]: value }));
  const fieldError = (...names: string[]) => {
    const message = names.map((n) => errors[`body/${n}`]).find(Boolean);
    return message ? (
      <span className="field-error" role="alert">
        {message}
      </span>
    ) : null;
  };

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body = toBody(v);
      if (campaign) {
        const { data, error, response } = await api.PATCH('/v1/campaigns/{id}', {
          params: { path: { id: campaign.id } },
          body,
        });
        if (error) throw new ApiError(error, response.status);
        if (response.status === 202) setNotice('The change waits for a second person’s approval.');
        else if (data) navigate(`/campaigns/${campaign.id}`);
      } else {
        const { data, error, response } = await api.POST('/v1/campaigns', {
          body: { ...body, status: v.activate ? 'active' : 'draft' },
        });
        if (error) throw new ApiError(error, response.status);
        const id = data && ('target_id' in data ? data.target_id : data.id);
        if (id) navigate(`/campaigns/${id}`);
      }
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.problem : caught);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="form" onSubmit={submit} noValidate>
      <label>
        Name
        <input value={v.name} onChange={(e) => set('name', e.target.value)} required maxLength={200} />
        {fieldError('name')}
      </label>
      <label>
        Currency (ISO 4217)
        <input
          value={v.currency}
          onChange={(e) => set('currency', e.target.value)}
          disabled={Boolean(campaign)}
          size={4}
        />
        {fieldError('currency')}
      </label>
      <fieldset>
        <legend>Discount</legend>
        <label className="inline">
          <input
            type="radio"
            name="discount"
            checked={v.discountType === 'fixed_amount'}
            onChange={() => set('discountType', 'fixed_amount')}
          />
          Fixed amount
        </label>
        <label className="inline">
          <input
            type="radio"
            name="discount"
            checked={v.discountType === 'percentage'}
            onChange={() => set('discountType', 'percentage')}
          />
          Percentage
        </label>
        <label className="inline">
          <input
            type="radio"
            name="discount"
            checked={v.discountType === 'free_shipping'}
            onChange={() => set('discountType', 'free_shipping')}
          />
          Free shipping
        </label>
        {v.discountType === 'fixed_amount' && (
          <label>
            Amount in minor units (yen, cents)
            <input inputMode="numeric" value={v.amount} onChange={(e) => set('amount', e.target.value)} />
            {fieldError('discount/amount_minor', 'discount')}
          </label>
        )}
        {v.discountType === 'percentage' && (
          <label>
            Percent off
            <input inputMode="decimal" value={v.percent} onChange={(e) => set('percent', e.target.value)} />
            {fieldError('discount/basis_points', 'discount')}
          </label>
        )}
      </fieldset>
      <label>
        Budget in minor units (empty: none)
        <input inputMode="numeric" value={v.budget} onChange={(e) => set('budget', e.target.value)} />
        {fieldError('budget_minor')}
      </label>
      <label>
        Redemption cap (empty: none)
        <input inputMode="numeric" value={v.cap} onChange={(e) => set('cap', e.target.value)} />
        {fieldError('redemption_cap')}
      </label>
      <label>
        Per-customer cap
        <input
          inputMode="numeric"
          value={v.perCustomer}
          onChange={(e) => set('perCustomer', e.target.value)}
        />
        {fieldError('per_customer_cap')}
      </label>
      <label>
        Ends at (your local time; empty: open-ended)
        <input type="datetime-local" value={v.endsAt} onChange={(e) => set('endsAt', e.target.value)} />
        {fieldError('ends_at')}
      </label>
      {!campaign && (
        <label className="inline">
          <input type="checkbox" checked={v.activate} onChange={(e) => set('activate', e.target.checked)} />
          Active at once (otherwise a draft)
        </label>
      )}
      {error !== null && <ErrorBox error={error} />}
      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      <div className="actions">
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Saving…' : campaign ? 'Save changes' : 'Create campaign'}
        </button>
        <Link to={campaign ? `/campaigns/${campaign.id}` : '/campaigns'}>Cancel</Link>
      </div>
    </form>
  );
}

export function CampaignNew() {
  return (
    <section>
      <h1>New campaign</h1>
      <CampaignForm initial={blank} />
    </section>
  );
}

export function CampaignEdit({ id }: { id: string }) {
  const loaded = useLoad(() => need(api.GET('/v1/campaigns/{id}', { params: { path: { id } } })), [id]);
  return (
    <section>
      <h1>Edit campaign</h1>
      <Show loaded={loaded}>{(c) => <CampaignForm initial={fromCampaign(c)} campaign={c} />}</Show>
    </section>
  );
}

/** Codes are generated in slices so a large batch shows its progress (each slice is one atomic batch). */
const SLICE = 1000;

function GenerateCodes({ campaign, done }: { campaign: Campaign; done: () => void }) {
  const [total, setTotal] = useState('100');
  const [prefix, setPrefix] = useState('');
  const [progress, setProgress] = useState<{ made: number; of: number } | null>(null);
  const [error, setError] = useState<unknown>(null);

  async function generate(event: FormEvent) {
    event.preventDefault();
    const of = Number(total);
    if (!Number.isInteger(of) || of < 1) {
      setError(new Error('Enter how many codes to generate: a whole number of at least 1.'));
      return;
    }
    setError(null);
    setProgress({ made: 0, of });
    let made = 0;
    try {
      while (made < of) {
        const n = Math.min(SLICE, of - made);
        await need(
          api.POST('/v1/campaigns/{id}/codes', {
            params: { path: { id: campaign.id } },
            body: { generate: { count: n, ...(prefix ? { prefix } : {}) } },
          }),
        );
        made += n;
        setProgress({ made, of });
      }
      done();
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.problem : caught);
    }
  }

  const running = progress !== null && progress.made < progress.of && error === null;
  return (
    <form className="form compact" onSubmit={generate} aria-label="Generate codes">
      <h2>Generate codes</h2>
      <div className="row">
        <label>
          How many
          <input inputMode="numeric" value={total} onChange={(e) => setTotal(e.target.value)} />
        </label>
        <label>
          Prefix (optional)
          <input value={prefix} onChange={(e) => setPrefix(e.target.value.toUpperCase())} maxLength={16} />
        </label>
        <button type="submit" className="primary" disabled={running}>
          {running ? 'Generating…' : 'Generate'}
        </button>
      </div>
      {progress && (
        <p className="progress-line" role="status">
          <progress max={progress.of} value={progress.made} aria-label="Codes generated" />
          {count(progress.made)} of {count(progress.of)} codes generated
        </p>
      )}
      {error !== null && <ErrorBox error={error} />}
    </form>
  );
}

function CodesTable({ campaignId, version }: { campaignId: string; version: number }) {
  const loaded = useLoad(
    () =>
      need(
        api.GET('/v1/campaigns/{id}/codes', { params: { path: { id: campaignId }, query: { limit: 20 } } }),
      ),
    [campaignId, version],
  );
  const [exporting, setExporting] = useState(false);
  const [error, setError] = useState<unknown>(null);

  async function exportCsv() {
    setExporting(true);
    setError(null);
    try {
      const { data, error, response } = await api.GET('/v1/campaigns/{id}/codes', {
        params: { path: { id: campaignId }, query: { format: 'csv' } },
        parseAs: 'text',
      });
      if (error !== undefined) throw new ApiError(error, response.status);
      const url = URL.createObjectURL(new Blob([data], { type: 'text/csv' }));
      const a = document.createElement('a');
      a.href = url;
      a.download = `${campaignId}-codes.csv`;
      a.click();
      URL.revokeObjectURL(url);
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.problem : caught);
    } finally {
      setExporting(false);
    }
  }

  return (
    <div>
      <div className="page-head">
        <h2>Codes</h2>
        <button type="button" onClick={() => void exportCsv()} disabled={exporting}>
          {exporting ? 'Exporting…' : 'Export CSV'}
        </button>
      </div>
      {error !== null && <ErrorBox error={error} />}
      <Show loaded={loaded}>
        {(page) =>
          page.data.length === 0 ? (
            <Empty>No codes yet: generate a batch above.</Empty>
          ) : (
            <table className="list" aria-label="Codes">
              <thead>
                <tr>
                  <th scope="col">Code</th>
                  <th scope="col">Uses</th>
                  <th scope="col">Status</th>
                  <th scope="col">Partner</th>
                </tr>
              </thead>
              <tbody>
                {page.data.map((code) => (
                  <tr key={code.id}>
                    <td className="mono">{code.code}</td>
                    <td className="num">
                      {code.uses}
                      {code.max_uses !== null ? ` / ${code.max_uses}` : ''}
                    </td>
                    <td>{code.status}</td>
                    <td>{code.partner ?? '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Show>
    </div>
  );
}

function StatusActions({ campaign, changed }: { campaign: Campaign; changed: (c: Campaign) => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const action = campaign.status === 'active' ? 'pause' : campaign.status === 'paused' ? 'resume' : null;
  if (!action) return null;
  async function run() {
    setBusy(true);
    setError(null);
    const path = action === 'pause' ? '/v1/campaigns/{id}/pause' : '/v1/campaigns/{id}/resume';
    const { data, error } = await api.POST(path, {
      params: { path: { id: campaign.id } },
      body: { reason: `${action}d from the console` },
    });
    setBusy(false);
    if (error) setError(error);
    else if (data && 'status' in data && 'name' in data) changed(data as Campaign);
  }
  return (
    <>
      <button type="button" onClick={() => void run()} disabled={busy}>
        {busy ? 'Working…' : action === 'pause' ? 'Pause' : 'Resume'}
      </button>
      {error !== null && <span className="field-error">{problemMessage(error)}</span>}
    </>
  );
}

export function CampaignDetail({ id }: { id: string }) {
  const [codesVersion, setCodesVersion] = useState(0);
  const loaded = useLoad(
    () => need(api.GET('/v1/campaigns/{id}', { params: { path: { id } } })),
    [id, codesVersion],
  );
  if (loaded.state === 'loading') return <Spinner />;
  if (loaded.state === 'error') return <ErrorBox error={loaded.error} retry={loaded.reload} />;
  const c = loaded.data;
  return (
    <section>
      <div className="page-head">
        <h1>{c.name}</h1>
        <StatusBadge status={c.status} />
        <StatusActions campaign={c} changed={() => loaded.reload()} />
        <Link to={`/campaigns/${c.id}/edit`} className="button">
          Edit
        </Link>
      </div>
      <dl className="facts">
        <div>
          <dt>Discount</dt>
          <dd>{discountText(c)}</dd>
        </div>
        <div>
          <dt>Spend</dt>
          <dd>
            <SpendBar campaign={c} />
          </dd>
        </div>
        <div>
          <dt>Redemptions</dt>
          <dd data-testid="redemptions-used">
            {count(c.redemptions_used)}
            {c.redemption_cap !== null ? ` of ${count(c.redemption_cap)}` : ''}
          </dd>
        </div>
        <div>
          <dt>Window</dt>
          <dd>
            {when(c.starts_at)} – {c.ends_at ? when(c.ends_at) : 'open-ended'}
          </dd>
        </div>
        <div>
          <dt>Id</dt>
          <dd className="mono">{c.id}</dd>
        </div>
      </dl>
      <CampaignCharts campaign={c} />
      <div className="grid-2">
        <GenerateCodes campaign={c} done={() => setCodesVersion((n) => n + 1)} />
        <ImportCodes campaignId={c.id} done={() => setCodesVersion((n) => n + 1)} />
      </div>
      <CodesTable campaignId={c.id} version={codesVersion} />
    </section>
  );
}
