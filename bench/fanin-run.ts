/**
 * One measured phase of the fan-in benchmark: a fresh protection server, a number of agents
 * (separate processes) each with its sources, then every source's sync requested at once and
 * the jobs followed until all have ended. Returns the wall time, the server's own job times,
 * peak RSS and CPU of the server and the agents, and how busy the rest of the machine was.
 *
 * The administrator's calls go straight to the API with the project's own client (the same
 * path the CLI's management commands take), so starting 50 syncs costs 50 requests rather
 * than 50 Node processes competing with the syncs for the two cores.
 */
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, setPriority } from 'node:os';
import { join } from 'node:path';
import { fetchPinnedCa, ServerClient } from '../src/agent/remote/server-client.js';
import { parseAdminToken } from '../src/core/tokens.js';
import { dirSize } from './dir-size.js';
import { dropCaches } from './drop-caches.js';
import { cpuOf, machineBusy, memoryOf, startChild, stopChildren } from './fanin-procs.js';
import type { Child } from './fanin-procs.js';
import { progress } from './log.js';

/** One agent of a phase and the source folders it protects. */
export interface AgentPlan {
  readonly name: string;
  readonly sources: ReadonlyArray<{ readonly name: string; readonly path: string }>;
}

/** What a phase is asked to do. */
export interface PhasePlan {
  readonly label: string;
  readonly launcher: string;
  readonly workDir: string;
  readonly agents: readonly AgentPlan[];
  /** bytes of source data in all sources together */
  readonly dataBytes: number;
  readonly maxJobs: number;
  /** niceness of the agent processes (0: the server's priority) */
  readonly agentNice: number;
  /** `--jobs` of each agent (syncs it runs at once) */
  readonly agentJobs: number;
  readonly timeoutMs: number;
  readonly keep: boolean;
  readonly signal: AbortSignal;
}

export interface JobView {
  id: string;
  source: string;
  state: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  progress: { bytesDone?: number } | null;
  result: Record<string, unknown> | null;
  error: { code: string; message: string } | null;
  attempt: number;
  created: string;
  started: string | null;
  finished: string | null;
}

/** The figures of one phase. */
export interface PhaseResult {
  readonly label: string;
  readonly agents: number;
  readonly sources: number;
  readonly dataBytes: number;
  /** from the first sync request to the moment every job was seen ended (polled every second) */
  readonly wallS: number;
  /** the server's own clock: first job created to last job finished */
  readonly serverSpanS: number;
  /** the data of the sources that synced (all of dataBytes unless some failed twice) */
  readonly syncedBytes: number;
  /** sources with no successful sync (their job and its automatic re-run both failed) */
  readonly unprotected: number;
  /** why jobs failed, with digests and counts elided, and how often */
  readonly failureReasons: Readonly<Record<string, number>>;
  /** syncedBytes / serverSpanS */
  readonly mibPerS: number;
  /** last job started minus first job created: how long the last sync waited to begin */
  readonly dispatchS: number;
  readonly jobSeconds: { readonly min: number; readonly median: number; readonly max: number };
  readonly totals: { readonly logicalBytes: number; readonly readBytes: number; readonly sentBytes: number; readonly newBytes: number; readonly storedNewBytes: number; readonly entries: number };
  readonly poolBytes: number;
  readonly server: { readonly peakRss: number; readonly sampledPeakRss: number; readonly cpuS: number };
  readonly agentsRss: { readonly max: number; readonly mean: number; readonly sum: number };
  readonly agentsCpuS: number;
  /** busy CPU seconds of the whole machine during the syncs, and the part not ours (other users) */
  readonly machineBusyS: number;
  readonly otherCpuS: number;
  readonly cores: number;
  readonly loadBefore: number;
  readonly loadAfter: number;
  readonly cachesDropped: boolean;
  /** job starts beyond one per source (interrupted and requeued, or failed and re-run) */
  readonly restarts: number;
  /** jobs that ended failed or cancelled (their source then synced in an automatic re-run) */
  readonly failedJobs: number;
  /** lines in the agents' logs saying a job was interrupted, and the server's internal errors */
  readonly interruptedLines: number;
  readonly serverInternalErrors: number;
  /** every job as the server reported it at the end */
  readonly jobs: readonly JobView[];
}

/** Counts trouble in the phase's logs: interrupted jobs (agents) and internal errors (server). */
async function healthFrom(logsDir: string): Promise<{ interruptedLines: number; serverInternalErrors: number }> {
  let interruptedLines = 0;
  let serverInternalErrors = 0;
  for (const name of await readdir(logsDir)) {
    const text = await readFile(join(logsDir, name), 'utf8').catch(() => '');
    const count = (needle: string): number => text.split(needle).length - 1;
    if (name === 'server.log') serverInternalErrors += count('"msg":"internal error"');
    else interruptedLines += count('job interrupted');
  }
  return { interruptedLines, serverInternalErrors };
}

/** Sets the niceness of every thread of a process (threads started later inherit it). */
async function reniceAll(pid: number, nice: number): Promise<void> {
  const tids = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  for (const tid of tids) {
    try {
      setPriority(Number(tid), nice);
    } catch {
      // the thread ended meanwhile
    }
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

async function waitFor<T>(what: string, timeoutMs: number, signal: AbortSignal, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    signal.throwIfAborted();
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(250);
  }
}

/**
 * Waits until the server and agents are idle before the measured part. A Node process keeps
 * working for about 20 s after it starts (V8's collections and compilations of its start-up:
 * an agent alone used 0.10 CPU-s in its first 3–13 s and 0.16 in 13–23 s, then 0.01 per 10 s),
 * which is start-up, not sync work: the bench measured it as the fan-in's until 2026-11-28. So:
 * at least SETTLE_MIN_MS since the last process started, then until the processes use under
 * QUIET_CORE_PER_PROCESS of a core each over two seconds; at most SETTLE_MAX_MS, then measured
 * anyway. Returns the seconds waited.
 */
async function waitQuiet(pids: readonly number[], lastStart: number, signal: AbortSignal): Promise<number> {
  const t0 = Date.now();
  const total = (): number => pids.reduce((sum, pid) => sum + (cpuOf(pid) ?? 0), 0);
  let last = total();
  for (;;) {
    await sleep(2000);
    signal.throwIfAborted();
    const now = total();
    const cores = (now - last) / 2;
    last = now;
    const quiet = Date.now() - lastStart >= SETTLE_MIN_MS && cores < QUIET_CORE_PER_PROCESS * pids.length;
    if (quiet || Date.now() - t0 >= SETTLE_MAX_MS) return (Date.now() - t0) / 1000;
  }
}
const SETTLE_MIN_MS = 25_000;
const QUIET_CORE_PER_PROCESS = 0.005;
const SETTLE_MAX_MS = 120_000;

async function startServer(plan: PhasePlan, dataDir: string, logsDir: string): Promise<{ child: Child; url: string }> {
  const child = startChild(
    'server',
    [process.execPath, plan.launcher, 'server', '--data', dataDir, '--listen', '127.0.0.1:0', '--max-jobs', String(plan.maxJobs), '--heartbeat', '5s', '--retry-delay', '5s', '--log-level', 'warn'],
    join(logsDir, 'server.log'),
  );
  let url: string | undefined;
  child.onLine((line) => {
    url ??= /listening on (https:\/\/\S+)/.exec(line)?.[1];
  });
  let exit: number | string | undefined;
  void child.exited.then((e) => {
    exit = e;
  });
  const found = await waitFor('the server to listen', 60_000, plan.signal, () => {
    if (exit !== undefined) throw new Error(`the server exited (${exit}) before listening; see ${join(logsDir, 'server.log')}`);
    return url;
  });
  return { child, url: found };
}

/** Runs the phase; every process it started is stopped before it returns or throws. */
export async function runPhase(plan: PhasePlan): Promise<PhaseResult> {
  const phaseDir = join(plan.workDir, 'runs', plan.label);
  const serverData = join(phaseDir, 'server');
  const logsDir = join(plan.workDir, 'logs', plan.label);
  await rm(phaseDir, { recursive: true, force: true });
  await rm(logsDir, { recursive: true, force: true });
  await mkdir(phaseDir, { recursive: true });
  await mkdir(logsDir, { recursive: true });
  const children: Child[] = [];
  let admin: ServerClient | undefined;
  try {
    const server = await startServer(plan, serverData, logsDir);
    children.push(server.child);
    const token = parseAdminToken((await readFile(join(serverData, 'admin-token'), 'utf8')).trim());
    admin = new ServerClient(server.url, { ca: await fetchPinnedCa(server.url, token.caFingerprint), bearer: token.secret }, 4);
    const api = admin;
    progress(`${plan.label}: server ${server.url} (pid ${server.child.pid}); starting ${plan.agents.length} agent(s)`);
    // No schedule: '0s' rather than null, because the server turns a null syncEvery into its
    // 15-minute default (the schema's type coercion makes null an empty string), and the
    // scheduler then syncs every new source at once, before the measured syncs.
    await api.json('POST', '/api/v1/groups', { name: 'fanin', syncEvery: '0s', points: [], retain: '14d', compress: true });

    // Agents start a few at a time (each is a Node process with its codec workers).
    const agentChildren: Child[] = [];
    let lastAgentStart = Date.now();
    for (let i = 0; i < plan.agents.length; i += 5) {
      const batch = plan.agents.slice(i, i + 5);
      for (const a of batch) {
        const { token: join_ } = await api.json<{ token: string }>('POST', '/api/v1/agent-tokens', { expires: '1h', name: a.name });
        const argv = [process.execPath, plan.launcher, 'agent', '--server', server.url, '--join', join_, '--state', join(phaseDir, 'agents', a.name), '--name', a.name, '--jobs', String(plan.agentJobs), '--log-level', 'warn'];
        const child = startChild(`agent ${a.name}`, argv, join(logsDir, `agent-${a.name}.log`));
        children.push(child);
        agentChildren.push(child);
        lastAgentStart = Date.now();
      }
      const names = new Set(batch.map((a) => a.name));
      await waitFor(`agents ${[...names].join(', ')} to come online`, 300_000, plan.signal, async () => {
        const dead = agentChildren.find((c) => c.process.exitCode !== null || c.process.signalCode !== null);
        if (dead) throw new Error(`${dead.name} exited before coming online; see ${join(logsDir, `agent-${dead.name.slice('agent '.length)}.log`)}`);
        const agents = await api.json<Array<{ name: string; status: string }>>('GET', '/api/v1/agents');
        return agents.filter((a) => names.has(a.name) && a.status === 'online').length === names.size ? true : undefined;
      });
    }
    for (const a of plan.agents) {
      for (const s of a.sources) await api.json('POST', '/api/v1/sources', { name: s.name, group: 'fanin', agent: a.name, kind: 'dir', path: s.path });
    }
    // Agents start at the server's priority (start-up is not measured) and are lowered now.
    for (const c of agentChildren) await reniceAll(c.pid, plan.agentNice);
    const sourceCount = plan.agents.reduce((n, a) => n + a.sources.length, 0);
    const settledS = await waitQuiet([server.child.pid, ...agentChildren.map((c) => c.pid)], lastAgentStart, plan.signal);
    progress(`${plan.label}: ${plan.agents.length} agent(s) online and idle (after ${settledS.toFixed(0)} s), ${sourceCount} source(s); dropping caches and starting every sync at once`);
    const cachesDropped = dropCaches();
    await sleep(1000); // let the write-back of the cache drop settle

    // --- measured part
    const loadBefore = loadavg()[0] ?? 0;
    const ours = (): number => [server.child, ...agentChildren].reduce((s, c) => s + (cpuOf(c.pid) ?? 0), 0);
    const agentsCpu = (): number => agentChildren.reduce((s, c) => s + (cpuOf(c.pid) ?? 0), 0);
    const cpu0 = { server: cpuOf(server.child.pid) ?? 0, agents: agentsCpu(), ours: ours(), machine: machineBusy() };
    let sampledPeak = 0;
    const sampler = setInterval(() => {
      sampledPeak = Math.max(sampledPeak, memoryOf(server.child.pid)?.current ?? 0);
    }, 200);
    const started = process.hrtime.bigint();
    const sources = plan.agents.flatMap((a) => a.sources.map((s) => s.name));
    let jobs: JobView[];
    try {
      await Promise.all(sources.map((s) => api.json<JobView>('POST', `/api/v1/sources/${encodeURIComponent(s)}/sync`)));
      const deadline = Date.now() + plan.timeoutMs;
      let lastReport = Date.now();
      let lastCpu = { server: cpu0.server, agents: cpu0.agents, machine: cpu0.machine };
      for (;;) {
        plan.signal.throwIfAborted();
        // Once a second: the time is the server's (job records), and each poll lists every job.
        await sleep(1000);
        // A fresh server: every job is ours. A source is finished when none of its jobs (the
        // first, or the server's automatic re-run of a failed one) is queued or running.
        jobs = await api.json<JobView[]>('GET', '/api/v1/jobs?limit=1000');
        const open = new Set(jobs.filter((j) => j.state === 'queued' || j.state === 'running').map((j) => j.source));
        const done = sources.filter((name) => !open.has(name));
        if (done.length === sources.length) break;
        for (const c of [server.child, ...agentChildren]) {
          if (c.process.exitCode !== null || c.process.signalCode !== null) throw new Error(`${c.name} exited during the syncs; see ${logsDir}`);
        }
        if (Date.now() > deadline) throw new Error(`timed out after ${plan.timeoutMs / 1000} s with ${sources.length - done.length} sync(s) unfinished`);
        if (Date.now() - lastReport >= 10_000) {
          const elapsedS = (Date.now() - lastReport) / 1000;
          lastReport = Date.now();
          const bytes = jobs.reduce((s, j) => s + (j.state === 'running' ? (j.progress?.bytesDone ?? 0) : j.state === 'succeeded' ? Number(j.result?.logicalBytes ?? 0) : 0), 0);
          const runningNow = jobs.filter((j) => j.state === 'running').length;
          const rss = memoryOf(server.child.pid)?.current ?? 0;
          const now = { server: cpuOf(server.child.pid) ?? 0, agents: agentsCpu(), machine: machineBusy() };
          const pct = (a: number, b: number): string => `${Math.round((100 * (a - b)) / elapsedS)}%`;
          progress(
            `${plan.label}: ${done.length}/${sources.length} done, ${runningNow} running, ${(bytes / 2 ** 20).toFixed(0)} of ${(plan.dataBytes / 2 ** 20).toFixed(0)} MiB, server RSS ${(rss / 2 ** 20).toFixed(0)} MiB; ` +
              `CPU since last line: server ${pct(now.server, lastCpu.server)}, agents ${pct(now.agents, lastCpu.agents)}, machine ${pct(now.machine, lastCpu.machine)} (of ${availableParallelism() * 100}%)`,
          );
          lastCpu = now;
        }
      }
    } finally {
      clearInterval(sampler);
    }
    const wallS = Number(process.hrtime.bigint() - started) / 1e9;
    const cpu1 = { server: cpuOf(server.child.pid) ?? 0, agents: agentsCpu(), ours: ours(), machine: machineBusy() };
    const loadAfter = loadavg()[0] ?? 0;
    const serverMem = memoryOf(server.child.pid);
    const agentPeaks = agentChildren.map((c) => memoryOf(c.pid)?.peak ?? 0);
    // --- end of the measured part

    const succeeded = jobs.filter((j) => j.state === 'succeeded');
    const failedJobs = jobs.filter((j) => j.state !== 'succeeded');
    // Sources whose sync failed even in the server's automatic re-run: reported, not thrown,
    // so the figures and the reasons of a broken run are still printed.
    const unprotected = sources.filter((name) => !succeeded.some((j) => j.source === name));
    const reasons = new Map<string, number>();
    for (const j of failedJobs) {
      const why = `${j.error?.code ?? j.state}: ${(j.error?.message ?? '').replace(/[0-9a-f]{16,}/g, '…').replace(/\d+ chunk\(s\)/, 'N chunk(s)').slice(0, 120)}`;
      reasons.set(why, (reasons.get(why) ?? 0) + 1);
    }
    if (unprotected.length > 0) progress(`${plan.label}: ${unprotected.length} source(s) did not sync; see ${logsDir}`);
    if (succeeded.length === 0) throw new Error(`${plan.label}: no sync succeeded; see ${logsDir}`);
    const syncedBytes = plan.dataBytes * (1 - unprotected.length / sources.length);
    const t = (iso: string | null): number => (iso === null ? NaN : Date.parse(iso));
    const firstCreated = Math.min(...jobs.map((j) => t(j.created)));
    const lastFinished = Math.max(...succeeded.map((j) => t(j.finished)));
    const firstStarts = sources.map((name) => Math.min(...jobs.filter((j) => j.source === name).map((j) => t(j.started))));
    const serverSpanS = (lastFinished - firstCreated) / 1000;
    // Per source: from its first job's start to its successful job's end (retries included).
    const jobS = succeeded.map((j) => (t(j.finished) - (firstStarts[sources.indexOf(j.source)] ?? NaN)) / 1000);
    const sum = (key: string): number => succeeded.reduce((s, j) => s + Number(j.result?.[key] ?? 0), 0);
    const health = await healthFrom(logsDir);
    const poolBytes = await dirSize(join(serverData, 'pool')).catch(() => NaN);
    const result: PhaseResult = {
      label: plan.label,
      agents: plan.agents.length,
      sources: sourceCount,
      dataBytes: plan.dataBytes,
      wallS,
      serverSpanS,
      mibPerS: syncedBytes / 2 ** 20 / serverSpanS,
      syncedBytes,
      unprotected: unprotected.length,
      failureReasons: Object.fromEntries(reasons),
      dispatchS: (Math.max(...firstStarts) - firstCreated) / 1000,
      // every start beyond one per source: requeued (interrupted) attempts and re-runs of failed jobs
      restarts: jobs.reduce((n, j) => n + j.attempt, 0) - sources.length,
      failedJobs: failedJobs.length,
      ...health,
      jobSeconds: { min: Math.min(...jobS), median: median(jobS), max: Math.max(...jobS) },
      totals: { logicalBytes: sum('logicalBytes'), readBytes: sum('readBytes'), sentBytes: sum('sentBytes'), newBytes: sum('newBytes'), storedNewBytes: sum('storedNewBytes'), entries: sum('entries') },
      poolBytes,
      server: { peakRss: serverMem?.peak ?? NaN, sampledPeakRss: sampledPeak, cpuS: cpu1.server - cpu0.server },
      agentsRss: { max: Math.max(...agentPeaks), mean: agentPeaks.reduce((a, b) => a + b, 0) / agentPeaks.length, sum: agentPeaks.reduce((a, b) => a + b, 0) },
      agentsCpuS: cpu1.agents - cpu0.agents,
      machineBusyS: cpu1.machine - cpu0.machine,
      otherCpuS: Math.max(0, cpu1.machine - cpu0.machine - (cpu1.ours - cpu0.ours)),
      cores: availableParallelism(),
      loadBefore,
      loadAfter,
      cachesDropped,
      jobs,
    };
    progress(`${plan.label}: ${(syncedBytes / 2 ** 20).toFixed(0)} MiB in ${serverSpanS.toFixed(1)} s = ${result.mibPerS.toFixed(1)} MiB/s; server peak RSS ${(result.server.peakRss / 2 ** 20).toFixed(0)} MiB`);
    return result;
  } finally {
    await admin?.close().catch(() => undefined);
    await stopChildren(children);
    if (!plan.keep) await rm(phaseDir, { recursive: true, force: true });
  }
}
