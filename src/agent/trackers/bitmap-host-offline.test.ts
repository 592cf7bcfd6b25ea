// The offline bitmap host's daemons: one that dies while opening the image is started once more
// (and the sync warned), and when lost again the error says how it ended and what it wrote; with
// spares on (an agent), a sync takes the spare the last one left. A stand-in daemon (a Node script named
// qemu-storage-daemon, first on PATH) plays them; the real daemon is exercised by the tracker
// contract (tracker.case.test.ts) and tracker-qcow2.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { OfflineBitmapHost } from './bitmap-host-offline.js';
import { keepSpareDaemons } from './storage-daemon.js';

// Serves QMP on the --chardev socket: greets, answers every command with an empty return, but
// the first CRASHES blockdev-adds (counted across starts in COUNT) print to stderr and exit 3.
const standIn = `#!${process.execPath}
const net = require('node:net');
const fs = require('node:fs');
const path = process.argv.find((a) => a.startsWith('socket,')).match(/path=([^,]+)/)[1];
const starts = Number(fs.readFileSync(process.env.COUNT, 'utf8') || 0) + 1;
fs.writeFileSync(process.env.COUNT, String(starts));
const server = net.createServer((c) => {
  c.write(JSON.stringify({ QMP: { version: {}, capabilities: [] } }) + '\\n');
  let buf = '';
  c.on('data', (d) => {
    buf += d;
    for (let i; (i = buf.indexOf('\\n')) >= 0; ) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (!line) continue;
      const { execute: cmd, id } = JSON.parse(line);
      if (cmd === 'blockdev-add' && starts <= Number(process.env.CRASHES)) {
        process.stderr.write('stand-in: simulated crash opening the image\\n');
        process.exit(3);
      }
      c.write(JSON.stringify({ return: {}, id }) + '\\n');
      if (cmd === 'quit') setImmediate(() => process.exit(0));
    }
  });
});
server.listen(path);
setTimeout(() => process.exit(4), 30_000).unref(); // never outlives a test that went wrong
`;

async function withStandIn(crashes: number, body: (host: OfflineBitmapHost, starts: () => Promise<number>, dir: string, warnings: string[]) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'holdfast-qsd-'));
  const saved = { PATH: process.env.PATH, COUNT: process.env.COUNT, CRASHES: process.env.CRASHES };
  try {
    await writeFile(join(dir, 'qemu-storage-daemon'), standIn);
    await chmod(join(dir, 'qemu-storage-daemon'), 0o755);
    await writeFile(join(dir, 'count'), '');
    Object.assign(process.env, { PATH: `${dir}:${process.env.PATH}`, COUNT: join(dir, 'count'), CRASHES: String(crashes) });
    const warnings: string[] = [];
    const host = new OfflineBitmapHost(join(dir, 'disk.qcow2'), dir, 'tag', undefined, (m) => warnings.push(m));
    await body(host, async () => Number(await readFile(join(dir, 'count'), 'utf8')), dir, warnings);
    await host.close(true);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await rm(dir, { recursive: true, force: true });
  }
}

test('a daemon lost while opening the image is started once more, and the sync is told', async () => {
  await withStandIn(1, async (host, starts, _dir, warnings) => {
    await host.rotate('holdfast.s.2', []);
    assert.equal(await starts(), 2);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] as string, /qemu-storage-daemon for .*disk\.qcow2 was lost while opening it \(exit status 3: stand-in: simulated crash opening the image\); started another/);
  });
});

test('a daemon lost twice: the error names the image, how the daemon ended and what it wrote', async () => {
  await withStandIn(2, async (host, starts) => {
    await assert.rejects(host.rotate('holdfast.s.2', []), (err: Error) => {
      assert.match(err.message, /qemu-storage-daemon for .*disk\.qcow2 was lost while opening it \(exit status 3: stand-in: simulated crash opening the image\)/);
      return true;
    });
    assert.equal(await starts(), 2);
  });
});

test('with spares on, a sync takes the daemon started after the last one, and a new spare starts after it', async () => {
  await keepSpareDaemons(true);
  try {
    await withStandIn(0, async (host, starts, dir) => {
      await host.rotate('holdfast.s.2', []);
      assert.equal(await starts(), 1, 'no spare yet: the first sync starts its own');
      await host.close(true);
      for (let i = 0; i < 400 && (await starts()) < 2; i++) await sleep(25); // the spare's own start
      assert.equal(await starts(), 2, 'a spare started once the sync was over');
      const next = new OfflineBitmapHost(join(dir, 'disk.qcow2'), dir, 'tag');
      await next.rotate('holdfast.s.3', []);
      assert.equal(await starts(), 2, 'the next sync took the spare');
      await next.close(true);
      // Spares off: the waiting one quits; its files go with it.
      await keepSpareDaemons(false);
      assert.deepEqual((await readdir(dir)).filter((f) => f.includes('.qsd.')), []);
    });
  } finally {
    await keepSpareDaemons(false);
  }
});
