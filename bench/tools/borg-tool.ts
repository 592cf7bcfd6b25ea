/**
 * borg 1.2 as a peer: unencrypted repository, zstd level 3 compression (chosen over
 * borg's lz4 default, to compare like with like against restic's and Holdfast's zstd),
 * cache, keys and security folder kept in the run's cache folder.
 * `borg extract` restores relative to its working directory, so it runs in the target.
 */
import { join } from 'node:path';
import type { CommandSpec } from '../timed-command.js';
import type { BenchTool, RestoredPaths, ToolPaths } from './bench-tool.js';

/** borg exits 1 for warnings (for example a file that changed while read); that still made an archive. */
const OK_WITH_WARNINGS = [0, 1];

/** borg, driven through its CLI. */
export class BorgTool implements BenchTool {
  readonly name = 'borg' as const;
  readonly setup = 'borg: --encryption=none, --compression zstd,3, default chunker (buzhash 19,23,21,4095)';

  private env(paths: ToolPaths): Record<string, string> {
    return {
      BORG_BASE_DIR: paths.cacheDir,
      BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes',
      BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
    };
  }

  probe(paths: ToolPaths): CommandSpec {
    return { argv: ['borg', '--version'], env: this.env(paths) };
  }

  init(paths: ToolPaths): CommandSpec[] {
    return [{ argv: ['borg', 'init', '--encryption=none', paths.repoDir], env: this.env(paths) }];
  }

  backup(paths: ToolPaths, label: string): CommandSpec[] {
    const argv = ['borg', 'create', '--compression', 'zstd,3', `${paths.repoDir}::${label}`, paths.sourceDir];
    return [{ argv, env: this.env(paths), okExitStatuses: OK_WITH_WARNINGS }];
  }

  restore(paths: ToolPaths, label: string, target: string): CommandSpec[] {
    const argv = ['borg', 'extract', `${paths.repoDir}::${label}`];
    return [{ argv, cwd: target, env: this.env(paths), okExitStatuses: OK_WITH_WARNINGS }];
  }

  restored(paths: ToolPaths, target: string): RestoredPaths {
    // borg stores absolute paths without the leading slash.
    const root = join(target, paths.sourceDir);
    return { image: join(root, 'disk.img'), files: join(root, 'files') };
  }
}
