/**
 * What the harness needs from each tool it benchmarks: the commands for each step, where
 * a restore puts the image and the files, and how the tool is set up. The harness runs
 * the commands; a tool module only builds them.
 */
import type { CommandSpec } from '../timed-command.js';

/** The tools the benchmark knows. */
export const TOOL_NAMES = ['holdfast', 'restic', 'borg'] as const;
export type ToolName = (typeof TOOL_NAMES)[number];

/** The paths one tool works with in one run. */
export interface ToolPaths {
  /** The data set folder holding `disk.img` and `files/`. */
  readonly sourceDir: string;
  readonly imagePath: string;
  readonly filesDir: string;
  /** The tool's repository (created by `init`, must not exist before). */
  readonly repoDir: string;
  /** The tool's local cache and configuration, fresh for each run, not counted as repository. */
  readonly cacheDir: string;
}

/** Where a restore into `target` puts the data set's image and files folder. */
export interface RestoredPaths {
  readonly image: string;
  readonly files: string;
}

/** One benchmarked tool. */
export interface BenchTool {
  readonly name: ToolName;
  /** How the tool is configured, for the report. */
  readonly setup: string;
  /** An untimed command that succeeds when the tool can run; its first stdout line names the version. */
  probe(paths: ToolPaths): CommandSpec;
  /** Untimed: creates an empty repository at `paths.repoDir`. */
  init(paths: ToolPaths): CommandSpec[];
  /** One backup of the whole data set, named `label`. Several commands are timed as one step. */
  backup(paths: ToolPaths, label: string): CommandSpec[];
  /** A full restore of the backup named `label` (the latest) into the empty folder `target`. */
  restore(paths: ToolPaths, label: string, target: string): CommandSpec[];
  restored(paths: ToolPaths, target: string): RestoredPaths;
  /** Untimed, after each backup: the tool's own account of its repository, as JSON on stdout. */
  stats?(paths: ToolPaths): CommandSpec;
}
