/**
 * Shared helpers for end-to-end tests: run the real CLI as a child process, make scratch
 * directories, and take a full snapshot of a tree (content digests and all metadata) to compare
 * a restore with its source.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, lstatSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listXattrs, getXattr } from '../../src/native/index.js';

export const REPO = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
export const CLI = join(REPO, 'bin', 'holdfast.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function holdfast(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((res) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code, signal) => res({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
  });
}

/** Runs the CLI and parses its --json output; fails the test with stderr when it exits non-zero. */
export async function holdfastJson<T = Record<string, unknown>>(args: string[]): Promise<T> {
  const r = await holdfast([...args, '--json']);
  if (r.code !== 0) throw new Error(`holdfast ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

export function scratch(prefix = 'holdfast-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

export interface NodeSnapshot {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size?: number;
  mtimeNs?: string;
  sha256?: string;
  target?: string;
  rdev?: number;
  xattrs: Record<string, string>;
  /** index of the first path with the same inode, for hard links */
  linkGroup?: string;
}

/**
 * Everything a user would compare after a restore, per relative path. Directory mtimes are
 * included; atime and ctime are not (a restore cannot set ctime).
 */
export function snapshotTree(root: string, opts: { skipRootMeta?: boolean } = {}): Map<string, NodeSnapshot> {
  const out = new Map<string, NodeSnapshot>();
  const inodes = new Map<string, string>();
  const visit = (abs: string, rel: string): void => {
    const st = lstatSync(abs, { bigint: true });
    const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'chardev' : st.isBlockDevice() ? 'blockdev' : st.isSocket() ? 'socket' : 'other';
    const xattrs: Record<string, string> = {};
    for (const n of listXattrs(abs).sort()) xattrs[n] = getXattr(abs, n).toString('base64');
    const snap: NodeSnapshot = { type, mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), xattrs };
    if (type !== 'dir' || !(rel === '.' && opts.skipRootMeta)) snap.mtimeNs = st.mtimeNs.toString();
    if (type === 'file') {
      snap.size = Number(st.size);
      snap.sha256 = createHash('sha256').update(readFileSync(abs)).digest('hex');
      if (st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`;
        snap.linkGroup = inodes.get(key) ?? rel;
        if (!inodes.has(key)) inodes.set(key, rel);
      }
    }
    if (type === 'symlink') snap.target = readlinkSync(abs);
    if (type === 'chardev' || type === 'blockdev') snap.rdev = Number(st.rdev);
    if (rel === '.' && opts.skipRootMeta) {
      snap.mode = 0;
      snap.uid = 0;
      snap.gid = 0;
    }
    out.set(rel, snap);
    if (type === 'dir') for (const name of readdirSync(abs).sort()) visit(join(abs, name), rel === '.' ? name : `${rel}/${name}`);
  };
  visit(root, '.');
  return out;
}

/** Differences between two snapshots, as readable lines (empty when equal). */
export function diffSnapshots(a: Map<string, NodeSnapshot>, b: Map<string, NodeSnapshot>): string[] {
  const lines: string[] = [];
  for (const [p, x] of a) {
    const y = b.get(p);
    if (!y) lines.push(`missing in restore: ${p}`);
    else if (JSON.stringify(x) !== JSON.stringify(y)) lines.push(`differs: ${p}\n  source:  ${JSON.stringify(x)}\n  restore: ${JSON.stringify(y)}`);
  }
  for (const p of b.keys()) if (!a.has(p)) lines.push(`extra in restore: ${p}`);
  return lines;
}
