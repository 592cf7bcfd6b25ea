/**
 * `npm run bench:cbt`: change tracking against restic and borg, in one run. A 2 GiB disk image
 * (HOLDFAST_CBT_MIB to change the size) as qcow2 (Holdfast's qcow2-bitmap tracker) and as a raw
 * file in a btrfs subvolume on a loop device (the btrfs tracker); restic and borg back up the
 * same files. After a first backup of each, two changes, each followed by a backup of each:
 * 1% clustered (320 runs of 64 KiB at random aligned offsets) and 5,000 scattered 4 KiB writes.
 * Prints time, bytes read (Holdfast) and repository growth per step, and the targets.
 * Holdfast syncs each target twice per step: by the local CLI (`holdfast backup --pool`, a new
 * process that opens the pool) and through a protection server and agent daemon on this host
 * (`holdfast sync --wait`; the job's own time from the server's record, and the CLI round trip).
 * Then the 20,000-file tree through a protection server and agent (inotify journal), unchanged
 * and with 100 files changed, against restic and borg (cbt-tree.ts).
 * Needs root, qemu-utils, qemu-system-common (qemu-storage-daemon), btrfs-progs, restic, borgbackup. Work folder: bench-data/cbt.
 * HOLDFAST_CBT_PARTS=image,tree (default both) runs only some parts; HOLDFAST_CBT_SCATTERED=0
 * skips the scattered step.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuOf, startProtection, type Protection } from './cbt-server.js';
import { treeBench, treeReport } from './cbt-tree.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = join(root, 'bin', 'holdfast.js');
const work = resolve(process.env.HOLDFAST_CBT_DIR ?? join(root, 'bench-data', 'cbt'));
const size = Number(process.env.HOLDFAST_CBT_MIB ?? 2048) * MiB;

interface Step {
  target: string;
  tool: string;
  step: string;
  seconds: number;
  /** through the server: the job's own time (agent pickup to commit) */
  jobSeconds?: number;
  /** the command's CPU time; through the server, the server's and agent's (and their tools') during the sync */
  cpuSeconds: number;
  readBytes?: number;
  /** undefined through the server: its one pool serves both targets, so the second dedups */
  growth?: number;
}

function run(argv: string[], env: Record<string, string> = {}): { seconds: number; cpuSeconds: number; stdout: string } {
  const cpu0 = cpuOf('self', true);
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0] as string, argv.slice(1), { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 * MiB });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0 && !(argv[0] === 'borg' && r.status === 1)) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { seconds, cpuSeconds: cpuOf('self', true) - cpu0, stdout: r.stdout };
}

function du(path: string): number {
  return Number(execFileSync('du', ['-sb', path], { encoding: 'utf8' }).split('\t')[0]);
}

function dropCaches(): void {
  execFileSync('sync');
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3\n');
  } catch {
    // not allowed here: timings are warm
  }
}

/** A disk-like image: random (incompressible) 60%, text 20%, zeros 20%, by 1 MiB block. */
function makeRaw(path: string): void {
  const fd = openSync(path, 'w');
  const text = Buffer.from('holdfast change tracking benchmark line of text\n'.repeat(Math.ceil(MiB / 48))).subarray(0, MiB);
  let seed = 7;
  for (let off = 0; off < size; off += MiB) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const kind = seed % 10;
    if (kind < 6) writeSync(fd, randomBytes(MiB), 0, MiB, off);
    else if (kind < 8) writeSync(fd, text, 0, MiB, off);
  }
  closeSync(fd);
  execFileSync('truncate', ['-s', String(size), path]);
}

interface Write {
  offset: number;
  length: number;
}

function plan(count: number, length: number): Write[] {
  const slots = size / length;
  const seen = new Set<number>();
  while (seen.size < count) seen.add(Math.floor(Math.random() * slots));
  return [...seen].map((s) => ({ offset: s * length, length }));
}

/** The same writes into the qcow2 (through qemu-io) and the raw file (pwrite). */
function apply(ws: Write[], qcow2: string, raw: string): void {
  const dir = join(work, 'writes');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  const fd = openSync(raw, 'r+');
  const cmds: string[] = [];
  ws.forEach((w, i) => {
    const data = randomBytes(w.length);
    writeSync(fd, data, 0, w.length, w.offset);
    const f = join(dir, `${i}`);
    writeFileSync(f, data);
    cmds.push('-c', `write -q -s ${f} ${w.offset} ${w.length}`);
  });
  closeSync(fd);
  for (let i = 0; i < cmds.length; i += 2000) execFileSync('qemu-io', ['-f', 'qcow2', ...cmds.slice(i, i + 2000), qcow2]);
  rmSync(dir, { recursive: true, force: true });
}

/** The image part: qcow2 and btrfs file against restic and borg; returns the report's lines. */
async function imageBench(): Promise<string[]> {
  const raw0 = join(work, 'disk.raw');
  const qcow2 = join(work, 'disk.qcow2');
  process.stderr.write(`making a ${size / MiB} MiB image…\n`);
  makeRaw(raw0);
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw0, qcow2]);

  const fsImg = join(work, 'btrfs.img');
  const mnt = join(work, 'mnt');
  writeFileSync(fsImg, '');
  execFileSync('truncate', ['-s', String(Math.ceil((size * 2.5) / MiB + 512) * MiB), fsImg]);
  execFileSync('mkfs.btrfs', ['-q', fsImg]);
  const dev = execFileSync('losetup', ['--find', '--show', fsImg], { encoding: 'utf8' }).trim();
  mkdirSync(mnt);
  execFileSync('mount', [dev, mnt]);
  let protection: Protection | undefined;
  try {
    protection = await startProtection(cli, join(work, 'protection'), 'bench');
    const server = protection;
    const vol = join(mnt, 'vol');
    execFileSync('btrfs', ['subvolume', 'create', vol]);
    const raw = join(vol, 'disk.raw');
    execFileSync('cp', ['--reflink=never', raw0, raw]);
    rmSync(raw0);

    const steps: Step[] = [];
    const targets = [
      { name: 'qcow2', file: qcow2, holdfast: ['--kind', 'image', qcow2] },
      { name: 'btrfs file', file: raw, holdfast: ['--kind', 'btrfs', vol] },
    ];
    // One pool per target, as restic and borg get one repository each: the same writes go to
    // both targets, so a shared pool would show the second target's growth as nothing (dedup).
    const pools = targets.map((_, i) => join(work, `pool-${i}`));
    for (const p of pools) run(['node', cli, 'pool', 'init', p]);
    const repos = targets.map((t, i) => ({
      t,
      restic: join(work, `restic-${i}`),
      borg: join(work, `borg-${i}`),
    }));
    const resticEnv = (repo: string): Record<string, string> => ({ RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: 'bench', RESTIC_CACHE_DIR: join(work, 'restic-cache') });
    const borgEnv = { BORG_BASE_DIR: join(work, 'borg-base'), BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes' };
    await server.admin.json('POST', '/api/v1/groups', { name: 'images', syncEvery: '0s', points: [], retain: '14d', compress: true });
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i] as (typeof targets)[number];
      await server.admin.json('POST', '/api/v1/sources', { name: `a${i}`, group: 'images', agent: 'bench', kind: t.holdfast[1], path: t.holdfast[2] });
    }
    for (const r of repos) {
      run(['restic', 'init', '--repository-version', '2'], resticEnv(r.restic));
      run(['borg', 'init', '--encryption=none', r.borg], borgEnv);
    }
    let n = 0;
    const backupAll = (step: string): void => {
      repos.forEach((r, i) => {
        dropCaches();
        const pool = pools[i] as string;
        const before = du(pool);
        const h = run(['node', cli, 'backup', '--pool', pool, '--source', `s${i}`, '--json', ...r.t.holdfast]);
        const j = JSON.parse(h.stdout) as { readBytes: number; tracker: string };
        steps.push({ target: r.t.name, tool: `holdfast (${j.tracker})`, step, seconds: h.seconds, cpuSeconds: h.cpuSeconds, readBytes: j.readBytes, growth: du(pool) - before });
        dropCaches();
        const a = server.cliSync(`a${i}`);
        steps.push({ target: r.t.name, tool: `holdfast server (${a.tracker})`, step, seconds: a.cliMs / 1000, cpuSeconds: a.cpuSeconds, jobSeconds: a.jobMs / 1000, readBytes: a.readBytes });
        dropCaches();
        let b = du(r.restic);
        const rs = run(['restic', 'backup', '--quiet', r.t.file], resticEnv(r.restic));
        steps.push({ target: r.t.name, tool: 'restic', step, seconds: rs.seconds, cpuSeconds: rs.cpuSeconds, growth: du(r.restic) - b });
        dropCaches();
        b = du(r.borg);
        const bs = run(['borg', 'create', '--compression', 'zstd,3', `${r.borg}::a${n++}`, r.t.file], borgEnv);
        steps.push({ target: r.t.name, tool: 'borg', step, seconds: bs.seconds, cpuSeconds: bs.cpuSeconds, growth: du(r.borg) - b });
        process.stderr.write(`${step} ${r.t.name}: done\n`);
      });
    };
    backupAll('first');
    const clustered = plan(Math.round((320 * size) / (2048 * MiB)), 64 * KiB);
    apply(clustered, qcow2, raw);
    backupAll('1% clustered (64 KiB runs)');
    const changed: Record<string, number> = { '1% clustered (64 KiB runs)': clustered.length * 64 * KiB };
    if (process.env.HOLDFAST_CBT_SCATTERED !== '0') {
      const scattered = plan(Math.round((5000 * size) / (2048 * MiB)), 4 * KiB);
      apply(scattered, qcow2, raw);
      backupAll('scattered 4 KiB writes');
      changed['scattered 4 KiB writes'] = scattered.length * 4 * KiB;
    }

    const mib = (b: number): string => (b / MiB).toFixed(1);
    const lines = ['| target | step | tool | time (s) | job (s) | CPU (s) | read (MiB) | growth (MiB) |', '|---|---|---|---|---|---|---|---|'];
    for (const s of steps) {
      lines.push(`| ${s.target} | ${s.step} | ${s.tool} | ${s.seconds.toFixed(2)} | ${s.jobSeconds?.toFixed(2) ?? ''} | ${s.cpuSeconds.toFixed(2)} | ${s.readBytes === undefined ? '' : mib(s.readBytes)} | ${s.growth === undefined ? '' : mib(s.growth)} |`);
    }
    lines.push('', 'Time = the whole command (Holdfast: `holdfast backup --pool`, or through the server `holdfast sync --wait`, start-up included); job = the server\'s job record, agent pickup to commit; CPU = the command\'s CPU time with its children (through the server: the server\'s and agent\'s and their tools\' during the sync, the sync CLI\'s own not counted).');
    lines.push('', 'Targets (issue 4):');
    for (const t of targets) {
      for (const step of Object.keys(changed)) {
        const get = (tool: string): Step | undefined => steps.find((s) => s.target === t.name && s.step === step && s.tool.startsWith(tool));
        const h = get('holdfast (');
        const sv = get('holdfast server');
        const r = get('restic');
        if (!h || !r) continue;
        const c = changed[step] as number;
        const hg = h.growth ?? 0;
        const rg = r.growth ?? 0;
        const pct = (s: number): string => `${((100 * s) / r.seconds).toFixed(1)}%`;
        if (step.startsWith('1%')) {
          const server = sv ? `; through the server: job ${pct(sv.jobSeconds ?? NaN)}, CLI round trip ${pct(sv.seconds)}` : '';
          const cpu = `; CPU ${h.cpuSeconds.toFixed(2)} s local, ${sv ? sv.cpuSeconds.toFixed(2) : '?'} s server+agent, restic ${r.cpuSeconds.toFixed(2)} s`;
          lines.push(`- ${t.name}, ${step}: time (target ≤ 5% of restic's) local CLI ${pct(h.seconds)}${server}; read ${((h.readBytes ?? 0) / c).toFixed(2)}x and growth ${(hg / c).toFixed(2)}x the ${mib(c)} MiB changed (targets ≤ 2x)${cpu}`);
        } else lines.push(`- ${t.name}, ${step}: growth ${mib(hg)} MiB vs restic's ${mib(rg)} MiB (${((100 * hg) / Math.max(1, rg)).toFixed(1)}%, target ≤ 10%)`);
      }
    }
    return lines;
  } finally {
    await protection?.stop();
    spawnSync('umount', [mnt]);
    spawnSync('losetup', ['-d', dev]);
    if (existsSync(fsImg)) rmSync(fsImg);
  }
}

async function main(): Promise<void> {
  const parts = (process.env.HOLDFAST_CBT_PARTS ?? 'image,tree').split(',');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const lines: string[] = [];
  if (parts.includes('image')) lines.push('## Disk image (qcow2 and btrfs)', '', ...(await imageBench()));
  if (parts.includes('tree')) {
    const t = await treeBench(cli, work, (m) => process.stderr.write(`${m}\n`));
    lines.push(...(lines.length > 0 ? [''] : []), '## 20,000-file tree (inotify journal, through a server and agent)', '', ...treeReport(t.steps, t.changedBytes));
  }
  const report = lines.join('\n');
  writeFileSync(join(work, 'report.md'), `${report}\n`);
  process.stdout.write(`${report}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:cbt: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 2;
});
