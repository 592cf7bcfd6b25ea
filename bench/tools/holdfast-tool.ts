/**
 * Holdfast through its CLI as a user runs it (`bin/holdfast.js`, by its #! line, which is what an
 * installed `holdfast` command runs, Node flags included), with two sources in one pool: the
 * disk image as an image source ("img") and the small-file tree as a directory source
 * ("files"). Each step therefore runs two commands, timed together.
 */
import { join } from 'node:path';
import type { CommandSpec } from '../timed-command.js';
import type { BenchTool, RestoredPaths, ToolPaths } from './bench-tool.js';

/** Holdfast, driven through its local pool commands. */
export class HoldfastTool implements BenchTool {
  readonly name = 'holdfast' as const;
  readonly setup = 'holdfast = image + files sources: `--kind image --source img` for disk.img and `--kind dir --source files` for files/; step time and CPU are the sum of both commands, RSS the larger';

  constructor(private readonly launcher: string) {}

  private cli(...args: string[]): CommandSpec {
    return { argv: [this.launcher, ...args] };
  }

  probe(paths: ToolPaths): CommandSpec {
    return this.cli('pool', 'init', join(paths.cacheDir, 'probe-pool'));
  }

  init(paths: ToolPaths): CommandSpec[] {
    return [this.cli('pool', 'init', paths.repoDir)];
  }

  backup(paths: ToolPaths): CommandSpec[] {
    return [
      this.cli('backup', '--pool', paths.repoDir, '--source', 'img', '--kind', 'image', '--json', paths.imagePath),
      this.cli('backup', '--pool', paths.repoDir, '--source', 'files', '--kind', 'dir', '--json', paths.filesDir),
    ];
  }

  restore(paths: ToolPaths, _label: string, target: string): CommandSpec[] {
    const { image, files } = this.restored(paths, target);
    return [
      this.cli('restore', '--pool', paths.repoDir, '--source', 'img', '--to', image),
      this.cli('restore', '--pool', paths.repoDir, '--source', 'files', '--to', files),
    ];
  }

  restored(_paths: ToolPaths, target: string): RestoredPaths {
    return { image: join(target, 'disk.img'), files: join(target, 'files') };
  }

  stats(paths: ToolPaths): CommandSpec {
    return this.cli('pool', 'stats', '--pool', paths.repoDir, '--json');
  }
}
