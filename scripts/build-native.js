#!/usr/bin/env node
// Builds the native addon (native/ -> native/build/Release/holdfast_native.node) with node-gyp,
// but only when the addon is missing or older than its C source or binding.gyp.
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');
const addon = join(nativeDir, 'build', 'Release', 'holdfast_native.node');
const inputs = [join(nativeDir, 'holdfast.c'), join(nativeDir, 'binding.gyp')];

function mtimeMs(path) {
  return existsSync(path) ? statSync(path).mtimeMs : undefined;
}

const built = mtimeMs(addon);
const newestInput = Math.max(...inputs.map((p) => mtimeMs(p) ?? Infinity));
if (built !== undefined && built >= newestInput) {
  process.exit(0);
}

// The node-gyp that npm ships; run through this node so a missing execute bit does not matter.
const npmGyp = '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js';
const gyp = process.env.npm_config_node_gyp || (existsSync(npmGyp) ? npmGyp : 'node-gyp');
const command = gyp.endsWith('.js') ? process.execPath : gyp;
const args = [...(gyp.endsWith('.js') ? [gyp] : []), 'rebuild', '--directory', nativeDir];

// Use the headers installed beside this node rather than letting node-gyp download them.
if (!process.env.npm_config_nodedir) {
  const prefix = resolve(dirname(process.execPath), '..');
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h')) && existsSync(join(prefix, 'include', 'node', 'common.gypi'))) {
    args.push(`--nodedir=${prefix}`);
  }
}

console.log(`build-native: ${built === undefined ? 'building' : 'rebuilding'} ${addon}`);
const r = spawnSync(command, args, { stdio: 'inherit', cwd: root });
if (r.error) {
  console.error(`build-native: cannot run node-gyp (${gyp}): ${r.error.message}`);
  process.exit(1);
}
process.exit(r.status ?? 1);
