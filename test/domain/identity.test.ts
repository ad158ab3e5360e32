import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  IDENTIFIER_TYPES,
  type IdentifierType,
  ipRateKey,
  normalizeAddress,
  normalizeDeviceId,
  normalizeEmail,
  normalizeIdentifier,
  normalizePaymentFingerprint,
  normalizePhone,
  type PostalAddress,
} from '../../src/domain/identity/index.js';

describe('normalizeEmail', () => {
  it.each([
    ['John.Doe+promo@GoogleMail.com', 'johndoe@gmail.com'],
    ['johndoe@gmail.com', 'johndoe@gmail.com'],
    ['J.O.H.N.D.O.E@gmail.com', 'johndoe@gmail.com'],
    ['john.doe+a+b@gmail.com', 'johndoe@gmail.com'],
    ['john..doe.@gmail.com', 'johndoe@gmail.com'],
    ['  johndoe@gmail.com.  ', 'johndoe@gmail.com'],
    ['ｊｏｈｎｄｏｅ＠ｇｍａｉｌ．ｃｏｍ', 'johndoe@gmail.com'],
  ])('folds every Gmail spelling of one inbox: %s', (raw, expected) => {
    expect(normalizeEmail(raw)).toBe(expected);
  });

  it.each([
    ['First.Last+shop@Outlook.com', 'first.last@outlook.com'],
    ['first.last@hotmail.com', 'first.last@hotmail.com'],
    ['first.last+x@hotmail.co.uk', 'first.last@hotmail.co.uk'],
    ['a.b+1@outlook.fr', 'a.b@outlook.fr'],
    ['a.b+1@live.com', 'a.b@live.com'],
    ['a.b+1@msn.com', 'a.b@msn.com'],
    ['a.b+1@yahoo.com', 'a.b@yahoo.com'],
    ['a.b+1@yahoo.co.uk', 'a.b@yahoo.co.uk'],
    ['a.b+1@yahoo.fr', 'a.b@yahoo.fr'],
    ['a.b+1@icloud.com', 'a.b@icloud.com'],
    ['a.b+1@me.com', 'a.b@me.com'],
    ['a.b+1@mac.com', 'a.b@mac.com'],
  ])('drops only the +tag for plus-addressing providers, keeping dots: %s', (raw, expected) => {
    expect(normalizeEmail(raw)).toBe(expected);
  });

  it('keeps dots significant at Outlook, so two people are not merged', () => {
    expect(normalizeEmail('john.doe@outlook.com')).not.toBe(normalizeEmail('johndoe@outlook.com'));
  });

  it.each([
    ['first.last+x@acme.io', 'first.last+x@acme.io'],
    ['First.Last+X@ACME.io', 'first.last+x@acme.io'],
    ['john.doe@gmail.co', 'john.doe@gmail.co'],
    ['a+b@yahoo.co.jp', 'a+b@yahoo.co.jp'],
  ])('leaves the local part of other domains alone except for case: %s', (raw, expected) => {
    expect(normalizeEmail(raw)).toBe(expected);
  });

  it('does not merge a tagged custom-domain address with the untagged one', () => {
    expect(normalizeEmail('first.last+x@acme.io')).not.toBe(normalizeEmail('first.last@acme.io'));
  });

  it.each([
    '',
    '   ',
    'plainaddress',
    '@gmail.com',
    'john@',
    'john@localhost',
    'john@@gmail.com',
    'john@doe@gmail.com',
    'john doe@acme.io',
    '.john@acme.io',
    'john.@acme.io',
    'john..doe@acme.io',
    '"john doe"@acme.io',
    'john@acme..io',
    'john@-acme.io',
    'john@acme-.io',
    'john@1.2.3.4',
    'john@[1.2.3.4]',
    '+promo@gmail.com',
    '...@gmail.com',
    '+tag@outlook.com',
    'john.+tag@outlook.com',
    'jo\u0000hn@acme.io',
    'jo\u200bhn@acme.io',
    `${'a'.repeat(65)}@acme.io`,
    `a@${'b'.repeat(250)}.io`,
    'x'.repeat(5000),
  ])('returns null for what is not an email: %j', (raw) => {
    expect(normalizeEmail(raw)).toBeNull();
  });

  it('accepts internationalized addresses and lower-cases them', () => {
    expect(normalizeEmail('Jürgen@Bücher.DE')).toBe('jürgen@bücher.de');
  });
});

describe('normalizePhone', () => {
  it.each([
    ['+1 (555) 123-4567', '+15551234567'],
    ['+1-555-123-4567', '+15551234567'],
    ['+1.555.123.4567', '+15551234567'],
    ['  +15551234567  ', '+15551234567'],
    ['001 555 123 4567', '+15551234567'],
    ['+44 20 7946 0958', '+442079460958'],
    ['0044 20 7946 0958', '+442079460958'],
    ['+44 (0)20 7946 0958', '+442079460958'],
    ['+44 (0) 20 7946 0958', '+442079460958'],
    ['(+44) 20 7946 0958', '+442079460958'],
    ['+49 (0)30 1234 5678', '+493012345678'],
    ['＋４４ ２０ ７９４６ ０９５８', '+442079460958'],
    ['+33 6 12 34 56 78', '+33612345678'],
  ])('writes international numbers as + and digits: %s', (raw, expected) => {
    expect(normalizePhone(raw)).toBe(expected);
  });

  it.each([
    ['(555) 123-4567', '5551234567'],
    ['555 123 4567', '5551234567'],
    ['555–123–4567', '5551234567'],
    ['020 7946 0958', '02079460958'],
    ['06/12 34 56 78', '0612345678'],
  ])('keeps national numbers as digits without +: %s', (raw, expected) => {
    expect(normalizePhone(raw)).toBe(expected);
  });

  it.each([
    '',
    '12345',
    '+1 234',
    '+1234567890123456',
    '1234567890123456',
    '+0 555 123 4567',
    '000 555 123 4567',
    '555-CALL-NOW',
    '555 123 4567 ext 12',
    '555+1234567',
    'tel:+15551234567',
    '0000000000',
    '1111111',
    '+1 111 111 1111',
    '123456789',
    '0123456789',
    '987654321',
    '9'.repeat(1000),
  ])('returns null for what is not a usable phone number: %j', (raw) => {
    expect(normalizePhone(raw)).toBeNull();
  });
});

describe('normalizeDeviceId', () => {
  it('folds the case and spelling of a UUID, which case does not change', () => {
    const expected = 'e621e1f8-c36c-495a-93fc-0c247a3e6e5f';
    for (const raw of [
      'E621E1F8-C36C-495A-93FC-0C247A3E6E5F',
      'e621e1f8-c36c-495a-93fc-0c247a3e6e5f',
      '{E621E1F8-C36C-495A-93FC-0C247A3E6E5F}',
      'urn:uuid:e621e1f8-c36c-495a-93fc-0c247a3e6e5f',
      'E621E1F8C36C495A93FC0C247A3E6E5F',
      '  e621e1f8-c36c-495a-93fc-0c247a3e6e5f\n',
    ]) {
      expect(normalizeDeviceId(raw), raw).toBe(expected);
    }
  });

  it('lower-cases an all-hex id such as an Android ID', () => {
    expect(normalizeDeviceId('A1B2C3D4E5F60718')).toBe('a1b2c3d4e5f60718');
  });

  it('keeps the case of opaque ids, where aB and Ab are different devices', () => {
    expect(normalizeDeviceId(' fp_AbCdEf012345 ')).toBe('fp_AbCdEf012345');
    expect(normalizeDeviceId('fp_AbCdEf012345')).not.toBe(normalizeDeviceId('fp_abcdef012345'));
  });

  it('does not treat half-braced or mixed-hyphen strings as UUIDs', () => {
    expect(normalizeDeviceId('{E621E1F8-C36C-495A-93FC-0C247A3E6E5F')).toBe(
      '{E621E1F8-C36C-495A-93FC-0C247A3E6E5F',
    );
    expect(normalizeDeviceId('E621E1F8-C36C495A-93FC-0C247A3E6E5F')).toBe(
      'E621E1F8-C36C495A-93FC-0C247A3E6E5F',
    );
  });

  it.each([
    '',
    '   ',
    '00000000-0000-0000-0000-000000000000',
    '{00000000-0000-0000-0000-000000000000}',
    '0',
    '9774d56d682e549c',
    '9774D56D682E549C',
    '02:00:00:00:00:00',
    'unknown',
    'NULL',
    'undefined',
    'abc\u0000def',
    'x'.repeat(201),
  ])('returns null for empty, placeholder, hostile or oversized ids: %j', (raw) => {
    expect(normalizeDeviceId(raw)).toBeNull();
  });

  it('accepts an id of exactly 200 characters', () => {
    expect(normalizeDeviceId('x'.repeat(200))).toBe('x'.repeat(200));
  });
});

describe('normalizePaymentFingerprint', () => {
  it('trims and keeps the token exactly, case included', () => {
    expect(normalizePaymentFingerprint('  Xt5EWLLDS7FJjR1c ')).toBe('Xt5EWLLDS7FJjR1c');
    expect(normalizePaymentFingerprint('Xt5EWLLDS7FJjR1c')).not.toBe(
      normalizePaymentFingerprint('xt5ewllds7fjjr1c'),
    );
  });

  it.each(['', ' ', 'null', '0000', 'a\nb', 'y'.repeat(201)])('returns null for %j', (raw) => {
    expect(normalizePaymentFingerprint(raw)).toBeNull();
  });
});

describe('normalizeAddress', () => {
  const same = (a: PostalAddress, b: PostalAddress) => {
    const left = normalizeAddress(a);
    expect(left).not.toBeNull();
    expect(normalizeAddress(b)).toBe(left);
  };
  const different = (a: PostalAddress, b: PostalAddress) => {
    expect(normalizeAddress(a)).not.toBe(normalizeAddress(b));
  };

  it('treats "12 Main Street, Apt 4" and "12 main st apt. 4" as one address', () => {
    same({ line1: '12 Main Street, Apt 4' }, { line1: '12 main st apt. 4' });
  });

  it('joins line1 and line2, so a unit on either line is the same door', () => {
    same({ line1: '12 Main Street', line2: 'Apartment 4' }, { line1: '12 MAIN ST. APT 4' });
    same({ line1: '12 Main Street Apt', line2: '#4' }, { line1: '12 Main St', line2: 'Unit 4' });
    same({ line1: 'Post', line2: 'Office Box 9' }, { line1: 'PO Box 9' });
  });

  it.each([
    ['Avenue', 'Ave.'],
    ['Road', 'Rd'],
    ['Boulevard', 'Blvd'],
    ['Drive', 'Dr.'],
    ['Lane', 'LN'],
    ['Court', 'Ct'],
    ['Place', 'Pl'],
    ['Square', 'Sq.'],
    ['Parkway', 'Pkwy'],
    ['Highway', 'Hwy'],
    ['Terrace', 'Ter'],
    ['Circle', 'Cir'],
  ])('maps %s and %s to one form', (long, short) => {
    same({ line1: `1 Elm ${long}` }, { line1: `1 Elm ${short}` });
  });

  it.each([
    ['North', 'N.'],
    ['South', 'S'],
    ['East', 'E'],
    ['West', 'W.'],
    ['Northwest', 'N.W.'],
    ['Southeast', 'SE'],
  ])('maps the direction %s and %s to one form', (long, short) => {
    same({ line1: `100 ${long} Elm Street` }, { line1: `100 ${short} Elm St` });
  });

  it('treats apartment, apt, unit, suite, ste, flat and # as one designator', () => {
    const forms = [
      'Apartment 4',
      'Apt 4',
      'Apt. #4',
      'Unit 4',
      'Suite 4',
      'Ste. 4',
      'Flat 4',
      '#4',
      '# 4',
      'apt4',
    ];
    for (const form of forms) same({ line1: `12 Main St ${form}` }, { line1: '12 Main St Unit 4' });
  });

  it('keeps a floor apart from a unit with the same number', () => {
    same({ line1: '12 Main St, Floor 4' }, { line1: '12 Main St Fl. 4' });
    different({ line1: '12 Main St, Floor 4' }, { line1: '12 Main St, Unit 4' });
  });

  it('reads 4B, 4-B and 4 B as one unit and keeps ordinals whole', () => {
    same({ line1: '12 Main St Apt 4B' }, { line1: '12 Main St Apt 4-B' });
    same({ line1: '12 Main St Apt 4B' }, { line1: '12 Main St Apt 4 b' });
    same({ line1: '1st Avenue 5' }, { line1: '1ST AVE. 5' });
    different({ line1: '1st Avenue 5' }, { line1: '1 St Avenue 5' });
  });

  it('reads P.O. Box spellings as one', () => {
    for (const form of ['P.O. Box 12', 'PO Box 12', 'P. O. Box 12', 'Post Office Box 12', 'POBox 12']) {
      same({ line1: form }, { line1: 'po box 12' });
    }
  });

  it('ignores case, whitespace, punctuation, apostrophes and accents on Latin letters', () => {
    same(
      { line1: "  7, Rue de l'Église ", city: 'Saint-Étienne', country: 'fr' },
      { line1: "7 rue de l'eglise", city: 'st etienne', country: 'FR' },
    );
    same({ line1: '3 Main St', city: "O'Fallon" }, { line1: '3 main st', city: 'OFallon' });
    same({ line1: 'Hauptstraße 5', city: 'MÜNCHEN' }, { line1: 'Hauptstr. 5', city: 'münchen' });
    same({ line1: 'Hauptstrasse 5' }, { line1: 'HAUPTSTR 5' });
  });

  it('upper-cases the postal code without spaces or hyphens and the country code', () => {
    expect(
      normalizeAddress({ line1: '10 Downing St', city: 'London', postal_code: 'sw1a 2aa', country: 'gb' }),
    ).toBe('10 downing st|london||SW1A2AA|GB');
    same(
      { line1: '1 A St', postal_code: '123-4567', country: 'JP' },
      { line1: '1 A St', postal_code: '1234567', country: 'jp' },
    );
  });

  it('drops a ZIP+4 extension in the US, where it does not change the door', () => {
    same(
      { line1: '1 Elm St', city: 'Springfield', region: 'IL', postal_code: '62701-1234', country: 'US' },
      { line1: '1 Elm St', city: 'Springfield', region: 'IL', postal_code: '62701', country: 'USA' },
    );
    different(
      { line1: '1 Elm St', postal_code: '62701-1234', country: 'BR' },
      { line1: '1 Elm St', postal_code: '62701', country: 'BR' },
    );
  });

  it('keeps fields in a fixed order so a city is never read as a street', () => {
    expect(
      normalizeAddress({
        country: 'us',
        postal_code: '62701',
        region: 'Il',
        city: 'Springfield',
        line2: 'Suite 200',
        line1: '742 Evergreen Terrace',
      }),
    ).toBe('742 evergreen ter unit 200|springfield|il|62701|US');
    different({ line1: '1 Main St', city: 'Paris' }, { line1: '1 Main St', region: 'Paris' });
  });

  it('does not merge different addresses', () => {
    different({ line1: '12 Main St' }, { line1: '21 Main St' });
    different({ line1: '12-14 Main St' }, { line1: '1214 Main St' });
    different({ line1: '12 Main St Apt 4' }, { line1: '12 Main St Apt 40' });
    different({ line1: '12 Main St', city: 'Springfield' }, { line1: '12 Main St', city: 'Shelbyville' });
    different({ line1: '12 Main St', country: 'US' }, { line1: '12 Main St', country: 'CA' });
    different({ line1: '12 North St' }, { line1: '12 South St' });
  });

  it('returns null without a street', () => {
    expect(normalizeAddress({ line1: '' })).toBeNull();
    expect(normalizeAddress({ line1: ' ,.; ', city: 'Paris', country: 'FR' })).toBeNull();
    expect(normalizeAddress({ line1: 'x'.repeat(3000) })).toBeNull();
  });
});

describe('ipRateKey', () => {
  it.each([
    ['192.0.2.1', '192.0.2.1'],
    [' 203.0.113.255 ', '203.0.113.255'],
    ['0.0.0.0', '0.0.0.0'],
    ['255.255.255.255', '255.255.255.255'],
  ])('keys IPv4 by the whole address: %s', (raw, expected) => {
    expect(ipRateKey(raw)).toBe(expected);
  });

  it('keys every IPv6 spelling inside one /64 the same', () => {
    const expected = '2001:db8:85a3:8d3::/64';
    for (const raw of [
      '2001:db8:85a3:8d3:1319:8a2e:370:7348',
      '2001:0DB8:85A3:08D3:1319:8A2E:0370:7348',
      '2001:db8:85a3:8d3::1',
      '2001:db8:85a3:8d3::',
      '2001:db8:85a3:8d3:ffff:ffff:ffff:ffff',
      '2001:db8:85a3:8d3::192.0.2.1',
      '2001:db8:85a3:8d3::1%eth0',
      '2001:db8:85a3:8d3::/64',
    ]) {
      expect(ipRateKey(raw), raw).toBe(expected);
    }
  });

  it('writes zero groups of the prefix explicitly, four groups always', () => {
    expect(ipRateKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(ipRateKey('::1')).toBe('0:0:0:0::/64');
    expect(ipRateKey('::')).toBe('0:0:0:0::/64');
    expect(ipRateKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
  });

  it('gives a neighbouring /64 its own key', () => {
    expect(ipRateKey('2001:db8:0:1::1')).not.toBe(ipRateKey('2001:db8:0:2::1'));
    expect(ipRateKey('2001:db8:0:1::1')).not.toBe(ipRateKey('2001:db9:0:1::1'));
  });

  it('reads an IPv4-mapped IPv6 address as its IPv4 address', () => {
    expect(ipRateKey('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(ipRateKey('::FFFF:c000:0201')).toBe('192.0.2.1');
    expect(ipRateKey('0:0:0:0:0:ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(ipRateKey('::ffff:192.0.2.1')).not.toBe(ipRateKey('::ffff:192.0.2.2'));
  });

  it.each([
    '',
    '   ',
    'localhost',
    '1.2.3',
    '1.2.3.4.5',
    '256.1.1.1',
    '1.2.3.-1',
    '01.2.3.4',
    '1.2.3.04',
    '0x7f.0.0.1',
    '1.2.3.4/32',
    '1.2.3.4:80',
    '1 .2.3.4',
    '1.2.3.4/64',
    '[2001:db8::1]',
    '2001:db8::1/48',
    '2001:db8::1::2',
    '2001:db8:::1',
    ':2001:db8::1',
    '2001:db8::1:',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:8::',
    '12345::1',
    'g::1',
    '::ffff:256.0.0.1',
    '1.2.3.4::',
    '::1.2.3.4:5',
    'fe80::1%',
    'fe80::1%eth 0',
    `${'1:'.repeat(60)}1`,
  ])('returns null for what is not an IP address: %j', (raw) => {
    expect(ipRateKey(raw)).toBeNull();
  });
});

describe('normalizeIdentifier', () => {
  it('dispatches on the type', () => {
    expect(normalizeIdentifier('email', 'A.B+c@GoogleMail.com')).toBe('ab@gmail.com');
    expect(normalizeIdentifier('phone', '+1 (555) 123-4567')).toBe('+15551234567');
    expect(normalizeIdentifier('device', 'A1B2C3D4E5F60718')).toBe('a1b2c3d4e5f60718');
    expect(normalizeIdentifier('payment', ' Xt5EWLLDS7FJjR1c ')).toBe('Xt5EWLLDS7FJjR1c');
    expect(normalizeIdentifier('ip', '2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(normalizeIdentifier('address', '12 Main Street, Apt 4')).toBe('12 main st unit 4||||');
  });

  it('reads a canonical address string as its fields, so a stored value re-normalizes to itself', () => {
    const canonical = normalizeAddress({
      line1: '742 Evergreen Terrace',
      city: 'Springfield',
      region: 'IL',
      postal_code: '62701-1234',
      country: 'US',
    });
    expect(canonical).toBe('742 evergreen ter|springfield|il|62701|US');
    expect(normalizeIdentifier('address', canonical as string)).toBe(canonical);
  });
});

describe('properties', () => {
  const anyText = fc.oneof(
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 40 }),
  );

  /** Random case per character and random runs of whitespace around the words. */
  const respell = (text: string) =>
    fc
      .tuple(
        fc.array(fc.boolean(), { minLength: text.length, maxLength: text.length }),
        fc.array(fc.constantFrom(' ', '  ', '\t', '\n', '\u00a0', ' \u3000 '), {
          minLength: text.split(' ').length + 1,
          maxLength: text.split(' ').length + 1,
        }),
      )
      .map(([upper, gaps]) => {
        const cased = [...text].map((ch, i) => (upper[i] ? ch.toUpperCase() : ch.toLowerCase())).join('');
        const words = cased.split(' ');
        return gaps[0] + words.map((w, i) => w + gaps[i + 1]).join('');
      });

  it('every normalizer is idempotent on arbitrary text', () => {
    fc.assert(
      fc.property(fc.constantFrom(...IDENTIFIER_TYPES), anyText, (type: IdentifierType, raw) => {
        const once = normalizeIdentifier(type, raw);
        if (once !== null) expect(normalizeIdentifier(type, once)).toBe(once);
      }),
      { numRuns: 2000 },
    );
  });

  it('email normalization is idempotent on generated addresses with tags, dots and case', () => {
    const domain = fc.oneof(
      fc.constantFrom(
        'gmail.com',
        'googlemail.com',
        'outlook.com',
        'hotmail.co.uk',
        'yahoo.fr',
        'icloud.com',
      ),
      fc.domain(),
    );
    const address = fc
      .tuple(fc.emailAddress(), domain, fc.option(fc.stringMatching(/^[a-z0-9.+]{0,8}$/)), fc.boolean())
      .map(([email, d, tag, upper]) => {
        const local = email.split('@')[0] as string;
        const raw = `${local}${tag === null ? '' : `+${tag}`}@${d}`;
        return upper ? raw.toUpperCase() : raw;
      });
    fc.assert(
      fc.property(fc.oneof(fc.emailAddress(), address), (raw) => {
        const once = normalizeEmail(raw);
        if (once !== null) expect(normalizeEmail(once)).toBe(once);
      }),
      { numRuns: 1000 },
    );
  });

  it('a Gmail inbox keeps one key however dots, tags and case are sprinkled', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z0-9]{1,20}$/),
        fc.array(fc.boolean(), { maxLength: 20 }),
        fc.stringMatching(/^[a-z0-9.]{0,10}$/),
        fc.boolean(),
        fc.constantFrom('gmail.com', 'googlemail.com', 'GMail.com'),
        (name, dots, tag, upper, domain) => {
          const dotted = [...name].map((ch, i) => (i > 0 && dots[i] ? `.${ch}` : ch)).join('');
          const raw = `${upper ? dotted.toUpperCase() : dotted}${tag ? `+${tag}` : ''}@${domain}`;
          expect(normalizeEmail(raw)).toBe(`${name}@gmail.com`);
        },
      ),
    );
  });

  it('phone normalization is idempotent on generated numbers', () => {
    const phone = fc
      .tuple(
        fc.constantFrom('', '+', '00', '+44 (0)'),
        fc.array(fc.stringMatching(/^\d{1,4}$/), { minLength: 1, maxLength: 6 }),
        fc.constantFrom(' ', '-', '.', ''),
      )
      .map(([prefix, groups, sep]) => prefix + groups.join(sep));
    fc.assert(
      fc.property(phone, (raw) => {
        const once = normalizePhone(raw);
        if (once !== null) expect(normalizePhone(once)).toBe(once);
      }),
    );
  });

  const streetWords = fc.constantFrom(
    'main',
    'elm',
    'oak',
    'street',
    'st',
    'avenue',
    'north',
    'w',
    'apt',
    'suite',
    'broadway',
    'boulevard',
    'floor',
    '4b',
    '12',
    '221b',
    'église',
    'straße',
  );
  const fields = fc.record({
    line1: fc.array(streetWords, { minLength: 1, maxLength: 6 }).map((w) => w.join(' ')),
    city: fc.array(fc.constantFrom('springfield', 'saint', 'louis', 'new', 'york', 'münchen'), {
      maxLength: 3,
    }),
    region: fc.constantFrom('', 'il', 'ny', 'bayern'),
  });

  it('random case and whitespace changes of an address do not change its normalization', () => {
    fc.assert(
      fc.property(
        fields.chain(({ line1, city, region }) =>
          fc.tuple(
            fc.constant({ line1, city: city.join(' '), region }),
            fc.record({ line1: respell(line1), city: respell(city.join(' ')), region: respell(region) }),
          ),
        ),
        fc.constantFrom('us', 'US', ' Us '),
        fc.constantFrom('62701', '62701 ', ' 627 01'),
        ([plain, respelled], country, postal) => {
          const expected = normalizeAddress({ ...plain, country: 'US', postal_code: '62701' });
          expect(expected).not.toBeNull();
          expect(normalizeAddress({ ...respelled, country, postal_code: postal })).toBe(expected);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('swapping each street word for its abbreviation or full form does not change the address', () => {
    const pairs: readonly [string, string][] = [
      ['street', 'st.'],
      ['avenue', 'ave'],
      ['road', 'rd.'],
      ['apartment', 'apt.'],
      ['suite', 'ste'],
      ['north', 'n.'],
      ['west', 'w'],
      ['court', 'ct'],
    ];
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(pairs.length - 1), fc.boolean(), fc.boolean()), {
          minLength: 1,
          maxLength: 6,
        }),
        (words) => {
          const first = words.map(([i, a]) => (pairs[i] as [string, string])[a ? 0 : 1]).join(' ');
          const second = words.map(([i, , b]) => (pairs[i] as [string, string])[b ? 0 : 1]).join(' ');
          expect(normalizeAddress({ line1: `12 ${second}` })).toBe(
            normalizeAddress({ line1: `12 ${first}` }),
          );
        },
      ),
    );
  });

  it('address normalization is idempotent: re-normalizing the canonical fields changes nothing', () => {
    const address = fc.record(
      {
        line1: fc.oneof(
          anyText,
          fields.map((f) => f.line1),
        ),
        line2: anyText,
        city: anyText,
        region: anyText,
        postal_code: anyText,
        country: anyText,
      },
      { requiredKeys: ['line1'] },
    );
    fc.assert(
      fc.property(address, (a) => {
        const once = normalizeAddress(a);
        if (once === null) return;
        const [line1, city, region, postal_code, country] = once.split('|') as [
          string,
          string,
          string,
          string,
          string,
        ];
        expect(normalizeAddress({ line1, city, region, postal_code, country })).toBe(once);
      }),
      { numRuns: 1000 },
    );
  });

  const group = fc.integer({ min: 0, max: 0xffff });
  const groups = (n: number) => fc.array(group, { minLength: n, maxLength: n });

  /** One of the many legal texts of an IPv6 address: padding, case and optional `::` compression. */
  const ipv6Text = (all: number[]) =>
    fc.tuple(fc.boolean(), fc.boolean(), fc.boolean()).map(([pad, upper, compress]) => {
      const text = all.map((g) => {
        const hex = g.toString(16);
        return pad ? hex.padStart(4, '0') : hex;
      });
      let joined = text.join(':');
      if (compress) {
        // Compress the longest run of zero groups, as RFC 5952 writers do.
        let best: [number, number] = [-1, 0];
        for (let i = 0; i < all.length; ) {
          if (all[i] !== 0) {
            i++;
            continue;
          }
          let j = i;
          while (j < all.length && all[j] === 0) j++;
          if (j - i > best[1]) best = [i, j - i];
          i = j;
        }
        if (best[1] > 0) {
          joined = `${text.slice(0, best[0]).join(':')}::${text.slice(best[0] + best[1]).join(':')}`;
        }
      }
      return upper ? joined.toUpperCase() : joined;
    });

  it('every IPv6 address with the same first 64 bits maps to the same key', () => {
    const hostBits = fc.oneof(groups(4), fc.constant([0, 0, 0, 0]), fc.constant([0, 0, 0, 1]));
    const pair = fc
      .tuple(
        groups(4).filter((p) => p.some((g) => g !== 0)),
        hostBits,
        hostBits,
      )
      .chain(([prefix, hostA, hostB]) =>
        fc.tuple(fc.constant(prefix), ipv6Text([...prefix, ...hostA]), ipv6Text([...prefix, ...hostB])),
      );
    fc.assert(
      fc.property(pair, ([prefix, a, b]) => {
        const expected = `${prefix.map((g) => g.toString(16)).join(':')}::/64`;
        expect(ipRateKey(a)).toBe(expected);
        expect(ipRateKey(b)).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });

  it('IPv6 addresses in different /64s map to different keys', () => {
    fc.assert(
      fc.property(groups(8), groups(8), (a, b) => {
        fc.pre(a.slice(0, 4).join() !== b.slice(0, 4).join());
        // Keep clear of ::ffff:0:0/96, which is read as IPv4 on purpose.
        fc.pre(a[0] !== 0 && b[0] !== 0);
        expect(ipRateKey(a.map((g) => g.toString(16)).join(':'))).not.toBe(
          ipRateKey(b.map((g) => g.toString(16)).join(':')),
        );
      }),
    );
  });

  it('IPv4 keys round-trip through the IPv4-mapped form', () => {
    fc.assert(
      fc.property(fc.ipV4(), (ip) => {
        expect(ipRateKey(ip)).toBe(ip);
        expect(ipRateKey(`::ffff:${ip}`)).toBe(ip);
      }),
    );
  });

  it('accepts every address fast-check generates and returns null for none of them', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (ip) => {
        expect(ipRateKey(ip)).not.toBeNull();
      }),
      { numRuns: 1000 },
    );
  });
});
