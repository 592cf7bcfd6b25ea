/**
 * Login rate limiting: failed attempts are counted per client address and per account name in a
 * sliding window; past the limit, logins from that address or for that name are refused (429)
 * until the window has moved on, before any password is checked.
 */
import { HoldfastError } from '../core/errors.js';

export class LoginLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    readonly maxFailures = 5,
    readonly windowMs = 15 * 60 * 1000,
  ) {}

  private recent(key: string, now: number): number[] {
    const list = (this.failures.get(key) ?? []).filter((t) => t > now - this.windowMs);
    if (list.length === 0) this.failures.delete(key);
    else this.failures.set(key, list);
    return list;
  }

  /** Throws RATE_LIMITED when the address or the name has failed too often lately. */
  check(ip: string, name: string, now = Date.now()): void {
    for (const key of [`ip:${ip}`, `user:${name}`]) {
      const list = this.recent(key, now);
      if (list.length >= this.maxFailures) {
        const wait = Math.ceil(((list[0] as number) + this.windowMs - now) / 1000);
        throw new HoldfastError('RATE_LIMITED', `too many failed logins ${key.startsWith('ip:') ? 'from this address' : `for '${name}'`}; try again in ${wait} s`);
      }
    }
  }

  failed(ip: string, name: string, now = Date.now()): void {
    for (const key of [`ip:${ip}`, `user:${name}`]) this.failures.set(key, [...this.recent(key, now), now]);
    // Bounded memory under a flood: the oldest keys go first (a Map keeps insertion order).
    for (const key of this.failures.keys()) {
      if (this.failures.size <= 10_000) break;
      this.failures.delete(key);
    }
  }

  /**
   * A good password clears the name's count only: the address's stays, or one valid account would
   * let its holder reset the limit between guesses at other names.
   */
  succeeded(name: string): void {
    this.failures.delete(`user:${name}`);
  }
}
