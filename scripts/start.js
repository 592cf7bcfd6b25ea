#!/usr/bin/env node
// `npm start [-- PATH]`: the main job on embedded defaults. Until the protection server lands,
// that is a local backup: create ./holdfast-data/pool if needed and back PATH (default /etc)
// up into it as a new recovery point, then list the recovery points.
import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';

const pool = resolve(process.env.HOLDFAST_POOL ?? 'holdfast-data/pool');
const path = resolve(process.argv[2] ?? '/etc');
const source = (basename(path) || 'root').replace(/[^A-Za-z0-9._-]/g, '_');
const cli = new URL('../bin/holdfast.js', import.meta.url).pathname;
const run = (args) => {
  const r = spawnSync(process.execPath, [cli, ...args], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
if (!existsSync(`${pool}/config.json`)) run(['pool', 'init', pool]);
run(['backup', '--pool', pool, '--source', source, path]);
run(['points', '--pool', pool, '--source', source]);
console.log(`\nRestore with: npx holdfast restore --pool ${pool} --source ${source} --to /tmp/restore-${source}`);
