/**
 * `npm run bench:pg`: PostgreSQL protection against pgBackRest on the same database in one run.
 * A pgbench database (scale 64 ≈ 1 GiB; --scale to shrink); Holdfast's express full and
 * pgBackRest's full backup back to back on the idle database; one period of pgbench load with
 * every WAL segment archived to both (Holdfast's archive_command, then pgBackRest's archive-push);
 * then each tool's point-in-time restore to the same time near the end of that period (started,
 * recovery waited for), the source stopped, so both replay the same WAL. Holdfast's
 * per-segment latency is measured from log-push's start (archive_command's call) to durable on the
 * server (target ≤ 5 s). Prints times, ratios and the server's and agent's peak RSS.
 * Needs root, Debian's PostgreSQL 15, and installs pgbackrest with apt-get when missing.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from '../src/agent/databases/free-port.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(root, 'bin', 'holdfast.js');
const BIN = '/usr/lib/postgresql/15/bin';
const { values: args } = parseArgs({
  options: { scale: { type: 'string', default: '64' }, ship: { type: 'string', default: '60' }, dir: { type: 'string', default: join(root, 'bench-data', 'pg') } },
});
const scale = Number(args.scale);
const shipS = Number(args.ship);
const dir = resolve(args.dir);
const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
const asPg = { uid, gid, cwd: '/' };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;


function pgctl(data: string, ...a: string[]): void {
  execFileSync(join(BIN, 'pg_ctl'), ['-D', data, ...a], { ...asPg, stdio: 'pipe' });
}

function psql(sock: string, port: number, sql: string): string {
  return execFileSync(join(BIN, 'psql'), ['-h', sock, '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-Atc', sql], { ...asPg, encoding: 'utf8' }).trim();
}

function hwm(pid: number | undefined): number {
  if (!pid) return 0;
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

function start(argv: string[]): { child: ChildProcess; out: string[] } {
  const child = spawn(process.execPath, [CLI, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: string[] = [];
  child.stdout?.on('data', (d: Buffer) => out.push(d.toString()));
  child.stderr?.on('data', (d: Buffer) => out.push(d.toString()));
  return { child, out };
}

function hf(url: string, token: string, argv: string[]): string {
  return execFileSync(process.execPath, [CLI, ...argv], { encoding: 'utf8', env: { ...process.env, HOLDFAST_SERVER: url, HOLDFAST_TOKEN: token }, maxBuffer: 64 * 1024 * 1024 });
}

function pgbench(sock: string, port: number, seconds: number): ChildProcess {
  return spawn(join(BIN, 'pgbench'), ['-h', sock, '-p', String(port), '-U', 'postgres', '-c', '4', '-j', '2', '-T', String(seconds), 'postgres'], { ...asPg, stdio: 'ignore' });
}

async function waitPromoted(sock: string, port: number): Promise<void> {
  for (;;) {
    try {
      if (psql(sock, port, 'SELECT pg_is_in_recovery()') === 'f') return;
    } catch {
      // replaying
    }
    await sleep(200);
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:pg needs root (PostgreSQL runs as postgres)');
  if (spawnSync('pgbackrest', ['version']).status !== 0) execFileSync('apt-get', ['install', '-y', '-q', 'pgbackrest'], { stdio: 'inherit' });
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  chownSync(dir, uid, gid);
  const data = join(dir, 'data');
  const port = await freePort();
  execFileSync(join(BIN, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-instructions'], { ...asPg, stdio: 'pipe' });
  appendFileSync(join(data, 'postgresql.conf'), `\nport = ${port}\nunix_socket_directories = '${dir}'\nlisten_addresses = ''\nwal_level = replica\narchive_mode = on\nmax_wal_size = '2GB'\nshared_buffers = '128MB'\n`);
  pgctl(data, '-l', join(dir, 'pg.log'), '-w', 'start');
  let t = Date.now();
  execFileSync(join(BIN, 'pgbench'), ['-h', dir, '-p', String(port), '-U', 'postgres', '-i', '-q', '-s', String(scale), 'postgres'], { ...asPg, stdio: 'pipe' });
  const dbBytes = Number(psql(dir, port, "SELECT pg_database_size('postgres')"));
  console.log(`pgbench database: scale ${scale}, ${(dbBytes / 2 ** 30).toFixed(2)} GiB (init ${secs(Date.now() - t)})`);

  // --- Holdfast
  const srvPort = await freePort();
  const server = start(['server', '--data', join(dir, 'hf-server'), '--listen', `127.0.0.1:${srvPort}`, '--log-level', 'warn', '--gc-every', 'off', '--verify-every', 'off']);
  const url = `https://127.0.0.1:${srvPort}`;
  while (!server.out.join('').includes('listening on')) await sleep(100);
  const token = readFileSync(join(dir, 'hf-server', 'admin-token'), 'utf8').trim();
  const join1 = hf(url, token, ['agent-token', 'create', '--expires', '5m']).trim().split('\n')[0] as string;
  const agent = start(['agent', '--server', url, '--join', join1, '--state', join(dir, 'hf-agent'), '--name', 'pg', '--log-level', 'info']);
  for (;;) {
    const agents = JSON.parse(hf(url, token, ['agents', '--json'])) as Array<{ status: string }>;
    if (agents.some((a) => a.status === 'online')) break;
    await sleep(300);
  }
  // No schedule: the bench asks for the one express full it times (a scheduled one would make a
  // request wait). archive_timeout is set to 10 s by hand after the fulls.
  hf(url, token, ['group', 'create', 'g', '--sync-every', 'off']);
  hf(url, token, ['source', 'add', '--group', 'g', '--agent', 'pg', '--kind', 'postgres', '--connect', `postgresql://postgres@/postgres?host=${encodeURIComponent(dir)}&port=${port}`, 'db', data]);
  t = Date.now();
  hf(url, token, ['sync', 'db', '--wait', '--json']);
  const hfFull = Date.now() - t;
  console.log(`holdfast express full: ${secs(hfFull)}`);

  // --- pgBackRest's full right after, on the idle database; from here on every segment goes to
  // both (Holdfast's archive_command, then pgBackRest's archive-push), so both restores replay
  // the same WAL to the same target: the ratio compares the tools, not two load periods.
  const repo = join(dir, 'pgbr-repo');
  mkdirSync(repo);
  chownSync(repo, uid, gid);
  const conf = join(dir, 'pgbackrest.conf');
  writeFileSync(conf, `[db]\npg1-path=${data}\npg1-socket-path=${dir}\npg1-port=${port}\n\n[global]\nrepo1-path=${repo}\nstart-fast=y\ncompress-type=zst\nprocess-max=2\nlog-path=${dir}\nlock-path=${dir}\n`);
  chmodSync(conf, 0o644);
  const br = (...a: string[]): void => void execFileSync('pgbackrest', [`--config=${conf}`, '--stanza=db', ...a], { ...asPg, stdio: 'pipe' });
  const hfArchive = psql(dir, port, 'SHOW archive_command');
  if (!hfArchive.includes('log-push')) throw new Error(`the express full did not set Holdfast's archive_command (it is '${hfArchive}')`);
  const both = `${hfArchive} && pgbackrest --config=${conf} --stanza=db archive-push %p`;
  psql(dir, port, `ALTER SYSTEM SET archive_command = '${both.replace(/'/g, "''")}'`);
  psql(dir, port, 'SELECT pg_reload_conf()');
  br('stanza-create');
  t = Date.now();
  br('--type=full', 'backup');
  const brFull = Date.now() - t;
  console.log(`pgBackRest full backup: ${secs(brFull)}`);

  psql(dir, port, "ALTER SYSTEM SET archive_timeout = '10s'");
  psql(dir, port, 'SELECT pg_reload_conf()');
  const load = pgbench(dir, port, shipS);
  await new Promise((r) => load.on('exit', r));
  const target = new Date().toISOString();
  await sleep(50);
  // PostgreSQL reaches a target time only at a commit after it: give it one, then close the segment.
  psql(dir, port, 'CREATE TABLE IF NOT EXISTS bench_mark (t timestamptz); INSERT INTO bench_mark VALUES (now())');
  psql(dir, port, 'SELECT pg_switch_wal()');
  await sleep(5000);
  const lat = agent.out.join('').split('\n').filter((l) => l.includes('"log shipped"')).map((l) => (JSON.parse(l) as { latencyMs?: number }).latencyMs ?? 0);
  lat.sort((a, b) => a - b);
  const p = (q: number): number => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))] ?? 0;
  console.log(`holdfast WAL shipping: ${lat.length} segments, latency archive_command → durable: median ${p(0.5)} ms, p95 ${p(0.95)} ms, max ${lat.at(-1) ?? 0} ms (target ≤ 5000 ms)`);
  pgctl(data, '-m', 'fast', 'stop');

  t = Date.now();
  const r = JSON.parse(hf(url, token, ['restore', '--source', 'db', '--at', target, '--to', join(dir, 'hf-restore'), '--json'])) as { database: Record<string, number | undefined> };
  const hfRestore = Date.now() - t;
  console.log(`holdfast point-in-time restore (started, recovered, promoted): ${secs(hfRestore)}`);
  // Where it went (the agent's figures; the rest is the CLI's start, the job's dispatch and the answer).
  const d = r.database;
  const ms = (v: number | undefined): string => (v === undefined ? '?' : secs(v));
  console.log(
    `  phases: on the agent ${ms(d.agentMs)} (CLI start, dispatch, answer ${ms(d.agentMs === undefined ? undefined : hfRestore - d.agentMs)}); data directory ${ms(d.dataMs)}; ` +
      `WAL fetched ${d.logsFetched ?? '?'} of ${d.logs ?? '?'} segments in ${ms(d.fetchMs)} (alongside); PostgreSQL started and promoted ${ms(d.recoveryMs)} after the data directory (accepting connections at ${ms(d.startMs)})`,
  );
  pgctl(join(dir, 'hf-restore'), '-m', 'immediate', 'stop');
  const rss = { server: hwm(server.child.pid), agent: hwm(agent.child.pid) };
  console.log(`peak RSS: server ${(rss.server / 2 ** 20).toFixed(0)} MiB, agent ${(rss.agent / 2 ** 20).toFixed(0)} MiB`);
  agent.child.kill('SIGTERM');
  server.child.kill('SIGTERM');

  const brData = join(dir, 'br-restore');
  mkdirSync(brData, { mode: 0o700 });
  chownSync(brData, uid, gid);
  t = Date.now();
  br(`--pg1-path=${brData}`, '--type=time', `--target=${target.replace('T', ' ').replace('Z', '+00')}`, '--target-action=promote', 'restore');
  const brPort = await freePort();
  appendFileSync(join(brData, 'postgresql.auto.conf'), `\nport = ${brPort}\narchive_mode = off\n`);
  pgctl(brData, '-l', join(dir, 'br-restore.log'), 'start');
  await waitPromoted(dir, brPort);
  const brRestore = Date.now() - t;
  console.log(`pgBackRest point-in-time restore (started, recovered, promoted): ${secs(brRestore)}`);
  pgctl(brData, '-m', 'immediate', 'stop');
  const redo = (log: string): string => /redo done at .*/.exec(readFileSync(log, 'utf8'))?.[0] ?? 'redo: not in the log';
  console.log(`  holdfast's copy: ${redo(join(dir, 'hf-restore.holdfast-wal', 'postgresql.log'))}`);
  console.log(`  pgBackRest's copy: ${redo(join(dir, 'br-restore.log'))}`);
  console.log(`ratios holdfast/pgBackRest: full ${(hfFull / brFull).toFixed(2)}, restore ${(hfRestore / brRestore).toFixed(2)} (target ≤ 1)`);
  if (existsSync(dir)) console.log(`work folder: ${dir}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
