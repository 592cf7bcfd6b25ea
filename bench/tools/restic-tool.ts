/**
 * restic as a peer: repository format 2 (compression, default `auto`) when the installed
 * restic supports it, a fixed password, its cache kept in the run's cache folder.
 * It backs up the whole data set folder; a restore recreates that absolute path under the target.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { CommandSpec } from '../timed-command.js';
import type { BenchTool, RestoredPaths, ToolPaths } from './bench-tool.js';

function supportsRepositoryVersion(): boolean {
  try {
    return execFileSync('restic', ['init', '--help'], { encoding: 'utf8' }).includes('--repository-version');
  } catch {
    return false;
  }
}

/** restic, driven through its CLI. */
export class ResticTool implements BenchTool {
  readonly name = 'restic' as const;
  private readonly repositoryVersion2 = supportsRepositoryVersion();
  readonly setup = this.repositoryVersion2
    ? 'restic: repository version 2, compression auto (default), AES encryption (always on)'
    : 'restic: repository version 1 (this restic has no compression), AES encryption (always on)';

  private env(paths: ToolPaths): Record<string, string> {
    return { RESTIC_REPOSITORY: paths.repoDir, RESTIC_PASSWORD: 'holdfast-bench', RESTIC_CACHE_DIR: paths.cacheDir };
  }

  probe(paths: ToolPaths): CommandSpec {
    return { argv: ['restic', 'version'], env: this.env(paths) };
  }

  init(paths: ToolPaths): CommandSpec[] {
    const version = this.repositoryVersion2 ? ['--repository-version', '2'] : [];
    return [{ argv: ['restic', 'init', ...version], env: this.env(paths) }];
  }

  backup(paths: ToolPaths, label: string): CommandSpec[] {
    return [{ argv: ['restic', 'backup', '--tag', label, paths.sourceDir], env: this.env(paths) }];
  }

  restore(paths: ToolPaths, _label: string, target: string): CommandSpec[] {
    return [{ argv: ['restic', 'restore', 'latest', '--target', target], env: this.env(paths) }];
  }

  restored(paths: ToolPaths, target: string): RestoredPaths {
    const root = join(target, paths.sourceDir);
    return { image: join(root, 'disk.img'), files: join(root, 'files') };
  }
}
