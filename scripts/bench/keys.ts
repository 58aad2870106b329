// The benchmark's key space, the same for every system: keys "k0000".."k9999" (as many digits as
// the key count needs), values of printable random bytes, and scan prefixes that match exactly 100
// keys ("k12" matches k1200..k1299). Printable values keep every API's encoding cheap and equal
// (raw bodies, form bodies, base64 in JSON) while staying incompressible for the stores.
import { randomInt } from 'node:crypto';

/** Keys matched by one scan prefix: a prefix drops the key's last two digits. */
export const KEYS_PER_PREFIX = 100;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export class KeySpace {
  readonly digits: number;

  constructor(
    readonly count: number,
    readonly valueBytes: number,
  ) {
    if (!Number.isInteger(count) || count < KEYS_PER_PREFIX || count % KEYS_PER_PREFIX !== 0) {
      throw new Error(`the key count must be a multiple of ${KEYS_PER_PREFIX}, not ${count}`);
    }
    this.digits = Math.max(3, String(count - 1).length);
  }

  key(i: number): string {
    return `k${String(i).padStart(this.digits, '0')}`;
  }

  keys(): string[] {
    return Array.from({ length: this.count }, (_, i) => this.key(i));
  }

  get prefixCount(): number {
    return this.count / KEYS_PER_PREFIX;
  }

  /** The i-th scan prefix; it matches keys i*100 .. i*100+99. */
  prefix(i: number): string {
    return this.key(i * KEYS_PER_PREFIX).slice(0, -2);
  }

  prefixes(): string[] {
    return Array.from({ length: this.prefixCount }, (_, i) => this.prefix(i));
  }

  /** The first key after every key with `prefix` (etcd's range_end for a prefix). */
  static prefixEnd(prefix: string): string {
    const last = prefix.charCodeAt(prefix.length - 1);
    return prefix.slice(0, -1) + String.fromCharCode(last + 1);
  }

  randomValue(): string {
    let value = '';
    for (let i = 0; i < this.valueBytes; i++) value += ALPHABET[randomInt(ALPHABET.length)];
    return value;
  }

  /** A pool of distinct random values that load generators pick from per request. */
  values(n: number): string[] {
    return Array.from({ length: n }, () => this.randomValue());
  }
}

export function base64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}
