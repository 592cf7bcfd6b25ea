/**
 * One pass of the benchmark over every available tool: fresh repositories, then step (a)
 * for all tools, step (b) for all, the change applied once to the shared data set, step
 * (c) for all, step (d) for all with each restore checked against the data set, and the
 * data set put back to pristine whatever happens.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { applyChange } from './apply-change.js';
import type { ChangeSummary } from './apply-change.js';
import { compareDigests } from './compare-digests.js';
import { digestData } from './data-digest.js';
import type { DataDigest } from './data-digest.js';
import type { MarkerFile } from './dataset-marker.js';
import type { DatasetPlan } from './dataset-plan.js';
import { dirSize } from './dir-size.js';
import { dropCaches } from './drop-caches.js';
import { progress } from './log.js';
import type { CommandFigures, RunResult, StepFigures, StepName, ToolRun } from './results.js';
import { revertChange } from './revert-change.js';
import { runTimed } from './timed-command.js';
import type { CommandSpec } from './timed-command.js';
import type { BenchTool, ToolPaths } from './tools/bench-tool.js';
import type { WorkLayout } from './work-layout.js';

/** What a run needs from the harness. */
export interface RunContext {
  readonly layout: WorkLayout;
  readonly plan: DatasetPlan;
  readonly markerFile: MarkerFile;
  /** Tools that passed their probe. */
  readonly tools: readonly BenchTool[];
  /** Keep repositories and restores after the run. */
  readonly keep: boolean;
  readonly signal: AbortSignal;
}

interface ToolState {
  readonly tool: BenchTool;
  readonly paths: ToolPaths;
  readonly logPath: string;
  readonly restoreDir: string;
  readonly result: ToolRun;
  lastLabel: string;
}

const MiB = 1024 * 1024;

function parseJson(text: string): unknown {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  for (const candidate of [trimmed, trimmed.split('\n').at(-1) ?? '']) {
    try {
      return JSON.parse(candidate) as unknown;
    } catch {
      // not JSON, or not only JSON: try the last line next
    }
  }
  return undefined;
}

function tail(text: string): string {
  return text.trim().split('\n').slice(-3).join(' | ');
}

/** Runs one pass and returns its figures; the data set is pristine again afterwards. */
export async function runOnce(ctx: RunContext, run: number): Promise<RunResult> {
  const { layout, signal } = ctx;
  const reportPath = join(layout.logsDir, 'time-report.txt');
  let cachesDropped = true;
  await mkdir(layout.logsDir, { recursive: true });

  const states: ToolState[] = ctx.tools.map((tool) => ({
    tool,
    paths: {
      sourceDir: layout.sourceDir,
      imagePath: layout.imagePath,
      filesDir: layout.filesDir,
      repoDir: join(layout.reposDir, tool.name),
      cacheDir: join(layout.cachesDir, tool.name),
    },
    logPath: join(layout.logsDir, `run${run}-${tool.name}.log`),
    restoreDir: join(layout.restoresDir, tool.name),
    result: { tool: tool.name, status: 'ok', steps: {} },
    lastLabel: '',
  }));
  const active = (): ToolState[] => states.filter((s) => s.result.status === 'ok');

  const runCommands = async (state: ToolState, commands: readonly CommandSpec[], timed: boolean): Promise<CommandFigures[]> => {
    const figures: CommandFigures[] = [];
    for (const command of commands) {
      if (timed) cachesDropped = dropCaches() && cachesDropped;
      const r = await runTimed(command, reportPath, state.logPath, signal);
      const json = parseJson(r.stdout);
      figures.push({
        argv: r.argv,
        wallS: r.wallS,
        userS: r.userS,
        sysS: r.sysS,
        maxRssMiB: r.maxRssKiB / 1024,
        exitStatus: r.exitStatus,
        ...(json !== undefined ? { json } : {}),
      });
      if (!r.ok) {
        const how = r.signal !== undefined ? `was killed by signal ${r.signal}` : `exited with status ${r.exitStatus}`;
        throw new Error(`${command.argv.slice(0, 3).join(' ')} ${how}: ${tail(r.stderrTail)} (log ${state.logPath})`);
      }
    }
    return figures;
  };

  // Runs `body` for every tool still going; a failure stops that tool only.
  const forEachTool = async (what: string, body: (state: ToolState) => Promise<void>): Promise<void> => {
    for (const state of active()) {
      try {
        await body(state);
      } catch (error) {
        signal.throwIfAborted();
        state.result.status = 'failed';
        state.result.error = `${what}: ${(error as Error).message}`;
        progress(`!! ${state.tool.name} failed at ${what}: ${(error as Error).message}`);
      }
    }
  };

  const step = async (name: StepName, commandsFor: (state: ToolState) => CommandSpec[], isBackup: boolean): Promise<void> => {
    await forEachTool(name, async (state) => {
      const commands = await runCommands(state, commandsFor(state), true);
      const figures: StepFigures = {
        wallS: commands.reduce((sum, c) => sum + c.wallS, 0),
        cpuS: commands.reduce((sum, c) => sum + c.userS + c.sysS, 0),
        maxRssMiB: Math.max(...commands.map((c) => c.maxRssMiB)),
        commands,
      };
      let extra: Partial<StepFigures> = {};
      if (isBackup) {
        extra = { repoBytes: await dirSize(state.paths.repoDir) };
        const stats = state.tool.stats?.(state.paths);
        if (stats !== undefined) {
          const [figure] = await runCommands(state, [stats], false).catch(() => []);
          if (figure?.json !== undefined) extra = { ...extra, stats: figure.json };
        }
      }
      state.result.steps[name] = { ...figures, ...extra };
      const repo = extra.repoBytes !== undefined ? `, repository ${(extra.repoBytes / MiB).toFixed(1)} MiB` : '';
      progress(
        `${state.tool.name} ${name}: ${figures.wallS.toFixed(2)} s wall, ${figures.cpuS.toFixed(2)} s CPU, ` +
          `${figures.maxRssMiB.toFixed(0)} MiB peak RSS${repo}`,
      );
    });
  };

  progress(`run ${run}: preparing fresh repositories for ${states.map((s) => s.tool.name).join(', ')}`);
  await forEachTool('init', async (state) => {
    await rm(state.paths.repoDir, { recursive: true, force: true });
    await rm(state.paths.cacheDir, { recursive: true, force: true });
    await rm(state.restoreDir, { recursive: true, force: true });
    await mkdir(state.paths.cacheDir, { recursive: true });
    await mkdir(layout.reposDir, { recursive: true });
    await runCommands(state, state.tool.init(state.paths), false);
  });

  const outcome: { change?: ChangeSummary } = {};
  try {
    const label = (state: ToolState, name: string): string => (state.lastLabel = `run${run}-${name}`);
    await step('first', (s) => s.tool.backup(s.paths, label(s, 'first')), true);
    await step('unchanged', (s) => s.tool.backup(s.paths, label(s, 'unchanged')), true);

    progress('applying the change to the data set');
    outcome.change = await applyChange(layout, ctx.plan, ctx.markerFile);
    await step('changed', (s) => s.tool.backup(s.paths, label(s, 'changed')), true);

    let expected: DataDigest | undefined;
    if (active().length > 0) {
      progress('digesting the changed data set to check restores against');
      expected = await digestData(layout.imagePath, layout.filesDir);
    }
    for (const state of active()) {
      await rm(state.restoreDir, { recursive: true, force: true });
      await mkdir(state.restoreDir, { recursive: true });
    }
    await step('restore', (s) => s.tool.restore(s.paths, s.lastLabel, s.restoreDir), false);
    await forEachTool('restore check', async (state) => {
      if (expected === undefined) return;
      const restored = state.tool.restored(state.paths, state.restoreDir);
      const check = compareDigests(expected, await digestData(restored.image, restored.files));
      state.result.restoreCheck = check;
      if (check.ok) {
        progress(`${state.tool.name} restore matches the data set (${check.files} files)`);
      } else {
        progress(
          `!!! RESTORE MISMATCH: ${state.tool.name}: ${check.missing} missing, ${check.extra} extra, ` +
            `${check.differing} differing of ${check.files} (${check.examples.join('; ')})`,
        );
      }
    });
  } finally {
    if (outcome.change !== undefined || (await ctx.markerFile.read())?.state === 'changed') {
      progress('putting the data set back to pristine');
      await revertChange(layout, ctx.markerFile);
    }
  }

  for (const state of states) {
    state.result.cacheBytes = await dirSize(state.paths.cacheDir).catch(() => undefined);
    if (!ctx.keep) {
      await rm(state.paths.repoDir, { recursive: true, force: true });
      await rm(state.paths.cacheDir, { recursive: true, force: true });
      await rm(state.restoreDir, { recursive: true, force: true });
    }
  }
  return { run, cachesDropped, ...outcome, tools: states.map((s) => s.result) };
}
