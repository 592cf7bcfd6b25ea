/**
 * Combines the runs into one figure per tool and step: the median of each measure over
 * the runs in which that step succeeded.
 */
import { median } from './median.js';
import { STEPS } from './results.js';
import type { RunResult, StepName } from './results.js';
import type { ToolName } from './tools/bench-tool.js';

/** Median figures of one step. */
export interface StepSummary {
  readonly wallS: number;
  readonly cpuS: number;
  readonly maxRssMiB: number;
  readonly repoBytes?: number;
  /** How many runs the medians are over. */
  readonly runs: number;
}

/** One tool over all runs. */
export interface ToolSummary {
  readonly tool: ToolName;
  readonly status: 'ok' | 'failed' | 'unavailable';
  /** Why the tool is unavailable or what failed first. */
  readonly note?: string;
  readonly steps: Partial<Record<StepName, StepSummary>>;
  /** False when any run's restore differed from the data set; undefined when never checked. */
  readonly restoreMatches?: boolean;
}

/** Summaries in the order of `tools`; `unavailable` maps a tool to why it could not run. */
export function summarize(tools: readonly ToolName[], runs: readonly RunResult[], unavailable: ReadonlyMap<ToolName, string>): ToolSummary[] {
  return tools.map((tool): ToolSummary => {
    const reason = unavailable.get(tool);
    if (reason !== undefined) return { tool, status: 'unavailable', note: reason, steps: {} };
    const own = runs.flatMap((r) => r.tools.filter((t) => t.tool === tool));
    const failed = own.find((t) => t.status === 'failed');
    const steps: Partial<Record<StepName, StepSummary>> = {};
    for (const { name } of STEPS) {
      const figures = own.flatMap((t) => (t.steps[name] !== undefined ? [t.steps[name]] : []));
      if (figures.length === 0) continue;
      const repo = figures.flatMap((f) => (f.repoBytes !== undefined ? [f.repoBytes] : []));
      steps[name] = {
        wallS: median(figures.map((f) => f.wallS)),
        cpuS: median(figures.map((f) => f.cpuS)),
        maxRssMiB: median(figures.map((f) => f.maxRssMiB)),
        ...(repo.length > 0 ? { repoBytes: median(repo) } : {}),
        runs: figures.length,
      };
    }
    const checks = own.flatMap((t) => (t.restoreCheck !== undefined ? [t.restoreCheck.ok] : []));
    return {
      tool,
      status: failed !== undefined ? 'failed' : 'ok',
      ...(failed?.error !== undefined ? { note: failed.error } : {}),
      steps,
      ...(checks.length > 0 ? { restoreMatches: checks.every(Boolean) } : {}),
    };
  });
}
