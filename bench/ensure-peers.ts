/**
 * Installs the peers (restic, borgbackup) and GNU time from Debian with apt-get when they
 * are missing: `apt-get update` once, then one `apt-get install -y`.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { progress } from './log.js';

/** A program the benchmark runs and the Debian package that provides it. */
export interface Requirement {
  readonly program: string;
  readonly debianPackage: string;
}

function onPath(program: string): boolean {
  const dirs = program.includes('/') ? [''] : (process.env.PATH ?? '').split(delimiter);
  return dirs.some((dir) => {
    try {
      accessSync(dir === '' ? program : join(dir, program), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Installs the packages behind whichever of `requirements` is not on PATH. */
export function ensurePeers(requirements: readonly Requirement[]): void {
  const missing = requirements.filter((r) => !onPath(r.program));
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map((r) => r.debianPackage))];
  if (process.getuid?.() !== 0) {
    throw new Error(`missing ${missing.map((r) => r.program).join(', ')}; install as root: apt-get install -y ${packages.join(' ')}`);
  }
  progress(`installing ${packages.join(' ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // apt's output goes to stderr with the progress lines: stdout carries only the report.
  execFileSync('apt-get', ['update'], { stdio: ['ignore', 2, 2], env });
  execFileSync('apt-get', ['install', '-y', ...packages], { stdio: ['ignore', 2, 2], env });
  const still = missing.filter((r) => !onPath(r.program));
  if (still.length > 0) throw new Error(`apt-get did not provide ${still.map((r) => r.program).join(', ')}`);
}
