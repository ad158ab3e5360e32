/**
 * The alias tricks a multi-accounter uses, and the honest spellings that must stay apart: provider
 * sub-addressing, look-alike letters (UTS #39 skeletons), made-up units and transposed street words.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  addressPlaceKey,
  confusableSkeleton,
  MAIL_PROVIDERS,
  normalizeAddress,
  normalizeEmail,
  type PostalAddress,
} from '../../src/domain/identity/index.js';
import { confusableFold } from '../../src/security/confusables.js';
import { isDisposableDomain } from '../../src/security/disposable-email.js';

const email = (raw: string) => normalizeEmail(raw, confusableFold);

describe('provider-aware email tags', () => {
  it.each([
    // Gmail: dots and +tags, two domains
    ['J.Doe+shop@googlemail.com', 'jdoe@gmail.com'],
    // Microsoft: +tags, dots kept
    ['j.doe+shop@outlook.com', 'j.doe@outlook.com'],
    ['j.doe+1@hotmail.co.uk', 'j.doe@hotmail.co.uk'],
    ['j.doe+1@live.com', 'j.doe@live.com'],
    // Apple
    ['j.doe+1@icloud.com', 'j.doe@icloud.com'],
    ['j.doe+1@me.com', 'j.doe@me.com'],
    // Proton: four domains, one account; dots, hyphens and underscores ignored; +tags
    ['jane.doe+shop@protonmail.com', 'janedoe@proton.me'],
    ['jane-doe@pm.me', 'janedoe@proton.me'],
    ['jane_doe+x@protonmail.ch', 'janedoe@proton.me'],
    ['janedoe@proton.me', 'janedoe@proton.me'],
    // Fastmail: +tags and subdomain addressing
    ['jane+shop@fastmail.com', 'jane@fastmail.com'],
    ['shop@jane.fastmail.com', 'jane@fastmail.com'],
    ['jane+a@fastmail.fm', 'jane@fastmail.fm'],
    // Yahoo: +tags dropped; `base-keyword` disposable addresses keep their base
    ['jane.doe+1@yahoo.com', 'jane.doe@yahoo.com'],
    ['shopper-deals1@yahoo.com', 'shopper-@yahoo.com'],
    ['shopper-deals2@yahoo.co.uk', 'shopper-@yahoo.co.uk'],
    // Zoho and Yandex: +tags
    ['jane+1@zohomail.com', 'jane@zohomail.com'],
    ['jane+1@yandex.ru', 'jane@yandex.ru'],
  ])('%s is the mailbox %s', (raw, expected) => {
    expect(email(raw)).toBe(expected);
  });

  it('keeps a Yahoo base name apart from the account of the same name', () => {
    expect(email('shopper-deals@yahoo.com')).not.toBe(email('shopper@yahoo.com'));
  });

  it('keeps tags and dots at unknown domains, where they may name different mailboxes', () => {
    expect(email('jane+1@acme.io')).toBe('jane+1@acme.io');
    expect(email('ja.ne@acme.io')).not.toBe(email('jane@acme.io'));
    expect(email('shop@jane.acme.io')).toBe('shop@jane.acme.io');
  });

  it('refuses an address whose mailbox is only a tag', () => {
    expect(email('+x@proton.me')).toBeNull();
    expect(email('-x@yahoo.com')).toBeNull();
  });

  it('lists each provider domain once', () => {
    const domains = MAIL_PROVIDERS.flatMap((p) => p.domains);
    expect(new Set(domains).size).toBe(domains.length);
  });

  it('is a fixed point for every provider: a normalized address normalizes to itself', () => {
    const providerDomain = fc.constantFrom(...MAIL_PROVIDERS.flatMap((p) => p.domains));
    const local = fc.stringMatching(/^[a-z0-9][a-z0-9._+-]{0,20}[a-z0-9]$/);
    fc.assert(
      fc.property(local, providerDomain, (l, d) => {
        const once = email(`${l}@${d}`);
        if (once !== null) expect(email(once)).toBe(once);
      }),
    );
  });
});

describe('confusable skeletons (UTS #39)', () => {
  it.each([
    ['jоhn@gmail.com', 'john@gmail.com'], // Cyrillic о
    ['JОHN@GMAIL.COM', 'john@gmail.com'], // Cyrillic О, upper case
    ['јane.doe@outlook.com', 'jane.doe@outlook.com'], // Cyrillic ј
    ['john@gmаil.com', 'john@gmail.com'], // a Cyrillic а in the domain still reaches the Gmail rules
    ['j.о.hn+1@gmail.com', 'john@gmail.com'],
    ['ѕhopper@proton.me', 'shopper@proton.me'], // Cyrillic ѕ
    ['jοhn@icloud.com', 'john@icloud.com'], // Greek ο
    ['shɑpper@yahoo.com', 'shapper@yahoo.com'], // Latin alpha ɑ
  ])('%s reads as %s', (raw, expected) => {
    expect(email(raw)).toBe(expected);
  });

  it('keeps ASCII letters that only resemble each other apart (rn and m, 1 and l, 0 and o)', () => {
    expect(email('modern@gmail.com')).not.toBe(email('rnodern@gmail.com'));
    expect(email('bill1@gmail.com')).not.toBe(email('billl@gmail.com'));
    expect(email('b0b@gmail.com')).not.toBe(email('bob@gmail.com'));
  });

  it('keeps accented letters, which are not confusable with the bare letter', () => {
    expect(email('josé@acme.io')).toBe('josé@acme.io');
  });

  it('keeps a whole-script name that has no Latin look-alike', () => {
    expect(email('иван@почта.рф')).not.toBeNull();
    expect(email('иван@почта.рф')).toBe(email('ИВАН@ПОЧТА.РФ'));
  });

  it('takes its prototypes from the table it is given, so the domain stays pure', () => {
    expect(confusableSkeleton('pаy', (cp) => (cp === 'а' ? 'a' : undefined))).toBe('pay');
    expect(confusableSkeleton('pаy', () => undefined)).toBe('pаy');
  });

  it('reaches a fixed point on every confusable code point the table lists', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z]{1,6}$/), fc.integer({ min: 0x80, max: 0x2ffff }), (base, cp) => {
        const ch = String.fromCodePoint(cp);
        const once = email(`${base}${ch}@acme.io`);
        if (once !== null) expect(email(once)).toBe(once);
      }),
      { numRuns: 2000 },
    );
  });

  it('folds look-alike letters in an address too', () => {
    const home: PostalAddress = {
      line1: '12 Oak Street',
      city: 'Austin',
      region: 'TX',
      postal_code: '78701',
    };
    expect(normalizeAddress({ ...home, line1: '12 Оak Street' }, confusableFold)).toBe(
      normalizeAddress(home, confusableFold),
    );
  });
});

describe('the building of an address', () => {
  const home: PostalAddress = {
    line1: '4521 Maple Hill Road',
    city: 'Portland',
    region: 'OR',
    postal_code: '97201',
    country: 'US',
  };
  const place = (a: PostalAddress) => addressPlaceKey(a, confusableFold);

  it.each([
    [{ ...home, line2: 'Apt 7' }],
    [{ ...home, line2: '#31' }],
    [{ ...home, line2: 'Unit 4B' }],
    [{ ...home, line2: 'Suite 400' }],
    [{ ...home, line2: 'Fl 3' }],
    [{ ...home, line1: '4521 Maple Hill Road Apt 12' }],
    [{ ...home, line1: '4521 Hill Maple Road' }],
    [{ ...home, line1: '4521 Road Hill Maple', line2: 'Apt. 9' }],
    [{ ...home, line1: '4521 Maple Hill Rd.' }],
  ])('links a made-up unit or a transposed street to the same building: %o', (variant) => {
    expect(place(variant)).toBe(place(home));
  });

  it('keeps the exact address (with its unit) as its own key', () => {
    expect(normalizeAddress({ ...home, line2: 'Apt 7' })).not.toBe(
      normalizeAddress({ ...home, line2: 'Apt 8' }),
    );
    expect(place(home)?.startsWith('place|')).toBe(true);
    expect(place(home)).not.toBe(normalizeAddress(home));
  });

  it('keeps different buildings apart: another number, street, city or postal code', () => {
    expect(place({ ...home, line1: '4512 Maple Hill Road' })).not.toBe(place(home));
    expect(place({ ...home, line1: '4521 Maple Road' })).not.toBe(place(home));
    expect(place({ ...home, postal_code: '97202' })).not.toBe(place(home));
    expect(place({ ...home, city: 'Salem' })).not.toBe(place(home));
  });

  it('keeps a P.O. box number (the box is the door)', () => {
    expect(place({ ...home, line1: 'PO Box 12' })).not.toBe(place({ ...home, line1: 'PO Box 13' }));
  });

  it('has no building for an address that is only a unit', () => {
    expect(place({ line1: 'Apt 4', city: 'Portland' })).toBeNull();
  });
});

describe('disposable mail domains', () => {
  it('flags a listed domain and its subdomains, not a mail provider', () => {
    expect(isDisposableDomain('mailinator.com')).toBe(true);
    expect(isDisposableDomain('anything.mailinator.com')).toBe(true);
    expect(isDisposableDomain('gmail.com')).toBe(false);
    expect(isDisposableDomain('proton.me')).toBe(false);
  });
});
