/**
 * Where the benchmark keeps things inside its work directory: the data set every tool
 * backs up, the marker and undo log that keep that data set pristine between runs, and
 * per-tool repositories, caches, restore targets and logs.
 */
import { join, resolve } from 'node:path';

/** Absolute paths of everything the benchmark writes under one work directory. */
export interface WorkLayout {
  readonly workDir: string;
  /** The data set: `disk.img` and `files/`, backed up whole by restic and borg. */
  readonly sourceDir: string;
  readonly imagePath: string;
  readonly filesDir: string;
  /** JSON marker describing the data set on disk and whether it is pristine. */
  readonly markerPath: string;
  /** Original bytes of whatever the change step overwrote, so it can be undone. */
  readonly undoDir: string;
  readonly reposDir: string;
  readonly cachesDir: string;
  readonly restoresDir: string;
  readonly logsDir: string;
}

/** Lays out the work directory `dir` (relative paths resolve against the cwd). */
export function workLayout(dir: string): WorkLayout {
  const workDir = resolve(dir);
  const sourceDir = join(workDir, 'source');
  return {
    workDir,
    sourceDir,
    imagePath: join(sourceDir, 'disk.img'),
    filesDir: join(sourceDir, 'files'),
    markerPath: join(workDir, 'dataset.json'),
    undoDir: join(workDir, 'undo'),
    reposDir: join(workDir, 'repos'),
    cachesDir: join(workDir, 'caches'),
    restoresDir: join(workDir, 'restores'),
    logsDir: join(workDir, 'logs'),
  };
}
