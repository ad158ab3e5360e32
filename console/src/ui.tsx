/** The console's small shared pieces: loading, error and empty states, a loader hook, formatting. */
import { type ReactNode, useCallback, useEffect, useRef, useState } from 'react';
import { problemMessage } from './api.ts';

export function Spinner({ label = 'Loading…' }: { label?: string }) {
  return (
    <div className="loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" />
      {label}
    </div>
  );
}

export function ErrorBox({ error, retry }: { error: unknown; retry?: () => void }) {
  return (
    <div className="error" role="alert">
      <p>{problemMessage(error)}</p>
      {retry && (
        <button type="button" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>;
}

/** A number that changes whenever one of `deps` changes (compared with Object.is, as React does). */
function useKey(deps: unknown[]): number {
  const last = useRef<{ deps: unknown[]; key: number }>({ deps, key: 0 });
  const same =
    last.current.deps.length === deps.length && last.current.deps.every((d, i) => Object.is(d, deps[i]));
  if (!same) last.current = { deps, key: last.current.key + 1 };
  return last.current.key;
}

export type Loaded<T> =
  | { state: 'loading'; reload: () => void }
  | { state: 'error'; error: unknown; reload: () => void }
  | { state: 'ready'; data: T; reload: () => void };

/** Runs `load` on mount and whenever `deps` change; `reload` runs it again. Stale answers are dropped. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [result, setResult] = useState<
    { state: 'loading' } | { state: 'error'; error: unknown } | { state: 'ready'; data: T }
  >({ state: 'loading' });
  const generation = useRef(0);
  const latest = useRef(load);
  latest.current = load;
  // The caller names what the load depends on; a change of any of them is a new key.
  const key = useKey(deps);
  const run = useCallback(() => {
    const mine = ++generation.current;
    latest.current().then(
      (data) => mine === generation.current && setResult({ state: 'ready', data }),
      (error: unknown) => mine === generation.current && setResult({ state: 'error', error }),
    );
  }, []);
  useEffect(() => {
    if (key < 0) return;
    // A reload keeps what is shown until the new answer arrives: forms below it keep their state.
    setResult((was) => (was.state === 'ready' ? was : { state: 'loading' }));
    run();
  }, [run, key]);
  return { ...result, reload: run } as Loaded<T>;
}

/** Shows the loading, error or ready state of a load. */
export function Show<T>({ loaded, children }: { loaded: Loaded<T>; children: (data: T) => ReactNode }) {
  if (loaded.state === 'loading') return <Spinner />;
  if (loaded.state === 'error') return <ErrorBox error={loaded.error} retry={loaded.reload} />;
  return <>{children(loaded.data)}</>;
}

/** An amount in minor units of a currency, in the reader's locale (¥500, $12.50). */
export function money(minor: number, currency: string, locale?: string): string {
  const format = new Intl.NumberFormat(locale, { style: 'currency', currency });
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  return format.format(minor / 10 ** digits);
}

export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function count(n: number): string {
  return new Intl.NumberFormat().format(n);
}
