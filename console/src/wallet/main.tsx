/**
 * The customer's coupon wallet, for a storefront to embed (an iframe of /console/wallet.html). The shop
 * passes a customer token and its points program in the URL fragment, which never reaches a server
 * log: `#token=pgc_…&program=pp_…&min=100&step=100&max=10000&daily=30000&locale=ja-JP`.
 * Every call is made with the token alone, through the typed client.
 */
import { type FormEvent, StrictMode, useCallback, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import {
  createPromoguardClient,
  idempotent,
  isProblem,
  type Schema,
} from '../../../clients/typescript/src/index.ts';

type Coupon = Schema<'Coupon'>;

const params = new URLSearchParams(window.location.hash.slice(1));
const token = params.get('token') ?? '';
const locale = params.get('locale') ?? navigator.language;
const programId = params.get('program');
const rules = {
  min: Number(params.get('min') ?? 100),
  step: Number(params.get('step') ?? 100),
  max: Number(params.get('max') ?? 10_000),
  daily: Number(params.get('daily') ?? 30_000),
};
// Out of the address bar and history once read: the token is a credential.
window.history.replaceState(null, '', window.location.pathname);

/** The customer a token names (its claim `c`); the API checks the signature, this only reads it. */
function customerOf(credential: string): string | null {
  const body = /^pgc_([A-Za-z0-9_-]+)\./.exec(credential)?.[1];
  if (!body) return null;
  try {
    const json = JSON.parse(atob(body.replace(/-/g, '+').replace(/_/g, '/'))) as { c?: unknown };
    return typeof json.c === 'string' ? json.c : null;
  } catch {
    return null;
  }
}

const customerId = customerOf(token);
const client = createPromoguardClient({ baseUrl: window.location.origin, credential: token });

const ja = locale.toLowerCase().startsWith('ja');
const text = ja
  ? {
      title: 'クーポン',
      none: 'まだクーポンはありません。ポイントをクーポンに交換できます。',
      code: 'コード',
      amount: '割引額',
      expires: '有効期限',
      status: '状態',
      unused: '未使用',
      used: '使用済み',
      expired: '期限切れ',
      revoked: '無効',
      copy: 'コードをコピー',
      copied: 'コピーしました',
      off: (a: string) => `${a}引き`,
      points: 'ポイント残高',
      convert: 'ポイントをクーポンに交換',
      pointsField: '交換するポイント',
      convertButton: '交換する',
      guide: 'クーポンの使い方',
      steps: [
        'カートに商品を入れる',
        'レジに進む',
        'クーポンコード欄を探す',
        'コードを入力または貼り付ける',
        '「適用」を押す',
        '割引が反映されたことを確認する',
      ],
      reload: '再読み込み',
    }
  : {
      title: 'Your coupons',
      none: 'No coupons yet. You can turn your points into a coupon below.',
      code: 'Code',
      amount: 'Amount',
      expires: 'Expires',
      status: 'Status',
      unused: 'Unused',
      used: 'Used',
      expired: 'Expired',
      revoked: 'Revoked',
      copy: 'Copy code',
      copied: 'Copied',
      off: (a: string) => `${a} off`,
      points: 'Points balance',
      convert: 'Turn points into a coupon',
      pointsField: 'Points to convert',
      convertButton: 'Convert',
      guide: 'How to use a coupon',
      steps: [
        'Add the items you want to your cart',
        'Go to checkout',
        'Find the coupon code field',
        'Type or paste the code',
        'Select “Apply”',
        'Check that the discount is shown before you pay',
      ],
      reload: 'Reload',
    };

function money(minor: number, currency: string): string {
  const format = new Intl.NumberFormat(locale, { style: 'currency', currency });
  return format.format(minor / 10 ** (format.resolvedOptions().maximumFractionDigits ?? 2));
}

function day(iso: string): string {
  return new Date(iso).toLocaleDateString(locale, { dateStyle: 'long' });
}

const number = (n: number) => new Intl.NumberFormat(locale).format(n);

function CopyButton({ code }: { code: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <button
      type="button"
      className="copy"
      onClick={() =>
        void navigator.clipboard.writeText(code).then(() => {
          setCopied(true);
          window.setTimeout(() => setCopied(false), 2000);
        })
      }
      aria-label={`${copied ? text.copied : text.copy} ${code}`}
    >
      {copied ? text.copied : text.copy}
    </button>
  );
}

function CouponCard({ coupon, fresh }: { coupon: Coupon; fresh: boolean }) {
  return (
    <li className={`coupon coupon-${coupon.status}${fresh ? ' fresh' : ''}`} data-code={coupon.code}>
      <div className="amount">
        {coupon.amount_minor === null ? '—' : text.off(money(coupon.amount_minor, coupon.currency))}
      </div>
      <div className="code">
        <span className="label">{text.code}</span> <span className="mono">{coupon.code}</span>
      </div>
      <div className="expires">
        <span className="label">{text.expires}</span> {coupon.expires_at ? day(coupon.expires_at) : '—'}
      </div>
      <div className="status">
        {coupon.status === 'unused' && (
          <>
            <span className="pill pill-unused">{text.unused}</span> <CopyButton code={coupon.code} />
          </>
        )}
        {coupon.status === 'used' && (
          <span className="pill pill-used">
            {text.used}
            {coupon.used_at ? ` (${day(coupon.used_at)})` : ''}
          </span>
        )}
        {coupon.status === 'expired' && <span className="pill pill-expired">{text.expired}</span>}
        {coupon.status === 'revoked' && <span className="pill pill-revoked">{text.revoked}</span>}
      </div>
    </li>
  );
}

/** What is wrong with an amount of points under the program's rules, or null: said before asking the API. */
function pointsProblem(points: number, balance: number, convertedToday: number): string | null {
  if (!Number.isInteger(points) || points <= 0)
    return ja ? 'ポイント数を入力してください。' : 'Enter a number of points.';
  if (points < rules.min)
    return ja
      ? `${number(rules.min)}ポイント以上で交換できます。`
      : `The smallest conversion is ${number(rules.min)} points.`;
  if (points % rules.step !== 0)
    return ja
      ? `${number(rules.step)}ポイント単位で交換してください。`
      : `Convert in steps of ${number(rules.step)} points (e.g. ${number(Math.floor(points / rules.step) * rules.step || rules.min)}).`;
  if (points > rules.max)
    return ja
      ? `1回の交換は${number(rules.max)}ポイントまでです。`
      : `At most ${number(rules.max)} points per conversion.`;
  if (convertedToday + points > rules.daily)
    return ja
      ? `本日あと${number(Math.max(0, rules.daily - convertedToday))}ポイントまで交換できます。`
      : `You can convert ${number(Math.max(0, rules.daily - convertedToday))} more points today.`;
  if (points > balance) return ja ? 'ポイントが足りません。' : `You have ${number(balance)} points.`;
  return null;
}

function Wallet({ customer }: { customer: string }) {
  const [coupons, setCoupons] = useState<Coupon[] | null>(null);
  const [points, setPoints] = useState<{ balance: number; converted_today: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [amount, setAmount] = useState(String(rules.min));
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ kind: 'ok' | 'bad'; text: string } | null>(null);
  const [fresh, setFresh] = useState<string | null>(null);

  const load = useCallback(async () => {
    setError(null);
    const path = { params: { path: { id: customer } } };
    const [c, p] = await Promise.all([
      client.GET('/v1/customers/{id}/coupons', { params: { path: { id: customer }, query: { limit: 100 } } }),
      client.GET('/v1/customers/{id}/points', path),
    ]);
    if (c.data) setCoupons(c.data.data);
    if (p.data) setPoints({ balance: p.data.balance, converted_today: p.data.converted_today });
    const failed = c.error ?? p.error;
    if (failed)
      setError(
        c.response.status === 401 || p.response.status === 401
          ? ja
            ? '表示期限が切れました。ページを再読み込みしてください。'
            : 'This page has expired. Reload the page to see your coupons.'
          : isProblem(failed)
            ? (failed.detail ?? failed.title)
            : 'Something went wrong.',
      );
  }, [customer]);

  useEffect(() => {
    load().catch(() =>
      setError(ja ? '接続できませんでした。' : 'We could not reach the service. Try again.'),
    );
  }, [load]);

  async function convert(event: FormEvent) {
    event.preventDefault();
    if (!programId || !points) return;
    const n = Number(amount);
    const wrong = pointsProblem(n, points.balance, points.converted_today);
    if (wrong) {
      setMessage({ kind: 'bad', text: wrong });
      return;
    }
    setBusy(true);
    setMessage(null);
    try {
      const { data, error } = await client.POST('/v1/customers/{id}/conversions', {
        params: { path: { id: customer }, header: idempotent() },
        body: { program_id: programId, points: n },
      });
      if (data) {
        setFresh(data.coupon.code);
        setMessage({
          kind: 'ok',
          text: ja
            ? `${number(n)}ポイントを${money(data.coupon.amount_minor, data.coupon.currency)}のクーポンに交換しました。`
            : `Converted ${number(n)} points into a ${money(data.coupon.amount_minor, data.coupon.currency)} coupon.`,
        });
        await load();
      } else
        setMessage({
          kind: 'bad',
          text: isProblem(error) ? (error.detail ?? error.title) : 'Not converted.',
        });
    } finally {
      setBusy(false);
    }
  }

  const problem = points ? pointsProblem(Number(amount), points.balance, points.converted_today) : null;
  return (
    <>
      <h1>{text.title}</h1>
      {error && (
        <div className="error" role="alert">
          <p>{error}</p>
          <button type="button" onClick={() => void load()}>
            {text.reload}
          </button>
        </div>
      )}
      {coupons === null && !error ? (
        <p className="loading" role="status">
          …
        </p>
      ) : coupons && coupons.length === 0 ? (
        <p className="empty">{text.none}</p>
      ) : (
        <ul className="coupons" aria-label={text.title}>
          {(coupons ?? []).map((c) => (
            <CouponCard key={c.code} coupon={c} fresh={c.code === fresh} />
          ))}
        </ul>
      )}
      {points && (
        <section className="points" aria-labelledby="points-title">
          <h2 id="points-title">
            {text.points}: <span data-testid="balance">{number(points.balance)}</span> pt
          </h2>
          {programId && (
            <form onSubmit={convert} noValidate>
              <h3>{text.convert}</h3>
              <p className="hint">
                {ja
                  ? `${number(rules.min)}ポイント以上、${number(rules.step)}ポイント単位、1回${number(rules.max)}ポイントまで（1日${number(rules.daily)}ポイントまで）`
                  : `From ${number(rules.min)} points, in steps of ${number(rules.step)}, at most ${number(rules.max)} at once and ${number(rules.daily)} a day.`}
              </p>
              <label>
                {text.pointsField}
                <input
                  type="number"
                  inputMode="numeric"
                  min={rules.min}
                  step={rules.step}
                  max={rules.max}
                  value={amount}
                  onChange={(e) => setAmount(e.target.value)}
                  aria-invalid={problem !== null}
                  aria-describedby="convert-message"
                />
              </label>
              <button type="submit" disabled={busy}>
                {busy ? '…' : text.convertButton}
              </button>
              <p id="convert-message" className={message?.kind === 'ok' ? 'ok' : 'bad'} role="status">
                {message?.text ?? (amount !== '' ? problem : null)}
              </p>
            </form>
          )}
        </section>
      )}
      <section className="guide" aria-labelledby="guide-title">
        <h2 id="guide-title">{text.guide}</h2>
        <ol>
          {text.steps.map((step) => (
            <li key={step}>{step}</li>
          ))}
        </ol>
      </section>
    </>
  );
}

const root = document.getElementById('wallet');
if (root) {
  document.documentElement.lang = ja ? 'ja' : 'en';
  createRoot(root).render(
    <StrictMode>
      {customerId ? (
        <Wallet customer={customerId} />
      ) : (
        <p className="error" role="alert">
          {ja
            ? 'このページを表示できません。ショップから開き直してください。'
            : 'This page cannot be shown. Open it again from the shop.'}
        </p>
      )}
    </StrictMode>,
  );
}
