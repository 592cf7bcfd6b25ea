import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { spawnChild, type Child } from './spawn.js';
import { spawnProcess } from './index.js';

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function ended(child: Child): Promise<Ended> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code: number | null, signal: NodeJS.Signals | null) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Minor page faults of this process so far (/proc/self/stat field 10). */
function minorFaults(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[7]);
}

describe('spawnChild (posix_spawn)', () => {
  it('is built into the addon', () => {
    assert.equal(typeof spawnProcess, 'function', 'native/build is older than native/holdfast.c: run node scripts/build-native.js');
  });

  it('pipes standard input, output and error and reports the exit status after the output', async () => {
    const child = spawnChild('sh', ['-c', 'read line; echo "out $line"; echo err >&2; exit 3'], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin?.end('hello\n');
    const r = await ended(child);
    assert.deepEqual(r, { code: 3, signal: null, stdout: 'out hello\n', stderr: 'err\n' });
    assert.equal(child.exitCode, 3);
    assert.ok(Number.isInteger(child.pid));
  });

  it('passes the environment it is given and nothing else', async () => {
    const r = await ended(spawnChild('sh', ['-c', 'echo "$HOLDFAST_X|$HOME"'], { env: { HOLDFAST_X: 'a b', PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'ignore'] }));
    assert.equal(r.stdout, 'a b|\n');
  });

  it('emits ENOENT for a program that is not there, as Node does', async () => {
    const child = spawnChild('holdfast-no-such-program', []);
    const err = await new Promise<NodeJS.ErrnoException>((resolve) => child.on('error', resolve));
    assert.equal(err.code, 'ENOENT');
    assert.equal(child.pid, undefined);
  });

  it('reports the signal that killed the child, and kill() after the exit is refused', async () => {
    const child = spawnChild('sleep', ['30']);
    const done = ended(child);
    assert.equal(child.kill('SIGTERM'), true);
    assert.deepEqual(await done, { code: null, signal: 'SIGTERM', stdout: '', stderr: '' });
    assert.equal(child.kill('SIGTERM'), false);
  });

  it('starts a detached child in its own session, with default signal dispositions', async () => {
    // Node ignores SIGPIPE; a child must not inherit that (a pipeline's writer would not stop).
    const child = spawnChild('sh', ['-c', 'echo "$$ $(ps -o sid= -p $$) $(grep SigIgn /proc/$$/status)"'], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const r = await ended(child);
    const [pid, sid, , ignored] = r.stdout.trim().split(/\s+/);
    assert.equal(pid, String(child.pid));
    assert.equal(sid, pid, 'session id is its own pid');
    assert.equal(BigInt(`0x${ignored}`) & (1n << 12n), 0n, `SIGPIPE ignored in the child (SigIgn ${ignored})`);
  });

  it('kills the child and reports an AbortError when the signal aborts', async () => {
    const ac = new AbortController();
    const child = spawnChild('sleep', ['30'], { signal: ac.signal });
    const failed = new Promise<Error>((resolve) => child.on('error', resolve));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_c: number | null, s: NodeJS.Signals | null) => resolve(s)));
    ac.abort();
    assert.equal((await failed).name, 'AbortError');
    assert.equal(await exited, 'SIGTERM');
  });

  it('leaves the memory this process has touched alone, unlike a fork', async (t) => {
    // The reason it exists: after a fork every written page is copy-on-write, and rewriting it faults.
    const blocks = Array.from({ length: 8 }, () => Buffer.from(new ArrayBuffer(4 * 1024 * 1024)));
    const rewrite = (v: number): number => {
      const before = minorFaults();
      for (const b of blocks) b.fill(v);
      return minorFaults() - before;
    };
    rewrite(1);
    await new Promise((resolve) => spawn('true').on('exit', resolve));
    const afterFork = rewrite(2);
    await ended(spawnChild('true', []));
    const afterSpawn = rewrite(3);
    if (afterFork < 1000) {
      // Transparent huge pages (or a kernel without copy-on-write faults to count): nothing to compare.
      t.skip(`a fork cost only ${afterFork} faults on this kernel`);
      return;
    }
    assert.ok(afterSpawn < afterFork / 10, `posix_spawn left them mapped: ${afterSpawn} faults against ${afterFork} after a fork`);
  });
});
