/**
 * A file that changes while it is read is read again, or recorded as torn — never stored torn in
 * silence. A writer process rewrites a 64 MiB file in place, one uniform version per pass (every
 * byte of version k is k, written in 1 MiB pwrites), so a restore that mixes two versions shows up
 * as a file whose bytes are not all equal.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { holdfast, holdfastJson, scratch } from './cli-harness.js';
import { isUniform, startHoldfast } from './tree-fixtures.js';

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;

/**
 * The writer. 'loop': pass after pass without pause. 'signal': one pass per SIGUSR1. Each pass k
 * writes byte k over the whole file in 1 MiB pwrites, then prints k.
 */
const WRITER = `
const fs = require('node:fs');
const [path, mode] = process.argv.slice(1);
const fd = fs.openSync(path, 'r+');
const size = fs.fstatSync(fd).size;
let k = 1;
const pass = () => {
  const buf = Buffer.alloc(1024 * 1024, k & 0xff);
  for (let off = 0; off < size; off += buf.length) fs.writeSync(fd, buf, 0, Math.min(buf.length, size - off), off);
  process.stdout.write(k + '\\n');
  k++;
};
if (mode === 'loop') {
  const loop = () => { pass(); setImmediate(loop); };
  loop();
} else {
  process.on('SIGUSR1', pass);
  setInterval(() => undefined, 1000);
  process.stdout.write('ready\\n');
}
`;

interface Writer {
  child: ChildProcess;
  passes: () => number;
  waitForLines: (n: number) => Promise<void>;
  stop: () => Promise<void>;
}

function startWriter(path: string, mode: 'loop' | 'signal'): Writer {
  const child = spawn(process.execPath, ['-e', WRITER, path, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  let lines = 0;
  let passes = 0;
  let waiters: Array<{ n: number; res: () => void }> = [];
  let buf = '';
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    for (const p of parts) if (p !== 'ready') passes++;
    lines += parts.length;
    waiters = waiters.filter((w) => (lines >= w.n ? (w.res(), false) : true));
  });
  const exited = new Promise<void>((res) => child.on('close', () => res()));
  return {
    child,
    passes: () => passes,
    waitForLines: (n) => (lines >= n ? Promise.resolve() : new Promise((res) => waiters.push({ n, res }))),
    stop: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Bytes the process has read so far (all threads), or undefined once it is gone. */
function readChars(pid: number): number | undefined {
  try {
    const m = /^rchar: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

interface BackupJson {
  point: string;
  readBytes: number;
  torn: string[];
}

interface PointJson {
  id: string;
  torn: number;
}

describe('torn files', () => {
  const s = scratch('holdfast-torn-');
  const pool = join(s.dir, 'pool');
  const src = join(s.dir, 'src');
  const file = join(src, 'busy.bin');
  let restores = 0;

  before(async () => {
    mkdirSync(src);
    writeFileSync(join(src, 'calm.txt'), 'never changes\n');
    writeFileSync(file, Buffer.alloc(SIZE, 0));
    assert.equal((await holdfast(['pool', 'init', pool])).code, 0);
  });
  after(() => s.cleanup());

  const restoreBusy = async (point: string): Promise<ReturnType<typeof isUniform>> => {
    const to = join(s.dir, `restore-${restores++}`);
    await holdfastJson(['restore', '--pool', pool, '--source', 'busy', '--point', point, '--path', 'busy.bin', '--to', to]);
    const u = isUniform(join(to, 'busy.bin'));
    rmSync(to, { recursive: true, force: true });
    return u;
  };

  /**
   * Checks what a user relies on: a file not listed as torn restores as one version; a torn one
   * was warned about and is counted in points --json. Returns the backup's result.
   */
  const checkBackup = async (r: { code: number; stdout: string; stderr: string }, note: string): Promise<{ out: BackupJson; uniform: boolean; first: number | undefined }> => {
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as BackupJson;
    const points = await holdfastJson<PointJson[]>(['points', '--pool', pool, '--source', 'busy']);
    const point = points.find((p) => p.id === out.point);
    assert.ok(point, `point ${out.point} is not listed`);
    const restored = await restoreBusy(out.point);
    assert.equal(restored.size, SIZE);
    const full = `${note}; read ${(out.readBytes / SIZE).toFixed(2)} x the file, torn ${JSON.stringify(out.torn)}, restored uniform: ${restored.uniform}`;
    if (out.torn.includes('busy.bin')) {
      assert.match(r.stderr, /warning: .*busy\.bin.*torn/, `torn without a warning on stderr (${full}):\n${r.stderr}`);
      assert.ok(point.torn > 0, `backup reported busy.bin torn but points --json shows torn ${point.torn} (${full})`);
    } else {
      assert.ok(restored.uniform, `busy.bin restored with mixed versions but not marked torn (${full})`);
      assert.equal(point.torn, 0, `points --json shows torn ${point.torn} but the backup listed none (${full})`);
    }
    assert.deepEqual(out.torn.filter((t) => t !== 'busy.bin'), [], `a file nobody wrote was marked torn (${full})`);
    return { out, uniform: restored.uniform, first: restored.first };
  };

  test('rewritten without pause during the whole backup: re-read, then marked torn with a warning', async (t) => {
    const w = startWriter(file, 'loop');
    let r;
    let during: number;
    try {
      await w.waitForLines(2); // writing before the backup starts
      const p0 = w.passes();
      r = await holdfast(['backup', '--pool', pool, '--source', 'busy', src, '--json']);
      during = w.passes() - p0;
    } finally {
      await w.stop();
    }
    const note = `${during} writer passes during the backup`;
    t.diagnostic(note);
    // Every read attempt overlapped a pass, or the test exercised nothing.
    assert.ok(during >= 3, `${note}: the writer did not keep up`);
    const { out } = await checkBackup(r, note);
    t.diagnostic(`read ${(out.readBytes / SIZE).toFixed(2)} x the file, torn ${JSON.stringify(out.torn)}`);
    assert.ok(out.readBytes > SIZE || out.torn.includes('busy.bin'), `the backup never saw busy.bin change (${note})`);
  });

  test('rewritten once while it is first read: read again and stored as one version', async (t) => {
    const w = startWriter(file, 'signal');
    let r;
    try {
      await w.waitForLines(1);
      const cli = startHoldfast(['backup', '--pool', pool, '--source', 'busy', src, '--json']);
      // One pass, started once the backup has read 8 MiB (start-up reads under 2 MiB): inside the first read.
      const pid = cli.child.pid as number;
      let signalled = false;
      const poll = setInterval(() => {
        const n = readChars(pid);
        if (n !== undefined && n >= 8 * MiB) {
          clearInterval(poll);
          signalled = true;
          w.child.kill('SIGUSR1');
        }
      }, 2);
      r = await cli.done;
      clearInterval(poll);
      assert.ok(signalled, `the backup never read 8 MiB: ${r.stderr}`);
      await w.waitForLines(2); // the pass is over (it may end after the backup)
    } finally {
      await w.stop();
    }
    const { out, uniform, first } = await checkBackup(r, 'one pass during the first read');
    t.diagnostic(`read ${(out.readBytes / SIZE).toFixed(2)} x the file, torn ${JSON.stringify(out.torn)}, restored version ${first}`);
    assert.ok(out.readBytes >= 2 * SIZE, `read ${out.readBytes} bytes: a file that changed during its read was not read again`);
    if (!out.torn.includes('busy.bin')) {
      assert.ok(uniform);
      assert.equal(first, 1, 'the re-read should hold the version written during the first read');
    }
  });

  test('quiet: the same file, no longer written, is read once, stored whole and never marked torn', async () => {
    writeFileSync(file, Buffer.alloc(SIZE, 0xa5)); // a new version, so the backup must read it
    const r = await holdfast(['backup', '--pool', pool, '--source', 'busy', src, '--json']);
    const { out, first } = await checkBackup(r, 'quiet');
    assert.deepEqual(out.torn, []);
    assert.doesNotMatch(r.stderr, /warning/);
    assert.equal(out.readBytes, SIZE, 'a quiet file should be read exactly once');
    assert.equal(first, 0xa5, 'restored file is not the version on disk');
  });
});
