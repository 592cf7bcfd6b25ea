/**
 * `npm run bench:fanin`: many agents syncing into one protection server at once. Generates
 * (once) one deterministic data set per agent, then runs two phases, each on a fresh server:
 *
 * - fan-in: N agents (separate processes), each protecting its own set as one source, every
 *   sync requested at once;
 * - single: the same data through ONE agent, by default as one source whose folder holds all N
 *   sets (`--single sources` makes it N sources on that agent, synced at once with `--jobs N`).
 *
 * It prints total time, aggregate MiB/s, server peak RSS (VmHWM), agent RSS and CPU, the
 * fan-in/single ratio and the issue's targets (aggregate ≥ 80% of one agent; server RSS under
 * 1 GiB). `--help` for options.
 */
import { writeFile } from 'node:fs/promises';
import { cpus, release, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureSets, faninDataLayout, setName } from './fanin-dataset.js';
import { liveChildren, stopChildren } from './fanin-procs.js';
import { runPhase } from './fanin-run.js';
import type { AgentPlan, PhaseResult } from './fanin-run.js';
import { progress } from './log.js';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const RATIO_TARGET = 0.8;
const RSS_TARGET = GiB;

const USAGE = `Usage: npm run bench:fanin -- [options]

N agents (separate processes) sync their own data sets into one protection server at once;
then the same data goes through one agent, for the ratio.

  --agents N        agents in the fan-in phase, one data set each (default 50)
  --mib M           MiB per data set (default 100)
  --single MODE     how the single agent carries the data: "source" (default: one source whose
                    folder holds all N sets) or "sources" (N sources, synced at once, --jobs N)
  --phases LIST     fanin,single (default both)
  --dir DIR         work folder (default ./bench-data/fanin)
  --max-jobs N      the server's limit on jobs running at once (default: max(16, agents), so
                    every sync runs at once; e.g. 16, the server's own default, makes syncs beyond
                    it wait in the server's queue)
  --agent-nice N    run the agents at this niceness (default 19; 0 = the server's priority):
                    on one machine 50 agents would otherwise starve the server of CPU, which
                    real agents on their own hosts do not
  --timeout SEC     give up on a phase after this long (default 3600)
  --holdfast PATH   the holdfast launcher the server and agents run (default: this tree's
                    bin/holdfast.js; e.g. a build of a fixed commit while others edit the tree)
  --json FILE       also write every figure as JSON to FILE
  --keep            keep the servers' data folders (pools, agent states) under DIR/runs
  -h, --help        show this text
`;

interface Options {
  agents: number;
  mib: number;
  single: 'source' | 'sources';
  phases: Array<'fanin' | 'single'>;
  dir: string;
  timeoutS: number;
  agentNice: number;
  /** the server's --max-jobs; undefined: max(16, agents), all at once */
  maxJobs?: number;
  holdfast: string;
  json?: string;
  keep: boolean;
  help: boolean;
}

function parseOptions(args: readonly string[]): Options {
  const { values } = parseArgs({
    args: [...args],
    options: {
      agents: { type: 'string', default: '50' },
      mib: { type: 'string', default: '100' },
      single: { type: 'string', default: 'source' },
      phases: { type: 'string', default: 'fanin,single' },
      dir: { type: 'string', default: './bench-data/fanin' },
      timeout: { type: 'string', default: '3600' },
      'agent-nice': { type: 'string', default: '19' },
      'max-jobs': { type: 'string' },
      holdfast: { type: 'string', default: join(projectRoot, 'bin', 'holdfast.js') },
      json: { type: 'string' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const agents = Number(values.agents);
  if (!Number.isInteger(agents) || agents < 1 || agents > 1000) throw new Error(`--agents must be a whole number from 1 to 1000, not ${values.agents}`);
  const mib = Number(values.mib);
  if (!(mib > 0 && mib <= 100_000)) throw new Error(`--mib must be a positive number, not ${values.mib}`);
  if (values.single !== 'source' && values.single !== 'sources') throw new Error(`--single takes source or sources, not ${values.single}`);
  const phases = values.phases.split(',').map((p) => p.trim());
  if (phases.length === 0 || phases.some((p) => p !== 'fanin' && p !== 'single')) throw new Error(`--phases takes fanin, single or both, not ${values.phases}`);
  const timeoutS = Number(values.timeout);
  if (!(timeoutS > 0)) throw new Error(`--timeout must be a positive number of seconds, not ${values.timeout}`);
  const agentNice = Number(values['agent-nice']);
  if (!Number.isInteger(agentNice) || agentNice < 0 || agentNice > 19) throw new Error(`--agent-nice must be a whole number from 0 to 19, not ${values['agent-nice']}`);
  const maxJobs = values['max-jobs'] === undefined ? undefined : Number(values['max-jobs']);
  if (maxJobs !== undefined && !(Number.isInteger(maxJobs) && maxJobs >= 1)) throw new Error(`--max-jobs must be a whole number from 1, not ${values['max-jobs']}`);
  return {
    agentNice,
    ...(maxJobs !== undefined ? { maxJobs } : {}),
    holdfast: resolve(values.holdfast),
    agents,
    mib,
    single: values.single,
    phases: (['fanin', 'single'] as const).filter((p) => phases.includes(p)),
    dir: values.dir,
    timeoutS,
    ...(values.json !== undefined ? { json: values.json } : {}),
    keep: values.keep,
    help: values.help,
  };
}

const mibText = (bytes: number): string => (bytes / MiB).toFixed(0);

function table(headers: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  return [line(headers), `|${widths.map((w, i) => (i === 0 ? `-${'-'.repeat(w)}-` : `-${'-'.repeat(w - 1)}:-`)).join('|')}|`, ...rows.map(line)];
}

function report(o: Options, machine: string, results: readonly PhaseResult[]): string {
  const fanin = results.find((r) => r.label === 'fanin');
  const single = results.find((r) => r.label === 'single');
  const out: string[] = [];
  out.push(`Fan-in benchmark: ${o.agents} agent(s) x ${o.mib} MiB (${(o.agents * o.mib * MiB / GiB).toFixed(2)} GiB) into one server; ${machine}`);
  out.push(`server --max-jobs ${o.maxJobs ?? Math.max(16, o.agents)}; agents run at niceness ${o.agentNice}; single agent: ${o.single === 'source' ? `one agent, one source holding all ${o.agents} sets` : `one agent, ${o.agents} sources synced at once (--jobs ${o.agents})`}`);
  out.push('');
  out.push(
    ...table(
      ['phase', 'agents', 'sources', 'not synced', 'restarts', 'failed jobs', 'synced MiB', 'time s', 'MiB/s', 'wall s', 'last start s', 'job s min/med/max', 'server peak RSS MiB', 'agent peak RSS MiB max/mean/sum', 'server CPU s', 'agents CPU s', 'others CPU s', 'pool MiB'],
      results.map((r) => [
        r.label,
        String(r.agents),
        String(r.sources),
        String(r.unprotected),
        String(r.restarts),
        String(r.failedJobs),
        mibText(r.syncedBytes),
        r.serverSpanS.toFixed(1),
        r.mibPerS.toFixed(1),
        r.wallS.toFixed(1),
        r.dispatchS.toFixed(1),
        `${r.jobSeconds.min.toFixed(1)}/${r.jobSeconds.median.toFixed(1)}/${r.jobSeconds.max.toFixed(1)}`,
        `${mibText(r.server.peakRss)} (sampled ${mibText(r.server.sampledPeakRss)})`,
        `${mibText(r.agentsRss.max)}/${mibText(r.agentsRss.mean)}/${mibText(r.agentsRss.sum)}`,
        r.server.cpuS.toFixed(0),
        r.agentsCpuS.toFixed(0),
        r.otherCpuS.toFixed(0),
        mibText(r.poolBytes),
      ]),
    ),
  );
  out.push('');
  out.push('time = the server\'s clock from the first sync job created to the last finished; MiB/s = data / time; wall = the bench\'s clock (jobs polled every second);');
  out.push('restarts = job starts beyond one per source (interrupted and requeued, or failed and re-run after 5 s); job s = first start to success, per source;');
  out.push('last start = when the last source\'s first job began after the first job was created; others CPU = busy CPU of the machine not spent by this server and these agents (other users).');
  for (const r of results) {
    for (const [why, n] of Object.entries(r.failureReasons)) out.push(`${r.label}: ${n} job(s) failed with ${why}`);
    out.push(`${r.label}: ${r.interruptedLines} 'job interrupted' lines in agent logs, ${r.serverInternalErrors} internal errors in the server log`);
    out.push(`${r.label}: read ${mibText(r.totals.readBytes)} MiB, sent ${mibText(r.totals.sentBytes)} MiB, new ${mibText(r.totals.newBytes)} MiB (stored ${mibText(r.totals.storedNewBytes)} MiB), ${r.totals.entries} entries; load average ${r.loadBefore.toFixed(1)} before, ${r.loadAfter.toFixed(1)} after; caches ${r.cachesDropped ? 'dropped' : 'NOT dropped (not root)'}`);
  }
  out.push('');
  const broken = results.filter((r) => r.unprotected > 0);
  if (broken.length > 0) out.push(`!! ${broken.map((r) => `${r.label}: ${r.unprotected} of ${r.sources} source(s) did not sync`).join('; ')}; MiB/s counts only the data that did`);
  if (fanin && single) {
    const ratio = fanin.mibPerS / single.mibPerS;
    out.push(`aggregate throughput: ${fanin.mibPerS.toFixed(1)} MiB/s with ${fanin.agents} agents vs ${single.mibPerS.toFixed(1)} MiB/s through one agent: ratio ${ratio.toFixed(2)} (target >= ${RATIO_TARGET}: ${ratio >= RATIO_TARGET ? 'met' : 'NOT met'})`);
  }
  if (fanin) {
    out.push(`server peak RSS with ${fanin.agents} agents: ${mibText(fanin.server.peakRss)} MiB (target < ${mibText(RSS_TARGET)} MiB: ${fanin.server.peakRss < RSS_TARGET ? 'met' : 'NOT met'})`);
  }
  return `${out.join('\n')}\n`;
}

function agentPlans(o: Options, phase: 'fanin' | 'single', dataDir: string, setDirs: readonly string[]): AgentPlan[] {
  if (phase === 'fanin') return setDirs.map((path, i) => ({ name: `agent-${setName(i)}`, sources: [{ name: `src-${setName(i)}`, path }] }));
  if (o.single === 'source') return [{ name: 'agent-single', sources: [{ name: 'src-all', path: dataDir }] }];
  return [{ name: 'agent-single', sources: setDirs.map((path, i) => ({ name: `src-${setName(i)}`, path })) }];
}

async function main(args: readonly string[]): Promise<number> {
  const o = parseOptions(args);
  if (o.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const controller = new AbortController();
  const abort = (): void => controller.abort(new Error('interrupted'));
  process.once('SIGINT', abort);
  process.once('SIGTERM', abort);
  const workDir = resolve(o.dir);
  const layout = faninDataLayout(workDir);
  try {
    const setDirs = await ensureSets(layout, o.agents, o.mib, controller.signal);
    const dataBytes = Math.round(o.mib * MiB) * o.agents;
    progress(`server and agents run ${o.holdfast}`);
    const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / GiB).toFixed(0)} GiB RAM, Linux ${release()}, Node ${process.version}`;
    const results: PhaseResult[] = [];
    for (const phase of o.phases) {
      const agents = agentPlans(o, phase, layout.dataDir, setDirs);
      results.push(
        await runPhase({
          label: phase,
          launcher: o.holdfast,
          workDir,
          agents,
          dataBytes,
          maxJobs: o.maxJobs ?? Math.max(16, o.agents),
          agentNice: o.agentNice,
          agentJobs: phase === 'single' && o.single === 'sources' ? o.agents : 2,
          timeoutMs: o.timeoutS * 1000,
          keep: o.keep,
          signal: controller.signal,
        }),
      );
    }
    process.stdout.write(report(o, machine, results));
    if (o.json !== undefined) {
      await writeFile(o.json, `${JSON.stringify({ generatedAt: new Date().toISOString(), options: o, machine, dataDir: layout.dataDir, results }, null, 2)}\n`);
      progress(`figures written to ${resolve(o.json)}`);
    }
    const fanin = results.find((r) => r.label === 'fanin');
    const single = results.find((r) => r.label === 'single');
    const missed = results.some((r) => r.unprotected > 0) || (fanin && single && fanin.mibPerS / single.mibPerS < RATIO_TARGET) || (fanin && fanin.server.peakRss >= RSS_TARGET);
    return missed ? 1 : 0;
  } finally {
    if (liveChildren().length > 0) await stopChildren();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bench:fanin: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
  },
);
