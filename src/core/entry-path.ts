/**
 * Paths inside a manifest are relative, '/'-separated and normalized. Anything else ('..',
 * absolute, empty or '.' components, NUL) is refused, so no restore can leave its target root.
 */
import { HoldfastError } from './errors.js';

export const ROOT_PATH = '.';

export function checkEntryPath(p: string): string {
  if (p === ROOT_PATH) return p;
  if (typeof p !== 'string' || p.length === 0 || p.includes('\0') || p.startsWith('/') || p.endsWith('/')) {
    throw new HoldfastError('UNSAFE_PATH', `unsafe path in manifest: ${JSON.stringify(p)}`, { path: p });
  }
  for (const part of p.split('/')) {
    if (part === '' || part === '.' || part === '..') {
      throw new HoldfastError('UNSAFE_PATH', `unsafe path in manifest: ${JSON.stringify(p)}`, { path: p });
    }
  }
  return p;
}

/** Normalize a user-given sub path (`--path`) into manifest form; '' or '/' means the root. */
export function normalizeSubPath(p: string): string {
  const parts = p.split('/').filter((x) => x !== '' && x !== '.');
  if (parts.length === 0) return ROOT_PATH;
  return checkEntryPath(parts.join('/'));
}

export function baseName(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? p : p.slice(i + 1);
}

export function joinEntryPath(parent: string, name: string): string {
  return parent === ROOT_PATH ? name : `${parent}/${name}`;
}

/** True when p is `under` itself or inside it. */
export function isWithin(p: string, under: string): boolean {
  return under === ROOT_PATH || p === under || p.startsWith(`${under}/`);
}

/**
 * Walk order: the root first, a directory before its children, siblings by name (UTF-16 code
 * units, as Array.prototype.sort). A manifest's entries are strictly increasing in this order,
 * which also means no path appears twice.
 */
export function compareWalkOrder(a: string, b: string): number {
  if (a === b) return 0;
  if (a === ROOT_PATH) return -1;
  if (b === ROOT_PATH) return 1;
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const p = x[i] as string;
    const q = y[i] as string;
    if (p !== q) return p < q ? -1 : 1;
  }
  return x.length - y.length;
}

/**
 * Several entries restored together into one target, each under its own name: normalized,
 * in walk order, without an entry that lies inside another one chosen (it comes with that one),
 * and without two entries of the same name (both would land on TARGET/name).
 */
export function restoreSelection(paths: readonly string[]): string[] {
  if (paths.length === 0) throw new HoldfastError('BAD_ARGUMENT', 'no path to restore was given');
  const sorted = [...new Set(paths.map(normalizeSubPath))].sort(compareWalkOrder);
  const out: string[] = [];
  for (const p of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && isWithin(p, last)) continue; // walk order puts an ancestor right before its run
    out.push(p);
  }
  const byName = new Map<string, string>();
  for (const p of out) {
    const other = byName.get(baseName(p));
    if (other !== undefined) {
      throw new HoldfastError('BAD_ARGUMENT', `'${other}' and '${p}' have the same name and would both be restored as '${baseName(p)}' in one target: restore them to different places`, { path: p });
    }
    byName.set(baseName(p), p);
  }
  return out;
}
