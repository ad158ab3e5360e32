/** Email addresses: one mailbox, however its provider lets it be spelled. */
import { CONTROL, toFixedPoint } from './text.js';

/** Google ignores dots in the local part and everything after `+`; both domains are one mailbox. */
const GMAIL_DOMAINS = new Set(['gmail.com', 'googlemail.com']);

/**
 * Providers that deliver `name+tag@` to `name@` but treat dots as significant. Only domains the
 * provider really runs belong here: stripping `+tag` on a domain where `+` is an ordinary character
 * would merge two different mailboxes. A missing country variant only means a tag is not stripped.
 */
const PLUS_TAG_DOMAINS = new Set([
  // Microsoft consumer mail
  'outlook.com',
  'outlook.at',
  'outlook.be',
  'outlook.cl',
  'outlook.co.id',
  'outlook.co.il',
  'outlook.co.nz',
  'outlook.co.th',
  'outlook.com.ar',
  'outlook.com.au',
  'outlook.com.br',
  'outlook.com.gr',
  'outlook.com.tr',
  'outlook.com.vn',
  'outlook.cz',
  'outlook.de',
  'outlook.dk',
  'outlook.es',
  'outlook.fr',
  'outlook.hu',
  'outlook.ie',
  'outlook.in',
  'outlook.it',
  'outlook.jp',
  'outlook.kr',
  'outlook.lv',
  'outlook.my',
  'outlook.ph',
  'outlook.pt',
  'outlook.sa',
  'outlook.sg',
  'outlook.sk',
  'hotmail.com',
  'hotmail.be',
  'hotmail.ca',
  'hotmail.ch',
  'hotmail.cl',
  'hotmail.co.jp',
  'hotmail.co.nz',
  'hotmail.co.th',
  'hotmail.co.uk',
  'hotmail.com.ar',
  'hotmail.com.au',
  'hotmail.com.br',
  'hotmail.com.mx',
  'hotmail.com.tr',
  'hotmail.de',
  'hotmail.dk',
  'hotmail.es',
  'hotmail.fi',
  'hotmail.fr',
  'hotmail.gr',
  'hotmail.it',
  'hotmail.nl',
  'hotmail.no',
  'hotmail.se',
  'live.com',
  'live.at',
  'live.be',
  'live.ca',
  'live.cl',
  'live.co.uk',
  'live.co.za',
  'live.com.ar',
  'live.com.au',
  'live.com.mx',
  'live.de',
  'live.dk',
  'live.fr',
  'live.ie',
  'live.in',
  'live.it',
  'live.jp',
  'live.nl',
  'live.no',
  'live.se',
  'msn.com',
  'passport.com',
  'windowslive.com',
  // Yahoo (not yahoo.co.jp: Yahoo Japan is a different company with its own rules)
  'yahoo.com',
  'yahoo.ca',
  'yahoo.co.id',
  'yahoo.co.in',
  'yahoo.co.nz',
  'yahoo.co.th',
  'yahoo.co.uk',
  'yahoo.com.ar',
  'yahoo.com.au',
  'yahoo.com.br',
  'yahoo.com.hk',
  'yahoo.com.mx',
  'yahoo.com.ph',
  'yahoo.com.sg',
  'yahoo.com.tw',
  'yahoo.com.vn',
  'yahoo.de',
  'yahoo.dk',
  'yahoo.es',
  'yahoo.fr',
  'yahoo.gr',
  'yahoo.ie',
  'yahoo.in',
  'yahoo.it',
  'yahoo.no',
  'yahoo.se',
  'ymail.com',
  'rocketmail.com',
  // Apple
  'icloud.com',
  'me.com',
  'mac.com',
]);

const MAX_EMAIL_LENGTH = 254;
const MAX_LOCAL_LENGTH = 64;
/** RFC 5322 atext plus letters and digits of any script (RFC 6531 internationalized addresses). */
const LOCAL_ATOM = /^[\p{L}\p{N}\p{M}!#$%&'*+/=?^_`{|}~-]+$/u;
const DOMAIN_LABEL = /^[\p{L}\p{N}\p{M}](?:[\p{L}\p{N}\p{M}-]*[\p{L}\p{N}\p{M}])?$/u;

/** Dot-atom: atoms joined by single dots, so no leading, trailing or doubled dot. */
function isDotAtom(local: string): boolean {
  return local.split('.').every((atom) => LOCAL_ATOM.test(atom));
}

function isDomain(domain: string): boolean {
  if (domain.length > 253) return false;
  const labels = domain.split('.');
  // A domain needs a dot; an all-digit last label means an IP address, which is not a mail domain.
  if (labels.length < 2 || /^\d+$/.test(labels[labels.length - 1] as string)) return false;
  return labels.every((label) => label.length <= 63 && DOMAIN_LABEL.test(label));
}

function emailStep(raw: string): string | null {
  const address = raw.normalize('NFKC').trim().toLowerCase();
  if (address.length === 0 || address.length > MAX_EMAIL_LENGTH || CONTROL.test(address)) return null;
  const parts = address.split('@');
  if (parts.length !== 2) return null;
  let [local, domain] = parts as [string, string];
  // `gmail.com.` is the same domain written as a fully qualified name.
  if (domain.endsWith('.')) domain = domain.slice(0, -1);
  if (local.length === 0 || local.length > MAX_LOCAL_LENGTH || !isDomain(domain)) return null;
  // Quoted local parts and spaces are legal in RFC 5322 but no consumer mailbox uses them; refusing
  // them keeps one spelling per mailbox.
  if (!isDotAtom(local) && !GMAIL_DOMAINS.has(domain)) return null;

  if (GMAIL_DOMAINS.has(domain)) {
    // Gmail delivers every dot and +tag variant to one inbox, so they must link: keep the part before
    // the first `+`, drop every dot, and write the domain one way.
    local = (local.split('+')[0] as string).replaceAll('.', '');
    domain = 'gmail.com';
    if (!LOCAL_ATOM.test(local)) return null;
  } else if (PLUS_TAG_DOMAINS.has(domain)) {
    local = local.split('+')[0] as string;
    // `john.+x@outlook.com` would leave `john.`, which is not a mailbox name.
    if (!isDotAtom(local)) return null;
  }
  return `${local}@${domain}`;
}

/**
 * The mailbox an address delivers to: lower case; Gmail dots and `+tags` removed and googlemail.com
 * written gmail.com; `+tags` removed for Microsoft, Yahoo and Apple mail; the local part of any other
 * domain kept as typed (only lower-cased), since we cannot know how that server reads it.
 */
export function normalizeEmail(raw: string): string | null {
  if (raw.length > MAX_EMAIL_LENGTH * 4) return null;
  return toFixedPoint(raw, emailStep);
}
