/**
 * Disposable (throwaway) mail domains, from the `mailchecker` package's list (tens of thousands of
 * domains, updated with each release). A subdomain of a listed domain counts as listed, since many
 * throwaway services hand out `anything.their-domain`.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const LISTED: ReadonlySet<string> = (require('mailchecker') as { blacklist(): Set<string> }).blacklist();

/** Whether the domain (lower case, as normalizeEmail writes it) or one of its parents is listed. */
export function isDisposableDomain(domain: string): boolean {
  for (let d = domain; d.includes('.'); d = d.slice(d.indexOf('.') + 1)) {
    if (LISTED.has(d)) return true;
  }
  return false;
}
