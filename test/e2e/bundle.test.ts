/**
 * The esbuild bundle of the CLI (dist/bundle): the launcher chooses it only while it is at least
 * as new as dist/src, and the bundle itself backs up and restores (codec workers, the native
 * addon, zstd) and checks a SQLite database on its bundled worker entry.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, mkdirSync, openSync, statSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { REPO, CLI, scratch, snapshotTree, diffSnapshots } from './cli-harness.js';
import { buildTree, prng } from './tree-fixtures.js';

const BUNDLE = join(REPO, 'dist', 'bundle', 'holdfast.mjs');
const COMPILED = join(REPO, 'dist', 'src', 'cli', 'main.js');

/** The bundle, when `npm run build` made it after the last tsc (a tsc-only rebuild leaves it stale). */
function freshBundle(): boolean {
  const b = statSync(BUNDLE, { throwIfNoEntry: false });
  return b !== undefined && b.mtimeMs >= statSync(COMPILED).mtimeMs;
}

function run(args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('launcher', () => {
  // A copy of bin/holdfast.js beside stand-in entries that say which one ran.
  function layout(): { root: string; cleanup: () => void; launch: (env?: NodeJS.ProcessEnv) => string; age: (file: 'bundle' | 'compiled', s: number) => void } {
    const { dir, cleanup } = scratch('holdfast-launcher-');
    mkdirSync(join(dir, 'bin'));
    mkdirSync(join(dir, 'dist', 'bundle'), { recursive: true });
    mkdirSync(join(dir, 'dist', 'src', 'cli'), { recursive: true });
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
    copyFileSync(CLI, join(dir, 'bin', 'holdfast.js'));
    const files = { bundle: join(dir, 'dist', 'bundle', 'holdfast.mjs'), compiled: join(dir, 'dist', 'src', 'cli', 'main.js') };
    writeFileSync(files.bundle, "export function main() { console.log('bundle'); }\n");
    writeFileSync(files.compiled, "export function main() { console.log('compiled'); }\n");
    return {
      root: dir,
      cleanup,
      launch: (env = {}) => {
        const r = run([join(dir, 'bin', 'holdfast.js')], { HOLDFAST_NO_BUNDLE: '', ...env });
        assert.equal(r.code, 0, r.stderr);
        return r.stdout.trim();
      },
      age: (file, s) => utimesSync(files[file], new Date(Date.now() - s * 1000), new Date(Date.now() - s * 1000)),
    };
  }

  test('runs the bundle when it is newer than dist/src, dist/src when a later tsc left it newer or HOLDFAST_NO_BUNDLE is set', (t) => {
    const l = layout();
    t.after(l.cleanup);
    l.age('compiled', 60);
    assert.equal(l.launch(), 'bundle');
    assert.equal(l.launch({ HOLDFAST_NO_BUNDLE: '1' }), 'compiled');
    l.age('compiled', 0);
    l.age('bundle', 60);
    assert.equal(l.launch(), 'compiled');
  });

  test('runs dist/src when there is no bundle', (t) => {
    const l = layout();
    t.after(l.cleanup);
    spawnSync('rm', [join(l.root, 'dist', 'bundle', 'holdfast.mjs')]);
    assert.equal(l.launch(), 'compiled');
  });
});

describe('the bundle', { skip: freshBundle() ? false : 'dist/bundle is missing or older than dist/src: run npm run build' }, () => {
  test('backs up a tree into a local pool and restores it byte for byte', (t) => {
    const { dir, cleanup } = scratch();
    t.after(cleanup);
    // A script file, not --eval: worker threads inherit the execArgv, and --input-type with it.
    const launcher = join(dir, 'run-bundle.mjs');
    writeFileSync(launcher, `const m = await import(${JSON.stringify(BUNDLE)});\nawait m.main(['node', 'holdfast', ...process.argv.slice(2)]);\n`);
    const viaBundle = (args: string[]): ReturnType<typeof run> => run([launcher, ...args]);
    const src = join(dir, 'src');
    buildTree(src, prng(7), { files: 300, bigFile: 3 * 1024 * 1024 });
    const pool = join(dir, 'pool');
    for (const args of [['pool', 'init', pool], ['backup', '--pool', pool, '--source', 'tree', src], ['restore', '--pool', pool, '--source', 'tree', '--to', join(dir, 'out')]]) {
      const r = viaBundle(args);
      assert.equal(r.code, 0, `holdfast ${args.join(' ')}: ${r.stderr}`);
    }
    assert.deepEqual(diffSnapshots(snapshotTree(src), snapshotTree(join(dir, 'out'))), []);
  });

  test('checks a SQLite database on its bundled worker entry, and finds a damaged one', async (t) => {
    const { dir, cleanup } = scratch();
    t.after(cleanup);
    const file = join(dir, 'app.db');
    const db = new Database(file);
    db.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY, note TEXT); CREATE INDEX orders_note ON orders (note)');
    const insert = db.prepare('INSERT INTO orders (note) VALUES (?)');
    db.transaction(() => {
      for (let i = 0; i < 2000; i++) insert.run(`order ${i}`);
    })();
    db.close();
    const { checkSqlite } = (await import(join(REPO, 'dist', 'bundle', 'sqlite-check.mjs'))) as typeof import('../../src/agent/databases/sqlite-check.js');
    const good = await checkSqlite({ file, query: 'SELECT count(*) FROM orders' });
    assert.equal(good.ok, true, good.detail);
    assert.match(good.detail, /check query answered "2000"/);

    // Break the index's pages: integrity_check must say so.
    const bad = new Database(file);
    const root = (bad.prepare("SELECT rootpage FROM sqlite_schema WHERE name = 'orders_note'").get() as { rootpage: number }).rootpage;
    const pageSize = bad.pragma('page_size', { simple: true }) as number;
    bad.close();
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(pageSize, 0x5a), 0, pageSize, (root - 1) * pageSize);
    closeSync(fd);
    const damaged = await checkSqlite({ file });
    assert.equal(damaged.ok, false, damaged.detail);
  });

  test('stack traces name the TypeScript sources', () => {
    const r = run(['--enable-source-maps', '--input-type=module', '-e', `const { checkSqlite } = await import(${JSON.stringify(join(REPO, 'dist', 'bundle', 'sqlite-check.mjs'))}); try { await checkSqlite({ file: '/nonexistent/app.db' }); } catch (e) { console.log(e.stack); }`]);
    assert.match(r.stdout, /src\/agent\/databases\/sqlite-check\.ts:\d+:\d+/);
  });
});
