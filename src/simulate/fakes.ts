/**
 * Made-up identities for simulated actors: customer ids, emails, phones, devices, cards, addresses and
 * client addresses drawn from pools that look like where such traffic comes from (home broadband, a
 * mobile carrier's NAT, a campus, an office, datacenter proxies).
 *
 * Values come from a stream seeded by the seed AND the run tag, so that runs against one long-lived
 * server never share an identifier (a shared card or device would link this run's customers to the last
 * run's); which actors share what comes from the scenario's own stream, seeded by the seed alone.
 */
import { hash32, Rng } from './prng.js';

export interface Address {
  line1: string;
  line2?: string;
  city: string;
  region: string;
  postal_code: string;
  country: string;
}

/** Who is at the checkout, as the merchant's backend would describe them in `context`. */
export interface Shopper {
  customerId: string;
  ip: string;
  deviceId: string | undefined;
  userAgent: string;
  email: string;
  phone: string | undefined;
  address: Address;
  card: string;
  /** Age of the account when the run starts; `account_created_at` is the server's start time minus it. */
  accountAgeSeconds: number;
  firstOrder?: boolean;
  segment?: string;
}

export type IpPool = 'residential' | 'carrier' | 'campus' | 'office' | 'datacenter';

const FIRST_OCTETS: Record<IpPool, readonly number[]> = {
  residential: [24, 47, 67, 68, 71, 73, 76, 98, 99, 108, 174],
  // A mobile carrier's NAT egress: a handful of public addresses shared by many subscribers.
  carrier: [172],
  campus: [128, 129],
  office: [64, 66],
  datacenter: [45, 104, 185, 193],
};

const FIRST = [
  'maria',
  'james',
  'aiko',
  'wei',
  'fatima',
  'lucas',
  'olivia',
  'noah',
  'sofia',
  'mateo',
  'amara',
  'liam',
  'yuki',
  'priya',
  'elena',
  'omar',
  'chloe',
  'ivan',
  'grace',
  'kofi',
];
const LAST = [
  'garcia',
  'smith',
  'tanaka',
  'chen',
  'khan',
  'silva',
  'brown',
  'mueller',
  'rossi',
  'lopez',
  'okafor',
  'nguyen',
  'kim',
  'patel',
  'novak',
  'haddad',
  'martin',
  'petrov',
  'jones',
  'mensah',
];
const MAIL_DOMAINS = ['gmail.com', 'outlook.com', 'yahoo.com', 'icloud.com', 'proton.me', 'fastmail.com'];
const DISPOSABLE_DOMAINS = ['mailinator.com', 'tempmail.dev', 'guerrillamail.com', 'trashmail.io'];
const STREETS = ['Oak', 'Maple', 'Cedar', 'Elm', 'Pine', 'Lake', 'Hill', 'Park', 'Sunset', 'River', 'Mill'];
const SUFFIXES = ['Street', 'St', 'Avenue', 'Ave', 'Road', 'Rd', 'Lane', 'Blvd'];
const CITIES: readonly [string, string, string][] = [
  ['Springfield', 'IL', '627'],
  ['Portland', 'OR', '972'],
  ['Austin', 'TX', '787'],
  ['Madison', 'WI', '537'],
  ['Raleigh', 'NC', '276'],
  ['Boise', 'ID', '837'],
  ['Tucson', 'AZ', '857'],
  ['Albany', 'NY', '122'],
];
const USER_AGENTS = [
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
  'Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0',
];
const BOT_AGENTS = [
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/125.0 Safari/537.36',
  'python-requests/2.32.3',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36',
];

const HEX = '0123456789abcdef';
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export class Faker {
  private readonly salt: number;
  private serial = 0;

  /**
   * @param values the value stream (seed + tag + scenario)
   * @param tag the run tag, part of every id
   * @param short a few letters naming the scenario, part of every customer id
   */
  constructor(
    private readonly values: Rng,
    readonly tag: string,
    private readonly short: string,
  ) {
    this.salt = hash32(tag);
  }

  /** An independent faker for one actor's identities drawn while it runs (rotations). */
  fork(label: string): Faker {
    return new Faker(this.values.fork(label), this.tag, `${this.short}${label}x`);
  }

  customerId(): string {
    this.serial += 1;
    return `cus_${this.tag}_${this.short}${this.serial}`;
  }

  ip(pool: IpPool): string {
    const v = this.values;
    const first = v.pick(FIRST_OCTETS[pool]);
    // The tag shifts the second octet: the same seed under another tag uses other addresses.
    const second = (v.int(0, 255) + (this.salt & 0xff)) & 0xff;
    return `${first}.${second}.${v.int(0, 255)}.${v.int(1, 254)}`;
  }

  deviceId(): string {
    const v = this.values;
    const h = (n: number) => v.symbols(HEX, n);
    return `${h(8)}-${h(4)}-4${h(3)}-${v.pick(['8', '9', 'a', 'b'])}${h(3)}-${h(12)}`;
  }

  userAgent(bot = false): string {
    return this.values.pick(bot ? BOT_AGENTS : USER_AGENTS);
  }

  card(): string {
    return `card_${this.tag}_${this.values.symbols(ALNUM, 14)}`;
  }

  phone(): string {
    const v = this.values;
    return `+1${v.int(201, 989)}${v.int(200, 999)}${String(v.int(0, 9999)).padStart(4, '0')}`;
  }

  email(disposable = false): string {
    const v = this.values;
    const local = `${v.pick(FIRST)}.${v.pick(LAST)}${v.int(1, 9999)}.${this.tag}`;
    return `${local}@${v.pick(disposable ? DISPOSABLE_DOMAINS : MAIL_DOMAINS)}`;
  }

  address(): Address {
    const v = this.values;
    const [city, region, zip] = v.pick(CITIES);
    const unit = v.chance(0.3) ? { line2: `Apt ${v.int(1, 40)}` } : {};
    return {
      line1: `${v.int(1, 9999)} ${v.pick(STREETS)} ${v.pick(SUFFIXES)} ${this.tag.toUpperCase()}`,
      ...unit,
      city,
      region,
      postal_code: `${zip}${String(v.int(0, 99)).padStart(2, '0')}`,
      country: 'US',
    };
  }

  /** A full, unshared identity. */
  shopper(pool: IpPool, overrides: Partial<Shopper> = {}): Shopper {
    return {
      customerId: this.customerId(),
      ip: this.ip(pool),
      deviceId: this.deviceId(),
      userAgent: this.userAgent(),
      email: this.email(),
      phone: this.values.chance(0.7) ? this.phone() : undefined,
      address: this.address(),
      card: this.card(),
      // From a month to five years old.
      accountAgeSeconds: this.values.int(30 * 86_400, 5 * 365 * 86_400),
      ...overrides,
    };
  }

  /** Uniform draw from the value stream (for choices that only change values, never structure). */
  get rng(): Rng {
    return this.values;
  }
}

/** Upper-case letters and digits of the tag, for code texts. */
export function codeTag(tag: string): string {
  return tag.toUpperCase().replace(/[^A-Z0-9]/g, '');
}

/**
 * The public addresses of one mobile carrier's NAT, shared by every scenario of a run: subscribers of the
 * carrier scenario and a sprayer on a phone come out of the same few addresses, as they would.
 */
export function carrierEgressIp(seed: number, tag: string, index: number): string {
  const rng = new Rng(`promoguard-sim|${seed}|${tag}|carrier-egress`).fork(index);
  const second = (56 + (hash32(tag) & 0x7)) & 0xff;
  return `172.${second}.${rng.int(0, 255)}.${rng.int(1, 254)}`;
}
