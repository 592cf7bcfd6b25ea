/**
 * QmpClient against a scripted QMP server on a Unix socket: greeting and capabilities
 * negotiation, replies matched by id even when they come out of order, events kept for
 * waitEvent, errors as QmpCommandError, and a dropped connection rejecting what is pending.
 * (The tracker tests run it against real QEMU.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QmpClient, QmpCommandError } from './qmp-client.js';

type Handler = (msg: { execute: string; arguments?: Record<string, unknown>; id?: string }, sock: Socket) => void;

async function withServer(handler: Handler, body: (path: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-qmp-'));
  const path = join(dir, 'qmp.sock');
  const server = createServer((sock) => {
    sock.write('{"QMP": {"version": {"qemu": {"major": 7}}, "capabilities": []}}\r\n');
    let buf = '';
    sock.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buf.slice(0, nl)) as Parameters<Handler>[0];
        buf = buf.slice(nl + 1);
        if (msg.execute === 'qmp_capabilities') sock.write(`${JSON.stringify({ return: {}, id: msg.id })}\r\n`);
        else handler(msg, sock);
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  try {
    await body(path);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('commands get their own replies, events wait to be taken, errors carry QEMU class and text', async () => {
  let held: { id?: string; sock: Socket } | undefined;
  await withServer(
    (msg, sock) => {
      if (msg.execute === 'slow') held = { id: msg.id, sock };
      else if (msg.execute === 'fast') {
        sock.write(`{"event": "JOB_STATUS_CHANGE", "data": {"id": "j1", "status": "null"}}\n`);
        sock.write(`${JSON.stringify({ return: { n: 2 }, id: msg.id })}\n`);
        // The slow command's answer comes after the fast one's.
        if (held) held.sock.write(`${JSON.stringify({ return: { n: 1 }, id: held.id })}\n`);
      } else sock.write(`${JSON.stringify({ error: { class: 'GenericError', desc: `no ${msg.execute}` }, id: msg.id })}\n`);
    },
    async (path) => {
      const q = await QmpClient.connect(path);
      try {
        const slow = q.execute<{ n: number }>('slow');
        const fast = await q.execute<{ n: number }>('fast');
        assert.deepEqual([fast.n, (await slow).n], [2, 1]);
        const ev = await q.waitEvent('JOB_STATUS_CHANGE', (d) => d.id === 'j1', 1000);
        assert.equal(ev.data?.status, 'null');
        await assert.rejects(q.waitEvent('JOB_STATUS_CHANGE', () => true, 100), /did not come within 100 ms/);
        await assert.rejects(q.execute('blockdev-del', { 'node-name': 'x' }), (err: unknown) => err instanceof QmpCommandError && err.desc === 'no blockdev-del' && err.code === 'SOURCE_UNREADABLE');
      } finally {
        q.close();
      }
    },
  );
});

test('a connection QEMU drops rejects the pending and later commands', async () => {
  await withServer(
    (_msg, sock) => sock.destroy(),
    async (path) => {
      const q = await QmpClient.connect(path);
      await assert.rejects(q.execute('query-block-jobs'), /connection lost/);
      await assert.rejects(q.execute('query-block-jobs'), /connection lost/);
    },
  );
  await assert.rejects(QmpClient.connect('/nonexistent/qmp.sock'), /cannot connect to QMP socket/);
});
