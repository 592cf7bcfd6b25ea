/**
 * Compares a restore's digest with the data set's: every file present, none extra, every
 * byte equal.
 */
import type { DataDigest } from './data-digest.js';

/** The outcome of checking one restore. */
export interface RestoreCheck {
  readonly ok: boolean;
  readonly files: number;
  readonly missing: number;
  readonly extra: number;
  readonly differing: number;
  /** Up to a few example paths per problem. */
  readonly examples: readonly string[];
}

const EXAMPLES = 5;

/** Checks `restored` against `expected`. */
export function compareDigests(expected: DataDigest, restored: DataDigest): RestoreCheck {
  const missing: string[] = [];
  const differing: string[] = [];
  for (const [path, digest] of expected) {
    const got = restored.get(path);
    if (got === undefined) missing.push(path);
    else if (got !== digest) differing.push(path);
  }
  const extra = [...restored.keys()].filter((path) => !expected.has(path));
  const examples = [
    ...missing.slice(0, EXAMPLES).map((p) => `missing ${p}`),
    ...extra.slice(0, EXAMPLES).map((p) => `extra ${p}`),
    ...differing.slice(0, EXAMPLES).map((p) => `differs ${p}`),
  ];
  const ok = missing.length === 0 && extra.length === 0 && differing.length === 0;
  return { ok, files: expected.size, missing: missing.length, extra: extra.length, differing: differing.length, examples };
}
