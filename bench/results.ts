/**
 * The figures one benchmark run collects, as written to `--json`: per tool, per step,
 * wall and CPU time, peak RSS, repository size and each command's own figures.
 */
import type { ChangeSummary } from './apply-change.js';
import type { RestoreCheck } from './compare-digests.js';
import type { ToolName } from './tools/bench-tool.js';

/** The timed steps, in the order they run. */
export const STEPS = [
  { name: 'first', title: '(a) first backup into a fresh repository' },
  { name: 'unchanged', title: '(b) second backup, nothing changed' },
  { name: 'changed', title: '(c) backup after 1% of the image and some small files changed' },
  { name: 'restore', title: '(d) full restore of the latest backup into an empty folder' },
] as const;
export type StepName = (typeof STEPS)[number]['name'];

/** One command of a step, as measured. */
export interface CommandFigures {
  readonly argv: readonly string[];
  readonly wallS: number;
  readonly userS: number;
  readonly sysS: number;
  readonly maxRssMiB: number;
  readonly exitStatus: number;
  /** Parsed JSON stdout, for commands that print it (Holdfast `--json`). */
  readonly json?: unknown;
}

/** One step of one tool: wall and CPU summed over its commands, RSS the largest. */
export interface StepFigures {
  readonly wallS: number;
  readonly cpuS: number;
  readonly maxRssMiB: number;
  /** `du -sb` of the repository after a backup step. */
  readonly repoBytes?: number;
  /** The tool's own statistics after a backup step, where it has them. */
  readonly stats?: unknown;
  readonly commands: readonly CommandFigures[];
}

/** One tool in one run. */
export interface ToolRun {
  readonly tool: ToolName;
  status: 'ok' | 'failed' | 'unavailable';
  error?: string;
  steps: Partial<Record<StepName, StepFigures>>;
  restoreCheck?: RestoreCheck;
  /** Size of the tool's local cache and configuration at the end of the run. */
  cacheBytes?: number;
}

/** One pass over all tools and steps. */
export interface RunResult {
  readonly run: number;
  readonly cachesDropped: boolean;
  readonly change?: ChangeSummary;
  readonly tools: readonly ToolRun[];
}
