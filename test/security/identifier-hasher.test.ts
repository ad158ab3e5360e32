import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IDENTIFIER_TYPES, type IdentifierType } from '../../src/domain/identity/index.js';
import { IdentifierHasher } from '../../src/security/identifier-hasher.js';
import { deriveKey } from '../../src/security/server-secret.js';

const SECRET = Buffer.from('test-secret-0123456789abcdef0123', 'utf8');
const OTHER_SECRET = Buffer.from('test-secret-fedcba9876543210fedc', 'utf8');

describe('IdentifierHasher', () => {
  const hasher = new IdentifierHasher(SECRET);

  it('is HMAC-SHA256 under the derived identifier key, base64url, 22 characters', () => {
    const expected = createHmac('sha256', deriveKey(SECRET, 'identifier'))
      .update('email:johndoe@gmail.com')
      .digest('base64url')
      .slice(0, 22);
    expect(hasher.hash('email', 'johndoe@gmail.com')).toBe(expected);
    expect(expected).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it('gives the same input the same hash, also from a second instance on the same secret', () => {
    expect(hasher.hash('phone', '+15551234567')).toBe(hasher.hash('phone', '+15551234567'));
    expect(new IdentifierHasher(Buffer.from(SECRET)).hash('phone', '+15551234567')).toBe(
      hasher.hash('phone', '+15551234567'),
    );
  });

  it('gives every spelling of one identifier the same hash', () => {
    const hash = hasher.fromRaw('email', 'johndoe@gmail.com');
    for (const raw of [
      'John.Doe+promo@GoogleMail.com',
      ' j.o.h.n.d.o.e@GMAIL.com ',
      'johndoe+x@googlemail.com',
    ]) {
      expect(hasher.fromRaw('email', raw), raw).toBe(hash);
    }
    expect(hasher.fromRaw('ip', '2001:db8::1')).toBe(hasher.fromRaw('ip', '2001:DB8:0:0:ffff::42'));
    expect(hasher.fromRaw('address', '12 Main Street, Apt 4')).toBe(
      hasher.fromRaw('address', '12 main st apt. 4'),
    );
  });

  it('gives the same value under different types different hashes', () => {
    const hashes = IDENTIFIER_TYPES.map((type) => hasher.hash(type, 'a1b2c3d4e5f60718'));
    expect(new Set(hashes).size).toBe(IDENTIFIER_TYPES.length);
  });

  it('gives different values different hashes', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (a, b) => {
        fc.pre(a !== b);
        expect(hasher.hash('device', a)).not.toBe(hasher.hash('device', b));
      }),
    );
  });

  it('gives a different secret different hashes, so a leaked table cannot be joined with another install', () => {
    const other = new IdentifierHasher(OTHER_SECRET);
    for (const type of IDENTIFIER_TYPES) {
      expect(other.hash(type, 'value')).not.toBe(hasher.hash(type, 'value'));
    }
  });

  it('returns null when the raw value does not normalize', () => {
    expect(hasher.fromRaw('email', 'not an email')).toBeNull();
    expect(hasher.fromRaw('phone', '12')).toBeNull();
    expect(hasher.fromRaw('device', '00000000-0000-0000-0000-000000000000')).toBeNull();
    expect(hasher.fromRaw('payment', '   ')).toBeNull();
    expect(hasher.fromRaw('address', ' , ')).toBeNull();
    expect(hasher.fromRaw('ip', '300.1.1.1')).toBeNull();
  });

  it('never lets raw personal data through in its output', () => {
    const samples: [IdentifierType, string][] = [
      ['email', 'John.Doe+promo@GoogleMail.com'],
      ['phone', '+44 20 7946 0958'],
      ['address', '742 Evergreen Terrace, Springfield'],
      ['ip', '192.0.2.1'],
      ['device', 'E621E1F8-C36C-495A-93FC-0C247A3E6E5F'],
      ['payment', 'Xt5EWLLDS7FJjR1c'],
    ];
    for (const [type, raw] of samples) {
      const hash = hasher.fromRaw(type, raw) as string;
      expect(hash).toMatch(/^[A-Za-z0-9_-]{22}$/);
      const lower = hash.toLowerCase();
      // No fragment of the value (or of its normalized form) long enough to identify anyone.
      for (const piece of raw.toLowerCase().split(/[^a-z0-9]+/)) {
        if (piece.length >= 5) expect(lower, `${type} ${raw}`).not.toContain(piece);
      }
      expect(hash).not.toContain(Buffer.from(raw).toString('base64url').slice(0, 8));
    }
    fc.assert(
      fc.property(fc.emailAddress(), (email) => {
        const hash = hasher.fromRaw('email', email);
        if (hash === null) return;
        expect(hash).toHaveLength(22);
        expect(hash).not.toContain('@');
        // Six characters or more: a shorter fragment turns up in random base64url by chance.
        const local = (email.split('@')[0] as string).toLowerCase().slice(0, 8);
        if (local.length >= 6) expect(hash.toLowerCase()).not.toContain(local);
      }),
    );
  });

  it('refuses an empty secret and an unknown type', () => {
    expect(() => new IdentifierHasher(Buffer.alloc(0))).toThrow(RangeError);
    expect(() => hasher.hash('ssn' as IdentifierType, '123')).toThrow(RangeError);
    expect(() => hasher.fromRaw('ssn' as IdentifierType, '123')).toThrow(RangeError);
  });
});
