/**
 * The directory-tree part of `npm run bench:cbt`: a 20,000-file tree (200 folders of 100 files of
 * 0.5–4 KiB, random bytes) protected by a protection server and an agent daemon, whose inotify
 * change journal says what changed, against restic and borg backing up the same folder. Steps:
 * first backup, nothing changed (three times), and three rounds of 100 files rewritten (4 KiB
 * each) — time, bytes read (Holdfast) and repository growth per step.
 *
 * Holdfast's time is measured three ways: the job (server clock, agent pickup to commit), the
 * API round trip (sync requested → completion answered, by a client already connected, as the
 * console or a script sees it) and the CLI (`holdfast sync --wait --json`, a new Node process
 * each time). restic and borg are timed around their process. Caches stay warm (the tree was
 * just written): the conservative comparison for Holdfast, whose journal reads nothing.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startProtection } from './cbt-server.js';

export interface TreeStep {
  step: string;
  tool: string;
  /** wall time of the tool's command; for Holdfast, the API round trip */
  ms: number;
  /** Holdfast: the job's own duration and the CLI round trip */
  jobMs?: number;
  cliMs?: number;
  tracker?: string;
  readBytes?: number;
  growth: number;
}

const DIRS = 200;
const FILES_PER_DIR = Number(process.env.HOLDFAST_CBT_TREE_FILES ?? 20_000) / DIRS;

interface JobView {
  id: string;
  state: string;
  result: { tracker?: string; readBytes?: number; durationMs?: number } | null;
  error: { message: string } | null;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function du(path: string): number {
  return Number(spawnSync('du', ['-sb', path], { encoding: 'utf8' }).stdout.split('\t')[0]);
}

function timed(argv: string[], env: Record<string, string> = {}): { ms: number; stdout: string } {
  const t0 = performance.now();
  const r = spawnSync(argv[0] as string, argv.slice(1), { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 });
  const ms = performance.now() - t0;
  if (r.status !== 0 && !(argv[0] === 'borg' && r.status === 1)) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { ms, stdout: r.stdout };
}

function makeTree(src: string): void {
  rmSync(src, { recursive: true, force: true });
  for (let d = 0; d < DIRS; d++) {
    mkdirSync(join(src, `d${d}`), { recursive: true });
    for (let f = 0; f < FILES_PER_DIR; f++) writeFileSync(join(src, `d${d}`, `f${f}`), randomBytes(512 + ((d * 131 + f * 17) % 3584)));
  }
}

/** Rewrites 100 files with 4 KiB of new bytes each, in 100 different folders. */
function change100(src: string, round: number): number {
  let bytes = 0;
  for (let i = 0; i < 100; i++) {
    const data = randomBytes(4096);
    writeFileSync(join(src, `d${(i * 7 + round) % DIRS}`, `f${(i * 37 + round) % FILES_PER_DIR}`), data);
    bytes += data.length;
  }
  return bytes;
}

export async function treeBench(cli: string, work: string, log: (s: string) => void): Promise<{ steps: TreeStep[]; changedBytes: number }> {
  const src = join(work, 'tree');
  log(`making a ${DIRS * FILES_PER_DIR}-file tree…`);
  makeTree(src);
  const p = await startProtection(cli, join(work, 'tree-protection'), 'bench');
  try {
    const { admin, env, pool } = p;
    await admin.json('POST', '/api/v1/groups', { name: 'tree', syncEvery: '0s', points: [], retain: '14d', compress: true });
    await admin.json('POST', '/api/v1/sources', { name: 'tree', group: 'tree', agent: 'bench', kind: 'dir', path: src });

    const steps: TreeStep[] = [];
    const syncApi = async (): Promise<{ ms: number; job: JobView }> => {
      const t0 = performance.now();
      let job = await admin.json<JobView>('POST', '/api/v1/sources/tree/sync', {});
      while (job.state === 'queued' || job.state === 'running') job = await admin.json<JobView>('GET', `/api/v1/jobs/${job.id}/wait?timeout=30`, undefined, { retries: 3 });
      const ms = performance.now() - t0;
      if (job.state !== 'succeeded') throw new Error(`holdfast sync ${job.state}: ${job.error?.message ?? ''}`);
      return { ms, job };
    };
    const holdfast = async (step: string, cliToo: boolean): Promise<void> => {
      const before = du(pool);
      const { ms, job } = await syncApi();
      const growth = du(pool) - before;
      let cliMs: number | undefined;
      // The CLI round trip, on the state just reached (nothing changed since): a sync like the one timed.
      if (cliToo) cliMs = timed(['node', cli, 'sync', 'tree', '--wait', '--json'], env).ms;
      steps.push({ step, tool: `holdfast (${job.result?.tracker ?? '?'})`, ms, jobMs: job.result?.durationMs, cliMs, tracker: job.result?.tracker, readBytes: job.result?.readBytes, growth });
    };
    const resticEnv = { RESTIC_REPOSITORY: join(work, 'tree-restic'), RESTIC_PASSWORD: 'bench', RESTIC_CACHE_DIR: join(work, 'restic-cache') };
    const borgRepo = join(work, 'tree-borg');
    const borgEnv = { BORG_BASE_DIR: join(work, 'borg-base'), BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes' };
    rmSync(resticEnv.RESTIC_REPOSITORY, { recursive: true, force: true });
    rmSync(borgRepo, { recursive: true, force: true });
    timed(['restic', 'init', '--repository-version', '2'], resticEnv);
    timed(['borg', 'init', '--encryption=none', borgRepo], borgEnv);
    let archive = 0;
    const peers = (step: string): void => {
      let b = du(resticEnv.RESTIC_REPOSITORY);
      const r = timed(['restic', 'backup', '--quiet', src], resticEnv);
      steps.push({ step, tool: 'restic', ms: r.ms, growth: du(resticEnv.RESTIC_REPOSITORY) - b });
      b = du(borgRepo);
      const g = timed(['borg', 'create', '--compression', 'zstd,3', `${borgRepo}::t${archive++}`, src], borgEnv);
      steps.push({ step, tool: 'borg', ms: g.ms, growth: du(borgRepo) - b });
    };

    await holdfast('first', false);
    peers('first');
    log('tree: first backups done');
    // The agent's journal started with it; its first sync after a restart would be a consistency
    // check, so nothing here restarts it.
    for (let i = 0; i < 3; i++) {
      await holdfast('nothing changed', i === 0);
      peers('nothing changed');
    }
    log('tree: unchanged done');
    let changedBytes = 0;
    for (let round = 1; round <= 3; round++) {
      changedBytes = change100(src, round);
      await sleep(200); // the journal drains every 50 ms
      await holdfast('100 files changed', false);
      peers('100 files changed');
    }
    log('tree: 100-file changes done');
    return { steps, changedBytes };
  } finally {
    await p.stop();
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

/** The report's lines for the tree: every step, then the medians and the target. */
export function treeReport(steps: TreeStep[], changedBytes: number): string[] {
  const mib = (b: number): string => (b / 2 ** 20).toFixed(2);
  const lines = ['| step | tool | time (ms) | job (ms) | CLI (ms) | read (KiB) | growth (MiB) |', '|---|---|---|---|---|---|---|'];
  for (const s of steps) {
    lines.push(`| ${s.step} | ${s.tool} | ${s.ms.toFixed(0)} | ${s.jobMs ?? ''} | ${s.cliMs === undefined ? '' : s.cliMs.toFixed(0)} | ${s.readBytes === undefined ? '' : (s.readBytes / 1024).toFixed(0)} | ${mib(s.growth)} |`);
  }
  const med = (step: string, tool: string, f: (s: TreeStep) => number | undefined): number => median(steps.filter((s) => s.step === step && s.tool.startsWith(tool)).map(f).filter((x): x is number => x !== undefined));
  const h = med('nothing changed', 'holdfast', (s) => s.ms);
  const r = med('nothing changed', 'restic', (s) => s.ms);
  const b = med('nothing changed', 'borg', (s) => s.ms);
  const cliMs = med('nothing changed', 'holdfast', (s) => s.cliMs);
  const ch = med('100 files changed', 'holdfast', (s) => s.ms);
  const cr = med('100 files changed', 'restic', (s) => s.ms);
  lines.push(
    '',
    'Holdfast time = API round trip (sync requested → completion answered); job = the server\'s job time; CLI = `holdfast sync --wait --json` as a new process. Medians:',
    `- tree, nothing changed: Holdfast ${h.toFixed(0)} ms (CLI ${cliMs.toFixed(0)} ms), restic ${r.toFixed(0)} ms, borg ${b.toFixed(0)} ms: ${((100 * h) / r).toFixed(1)}% of restic's (target ≤ 10%: ${h <= r / 10 ? 'met' : 'NOT met'}; CLI ${((100 * cliMs) / r).toFixed(1)}%)`,
    `- tree, 100 files changed (${mib(changedBytes)} MiB): Holdfast ${ch.toFixed(0)} ms, restic ${cr.toFixed(0)} ms (${((100 * ch) / cr).toFixed(1)}%); growth Holdfast ${mib(med('100 files changed', 'holdfast', (s) => s.growth))} MiB, restic ${mib(med('100 files changed', 'restic', (s) => s.growth))} MiB, borg ${mib(med('100 files changed', 'borg', (s) => s.growth))} MiB`,
  );
  return lines;
}
