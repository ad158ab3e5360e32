/** Email addresses: one mailbox, however its provider lets it be spelled. */
import { CONTROL, toFixedPoint } from './text.js';

/**
 * How one mail provider reads the local part of its own addresses: what it ignores, and where a tag
 * starts. Only domains the provider really runs belong here: stripping a `+tag` on a domain where `+`
 * is an ordinary character would merge two different mailboxes. A missing country variant only means a
 * tag is not stripped. docs/abuse-defenses.md has this table in prose.
 */
export interface MailProvider {
  name: string;
  domains: readonly string[];
  /** Every domain of the provider names the same mailbox, written this way (Gmail, Proton). */
  canonicalDomain?: string;
  /** Characters that start a tag: the mailbox is the part before the first of them. */
  tagSeparators: readonly string[];
  /** Characters the provider ignores in the local part (Gmail: dots; Proton: dots, hyphens, underscores). */
  ignored?: readonly string[];
  /**
   * Yahoo's disposable addresses are `base-keyword@`: the base is chosen once per account and is not
   * the account's own name, so every keyword of one base is one owner but not the account's mailbox.
   * The address keeps `base-` (a name no Yahoo account can have, hyphens not being allowed in one).
   */
  keepsBase?: boolean;
  /** `anything@user.fastmail.com` delivers to `user@fastmail.com` (Fastmail's subdomain addressing). */
  subdomainAddressing?: boolean;
}

export const MAIL_PROVIDERS: readonly MailProvider[] = [
  {
    name: 'Gmail',
    domains: ['gmail.com', 'googlemail.com'],
    canonicalDomain: 'gmail.com',
    tagSeparators: ['+'],
    ignored: ['.'],
  },
  {
    name: 'Microsoft (Outlook, Hotmail, Live, MSN)',
    domains: [
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
    ],
    tagSeparators: ['+'],
  },
  {
    // Not yahoo.co.jp: Yahoo Japan is a different company with its own rules.
    name: 'Yahoo',
    domains: [
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
    ],
    tagSeparators: ['+', '-'],
    keepsBase: true,
  },
  { name: 'Apple iCloud', domains: ['icloud.com', 'me.com', 'mac.com'], tagSeparators: ['+'] },
  {
    // One account answers at all four domains, and Proton reads `a.b`, `a-b`, `a_b` and `ab` as one name.
    name: 'Proton Mail',
    domains: ['proton.me', 'protonmail.com', 'protonmail.ch', 'pm.me'],
    canonicalDomain: 'proton.me',
    tagSeparators: ['+'],
    ignored: ['.', '-', '_'],
  },
  {
    name: 'Fastmail',
    domains: ['fastmail.com', 'fastmail.fm'],
    tagSeparators: ['+'],
    subdomainAddressing: true,
  },
  { name: 'Zoho Mail', domains: ['zoho.com', 'zohomail.com'], tagSeparators: ['+'] },
  {
    name: 'Yandex Mail',
    domains: ['yandex.com', 'yandex.ru', 'ya.ru', 'yandex.by', 'yandex.kz', 'yandex.ua'],
    tagSeparators: ['+'],
  },
];

const PROVIDER_BY_DOMAIN = new Map(MAIL_PROVIDERS.flatMap((p) => p.domains.map((d) => [d, p] as const)));

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

/** Maps look-alike characters to one prototype (see confusables.ts); the identity without one. */
export type TextFold = (text: string) => string;

function tagless(local: string, provider: MailProvider): string {
  let cut = -1;
  for (const sep of provider.tagSeparators) {
    const at = local.indexOf(sep);
    if (at !== -1 && (cut === -1 || at < cut)) cut = at;
  }
  if (cut === -1) return local;
  const base = local.slice(0, cut);
  return provider.keepsBase && local[cut] === '-' && base.length > 0 ? `${base}-` : base;
}

function emailStep(raw: string, fold: TextFold | undefined): string | null {
  let address = raw.normalize('NFKC').trim().toLowerCase();
  // Look-alike letters (a Cyrillic `о` in `jоhn`, a Greek `ο` in `gmail`) read as their prototype, so
  // `jоhn@gmаil.com` is the mailbox it imitates; before the provider rules, so a disguised domain is
  // still recognised.
  if (fold) address = fold(address).normalize('NFKC').toLowerCase();
  if (address.length === 0 || address.length > MAX_EMAIL_LENGTH || CONTROL.test(address)) return null;
  const parts = address.split('@');
  if (parts.length !== 2) return null;
  let [local, domain] = parts as [string, string];
  // `gmail.com.` is the same domain written as a fully qualified name.
  if (domain.endsWith('.')) domain = domain.slice(0, -1);
  if (local.length === 0 || local.length > MAX_LOCAL_LENGTH || !isDomain(domain)) return null;
  let provider = PROVIDER_BY_DOMAIN.get(domain);
  if (!provider) {
    // Fastmail: `shop@jane.fastmail.com` is jane's mailbox.
    const dot = domain.indexOf('.');
    const parent = PROVIDER_BY_DOMAIN.get(domain.slice(dot + 1));
    if (parent?.subdomainAddressing && domain.slice(0, dot).length > 0) {
      local = domain.slice(0, dot);
      domain = domain.slice(dot + 1);
      provider = parent;
    }
  }
  const ignoresDots = provider?.ignored?.includes('.') === true;
  // Quoted local parts and spaces are legal in RFC 5322 but no consumer mailbox uses them; refusing
  // them keeps one spelling per mailbox. Where dots are ignored, `a..b` is simply `ab`.
  if (!isDotAtom(local) && !ignoresDots) return null;
  if (!provider) return `${local}@${domain}`;

  // The provider delivers every tagged (and, where it ignores them, dotted) variant to one inbox, so
  // they must link: keep the part before the first tag separator, drop what it ignores, and write the
  // domain one way.
  local = tagless(local, provider);
  for (const ch of provider.ignored ?? []) local = local.replaceAll(ch, '');
  domain = provider.canonicalDomain ?? domain;
  // `john.+x@outlook.com` would leave `john.`, which is not a mailbox name; nor is an empty one.
  if (local.length === 0 || !isDotAtom(local)) return null;
  return `${local}@${domain}`;
}

/**
 * The mailbox an address delivers to: lower case; look-alike characters outside ASCII read as the
 * letter they imitate (when a `fold` is given: UTS #39 skeletons, see confusables.ts); for the
 * providers in MAIL_PROVIDERS, tags and ignored characters removed and the domain written one way;
 * the local part of any other domain kept as typed (only lower-cased), since we cannot know how that
 * server reads it.
 */
export function normalizeEmail(raw: string, fold?: TextFold): string | null {
  if (raw.length > MAX_EMAIL_LENGTH * 4) return null;
  return toFixedPoint(raw, (s) => emailStep(s, fold));
}

/** The domain of an address as normalizeEmail writes it (for the disposable-domain signal). */
export function emailDomain(normalized: string): string {
  return normalized.slice(normalized.lastIndexOf('@') + 1);
}
