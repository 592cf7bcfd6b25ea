/**
 * The layer rule, checked: each folder under src/ imports only from the layers below it, so the
 * agent never depends on the pool or server, and core stays free of I/O.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

/** layer → layers it may import */
const ALLOWED: Record<string, string[]> = {
  core: ['core'],
  native: ['native'],
  workers: ['workers', 'native', 'core'],
  pool: ['pool', 'workers', 'core'],
  agent: ['agent', 'workers', 'native', 'core'],
  server: ['server', 'pool', 'workers', 'core'],
  cli: ['cli', 'agent', 'server', 'pool', 'workers', 'native', 'core'],
};
const IO_MODULES = ['node:fs', 'node:fs/promises', 'node:child_process', 'node:net', 'node:http', 'node:https', 'node:worker_threads', 'node:dgram'];

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') && !p.endsWith('.test.ts') ? [p] : [];
  });
}

test('every src/ file imports only from its own or lower layers', () => {
  const problems: string[] = [];
  for (const file of files(SRC)) {
    const rel = relative(SRC, file);
    const layer = rel.split('/')[0] as string;
    if (!rel.includes('/')) continue;
    const allowed = ALLOWED[layer];
    assert.ok(allowed, `${rel}: folder '${layer}' is not a known layer; add it to the layer map`);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^\s*(?:import|export)[^'"]*from\s+'([^']+)'/gm)) {
      const spec = m[1] as string;
      if (spec.startsWith('.')) {
        const target = relative(SRC, resolve(dirname(file), spec));
        const targetLayer = target.split('/')[0] as string;
        if (!allowed.includes(targetLayer)) problems.push(`${rel} (${layer}) imports ${spec} (${targetLayer})`);
      } else if (layer === 'core' && IO_MODULES.includes(spec)) {
        problems.push(`${rel}: core must not do I/O, but imports ${spec}`);
      }
    }
  }
  assert.deepEqual(problems, []);
});
