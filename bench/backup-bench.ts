/**
 * `npm run bench`: the side-by-side backup benchmark. Generates (once) a deterministic
 * data set, installs the peers if needed, times first, unchanged and changed backups and
 * a full restore for Holdfast, restic and borg, checks every restore, and prints a table
 * per step with Holdfast's ratios and the targets (`--help` for options).
 */
import { readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { cpus, release, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkTargets } from './check-targets.js';
import { MarkerFile } from './dataset-marker.js';
import { DatasetPlan } from './dataset-plan.js';
import { datasetSpec } from './dataset-spec.js';
import { ensurePeers } from './ensure-peers.js';
import type { Requirement } from './ensure-peers.js';
import { formatReport } from './format-report.js';
import { ensureDataset } from './generate-dataset.js';
import { progress } from './log.js';
import { parseBenchOptions, USAGE } from './options.js';
import type { RunResult } from './results.js';
import { runOnce } from './run-once.js';
import { summarize } from './summarize.js';
import { runTimed } from './timed-command.js';
import type { BenchTool, ToolName } from './tools/bench-tool.js';
import { BorgTool } from './tools/borg-tool.js';
import { HoldfastTool } from './tools/holdfast-tool.js';
import { ResticTool } from './tools/restic-tool.js';
import { workLayout } from './work-layout.js';
import type { WorkLayout } from './work-layout.js';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const PEER_PACKAGES: Partial<Record<ToolName, Requirement>> = {
  restic: { program: 'restic', debianPackage: 'restic' },
  borg: { program: 'borg', debianPackage: 'borgbackup' },
};

function createTool(name: ToolName): BenchTool {
  switch (name) {
    case 'holdfast':
      return new HoldfastTool(join(projectRoot, 'bin', 'holdfast.js'));
    case 'restic':
      return new ResticTool();
    case 'borg':
      return new BorgTool();
  }
}

function holdfastVersion(): string {
  const pkg = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { version?: string };
  return `holdfast ${pkg.version ?? '?'} (this working tree)`;
}

/** Runs each tool's probe; returns its version line, or throws with why it cannot run. */
async function probe(tool: BenchTool, layout: WorkLayout, signal: AbortSignal): Promise<string> {
  const cacheDir = join(layout.cachesDir, `probe-${tool.name}`);
  await rm(cacheDir, { recursive: true, force: true });
  await mkdir(cacheDir, { recursive: true });
  const paths = { sourceDir: layout.sourceDir, imagePath: layout.imagePath, filesDir: layout.filesDir, repoDir: '', cacheDir };
  try {
    const logPath = join(layout.logsDir, `probe-${tool.name}.log`);
    const r = await runTimed(tool.probe(paths), join(layout.logsDir, 'time-report.txt'), logPath, signal);
    if (!r.ok) {
      // The line naming the error, else the last line (Node prints a source excerpt first).
      const lines = r.stderrTail.split('\n').map((l) => l.trim()).filter((l) => l !== '');
      const why = lines.find((l) => /\b(error|Error)\b/.test(l)) ?? lines.at(-1) ?? `exit status ${r.exitStatus}`;
      throw new Error(why);
    }
    return tool.name === 'holdfast' ? holdfastVersion() : (r.stdout.trim().split('\n')[0] ?? tool.name);
  } finally {
    await rm(cacheDir, { recursive: true, force: true });
  }
}

async function main(args: readonly string[]): Promise<number> {
  const options = parseBenchOptions(args);
  if (options.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const controller = new AbortController();
  const abort = (): void => {
    controller.abort(new Error('interrupted'));
  };
  process.once('SIGINT', abort);
  process.once('SIGTERM', abort);
  const { signal } = controller;

  const layout = workLayout(options.dir);
  const spec = datasetSpec(options.scale);
  const plan = new DatasetPlan(spec);
  ensurePeers([
    { program: '/usr/bin/time', debianPackage: 'time' },
    ...options.tools.flatMap((t) => (PEER_PACKAGES[t] !== undefined ? [PEER_PACKAGES[t]] : [])),
  ]);
  await mkdir(layout.logsDir, { recursive: true });
  await ensureDataset(layout, spec, signal);

  const tools: BenchTool[] = [];
  const versions = new Map<ToolName, string>();
  const unavailable = new Map<ToolName, string>();
  for (const name of options.tools) {
    const tool = createTool(name);
    try {
      versions.set(name, await probe(tool, layout, signal));
      tools.push(tool);
    } catch (error) {
      signal.throwIfAborted();
      unavailable.set(name, (error as Error).message);
      versions.set(name, name);
      progress(`${name} is unavailable: ${(error as Error).message}`);
    }
  }
  progress(`tools: ${[...versions.values()].join('; ')}`);

  const markerFile = new MarkerFile(layout.markerPath);
  const runs: RunResult[] = [];
  for (let run = 1; run <= options.runs; run++) {
    runs.push(await runOnce({ layout, plan, markerFile, tools, keep: options.keep, signal }, run));
  }

  const summaries = summarize(options.tools, runs, unavailable);
  const targets = checkTargets(summaries);
  const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${release()}, Node ${process.version}`;
  const setups = new Map(tools.map((t) => [t.name, t.setup]));
  let filesBytes = 0;
  for (let i = 0; i < spec.fileCount; i++) filesBytes += plan.smallFile(i).size;
  const lastChange = runs.at(-1)?.change;
  process.stdout.write(
    formatReport({
      spec,
      filesBytes,
      runs: runs.length,
      summaries,
      targets,
      versions,
      setups,
      cachesDropped: runs.every((r) => r.cachesDropped),
      ...(lastChange !== undefined ? { change: lastChange } : {}),
      machine,
    }),
  );
  if (options.json !== undefined) {
    const document = {
      generatedAt: new Date().toISOString(),
      options,
      machine,
      dataset: { ...spec, filesBytes, dir: layout.sourceDir },
      versions: Object.fromEntries(versions),
      setups: Object.fromEntries(setups),
      unavailable: Object.fromEntries(unavailable),
      runs,
      medians: summaries,
      targets,
    };
    await writeFile(options.json, `${JSON.stringify(document, null, 2)}\n`);
    progress(`figures written to ${resolve(options.json)}`);
  }
  const broken = summaries.filter((s) => s.status === 'failed' || s.restoreMatches === false);
  if (broken.length > 0) progress(`!! problems with: ${broken.map((s) => s.tool).join(', ')} (see above)`);
  return broken.length > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
  },
);
