/**
 * Security of the server API, each with a real request: every call is authenticated, an agent's
 * certificate reaches only its own sources and jobs, revoked agents and used or expired join
 * tokens are refused, and malformed or oversized requests get a 4xx while the server stays up.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { Agent, request } from 'undici';
import { scratch } from './cli-harness.js';
import { TestAgent, TestServer, sleep, until, type JobJson } from './server-harness.js';
import { HoldfastError } from '../../src/core/errors.js';
import { encodeFrames } from '../../src/core/chunk-frames.js';
import type { ServerClient } from '../../src/agent/remote/server-client.js';

async function refused(p: Promise<unknown>, code: string, status?: number): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof HoldfastError, String(err));
    assert.equal(err.code, code, err.message);
    if (status) assert.equal(err.details.status, status);
    return true;
  });
}

/** A raw HTTPS request without any credentials. */
async function raw(url: string, method: 'GET' | 'POST' | 'PUT', body?: string | Buffer, type = 'application/json', headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const insecure = new Agent({ connect: { rejectUnauthorized: false } });
  try {
    const res = await request(url, { method, body, headers: { ...(body !== undefined ? { 'content-type': type } : {}), ...headers }, dispatcher: insecure });
    return { status: res.statusCode, body: await res.body.text() };
  } catch (err) {
    // A server that refuses an oversized body may close the connection while we still write it.
    const code = (err as { code?: string }).code;
    if (code === 'EPIPE' || code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return { status: 0, body: `connection cut (${code})` };
    throw err;
  } finally {
    await insecure.close();
  }
}

describe('server API security', { timeout: 360_000 }, () => {
  const tmp = scratch('holdfast-sec-');
  let server: TestServer;
  let a: TestAgent;
  let b: TestAgent;
  let ca: ServerClient;
  let cb: ServerClient;
  let jobA: string;

  before(async () => {
    server = await TestServer.start(join(tmp.dir, 'server'));
    a = await TestAgent.start(server, 'alpha', join(tmp.dir, 'agent-a'));
    b = await TestAgent.start(server, 'beta', join(tmp.dir, 'agent-b'));
    for (const n of ['da', 'db']) {
      mkdirSync(join(tmp.dir, n));
      writeFileSync(join(tmp.dir, n, 'secret.txt'), `the data of ${n}\n`);
    }
    await server.cliOk(['group', 'create', 'g', '--sync-every', 'off']);
    await server.cliOk(['source', 'add', '--group', 'g', '--agent', 'alpha', 'src-a', join(tmp.dir, 'da')]);
    await server.cliOk(['source', 'add', '--group', 'g', '--agent', 'beta', 'src-b', join(tmp.dir, 'db')]);
    jobA = (await server.json<{ job: string }>(['sync', 'src-a', '--wait'])).job;
    ca = a.client();
    cb = b.client();
  });

  after(async () => {
    await ca?.close();
    await cb?.close();
    await a?.kill();
    await b?.kill();
    await server?.kill();
    tmp.cleanup();
  });

  it('refuses every management call without a valid administrator token', async () => {
    for (const path of ['/api/v1/agents', '/api/v1/sources', '/api/v1/jobs', '/api/v1/alerts', '/api/v1/groups', '/api/v1/sources/src-a/points']) {
      assert.equal((await raw(`${server.url}${path}`, 'GET')).status, 401, path);
      assert.equal((await raw(`${server.url}${path}`, 'GET', undefined, undefined, { authorization: 'Bearer wrongwrongwrongwrongwrong' })).status, 401, path);
    }
    assert.equal((await raw(`${server.url}/api/v1/agent-tokens`, 'POST', '{}')).status, 401);
    assert.equal((await raw(`${server.url}/api/v1/agent/hello`, 'POST', '{"version":"x","hostname":"h","running":[]}')).status, 401, 'agent routes need a client certificate');
    // An agent certificate is not an administrator.
    await refused(ca.json('GET', '/api/v1/agents'), 'UNAUTHORIZED', 401);
    await refused(ca.json('POST', '/api/v1/sources/src-b/sync'), 'UNAUTHORIZED', 401);
  });

  it("keeps agent B away from agent A's sources, jobs and chunks", async () => {
    const own = await cb.json<Array<{ name: string }>>('GET', '/api/v1/agent/sources');
    assert.deepEqual(own.map((s) => s.name), ['src-b']);
    const digest = 'a'.repeat(64);
    await refused(cb.json('POST', `/api/v1/agent/jobs/${jobA}/want`, { digests: [digest] }), 'NOT_FOUND', 404);
    await refused(cb.json('POST', `/api/v1/agent/jobs/${jobA}/read`, { refs: [[digest, 10]] }), 'NOT_FOUND', 404);
    await refused(cb.json('POST', `/api/v1/agent/jobs/${jobA}/progress`, { entries: 1 }), 'NOT_FOUND', 404);
    await refused(cb.binary('POST', `/api/v1/agent/jobs/${jobA}/chunks`, { type: 'application/octet-stream', data: Buffer.alloc(0) }), 'NOT_FOUND', 404);
    await refused(cb.json('POST', `/api/v1/agent/jobs/${jobA}/complete-sync`, { manifest: [], entries: 0, logicalBytes: 0, readBytes: 0, sentBytes: 0, torn: [], warnings: [], tracker: 'full', sourcePath: '/' }), 'NOT_FOUND', 404);
    await refused(cb.json('POST', `/api/v1/agent/jobs/${jobA}/fail`, { code: 'X', message: 'y' }), 'NOT_FOUND', 404);
    // A's own finished job is not writable either.
    await refused(ca.json('POST', `/api/v1/agent/jobs/${jobA}/want`, { digests: [digest] }), 'CONFLICT', 409);
  });

  it("refuses a chunk whose bytes do not match its digest, and a read outside the job's points", async () => {
    // A sync of src-b that agent B runs by hand through the API (the daemon is stopped first).
    await b.kill();
    // Heartbeats in the daemon's place, so the server does not take beta for offline meanwhile.
    const beat = setInterval(() => void cb.json('POST', '/api/v1/agent/heartbeat', { running: [] }).catch(() => undefined), 1000);
    after(() => clearInterval(beat));
    const job = await server.json<JobJson>(['sync', 'src-b']);
    const spec = await until('the sync to be handed out', () => cb.json<{ id: string } | undefined>('GET', '/api/v1/agent/jobs/next?wait=1'), 20_000);
    assert.equal(spec.id, job.id);
    const frames = encodeFrames([{ digest: 'b'.repeat(64), length: 5, flags: 0, data: Buffer.from('hello') }]);
    await refused(cb.binary('POST', `/api/v1/agent/jobs/${job.id}/chunks`, { type: 'application/octet-stream', data: frames }), 'BAD_ARGUMENT', 400);
    await refused(cb.binary('POST', `/api/v1/agent/jobs/${job.id}/chunks`, { type: 'application/octet-stream', data: Buffer.from([1, 2, 3]) }), 'BAD_ARGUMENT', 400);
    // src-a's manifest digests are not part of B's job.
    const pointsA = await server.json<Array<{ id: string }>>(['points', '--source', 'src-a']);
    assert.equal(pointsA.length, 1);
    const admin = server.admin();
    const jobs = await admin.json<JobJson[]>('GET', '/api/v1/jobs?source=src-a');
    await admin.close();
    assert.ok(jobs.length > 0);
    await refused(cb.json('POST', `/api/v1/agent/jobs/${job.id}/read`, { refs: [['c'.repeat(64), 1]] }), 'FORBIDDEN', 403);
    await cb.json('POST', `/api/v1/agent/jobs/${job.id}/fail`, { code: 'TEST', message: 'stopped by the test' });
  });

  it('uses a join token once, and never after it expires', async () => {
    const token = (await server.cliOk(['agent-token', 'create'])).trim();
    const delta = await TestAgent.start(server, 'delta', join(tmp.dir, 'agent-d'), token);
    await delta.kill();
    const second = await server.cli(['agent', '--server', server.url, '--join', token, '--state', join(tmp.dir, 'agent-e'), '--name', 'epsilon']);
    assert.notEqual(second.code, 0);
    assert.match(second.stderr, /already used/);
    const short = (await server.cliOk(['agent-token', 'create', '--expires', '1s'])).trim();
    await sleep(1500);
    const late = await server.cli(['agent', '--server', server.url, '--join', short, '--state', join(tmp.dir, 'agent-f'), '--name', 'late']);
    assert.notEqual(late.code, 0);
    assert.match(late.stderr, /expired/);
    // A token for another server (wrong CA fingerprint) is refused before anything is sent.
    const forged = token.replace(/\.[0-9a-f]{64}$/, `.${'0'.repeat(64)}`);
    const wrong = await server.cli(['agent', '--server', server.url, '--join', forged, '--state', join(tmp.dir, 'agent-g')]);
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /fingerprint mismatch/);
  });

  it('refuses a revoked agent, and the revoked agent stops', async () => {
    await server.cliOk(['agents', 'revoke', 'alpha']);
    await refused(ca.json('POST', '/api/v1/agent/heartbeat', { running: [] }), 'FORBIDDEN', 403);
    await refused(ca.json('GET', '/api/v1/agent/jobs/next?wait=0'), 'FORBIDDEN', 403);
    const code = await a.exited;
    assert.notEqual(code, 0, 'the agent process exits when revoked');
    const agents = await server.json<Array<{ name: string; status: string }>>(['agents']);
    assert.equal(agents.find((x) => x.name === 'alpha')?.status, 'revoked');
  });

  it('answers malformed and oversized requests with 4xx and stays up', async () => {
    const auth = { authorization: `Bearer ${server.token.split('.')[1] as string}` };
    assert.equal((await raw(`${server.url}/api/v1/groups`, 'POST', '{"name":', 'application/json', auth)).status, 400);
    assert.equal((await raw(`${server.url}/api/v1/groups`, 'POST', '{"name":"x","syncEvery":"soon"}', 'application/json', auth)).status, 400);
    assert.equal((await raw(`${server.url}/api/v1/groups`, 'POST', '{"name":"../etc"}', 'application/json', auth)).status, 400);
    assert.equal((await raw(`${server.url}/api/v1/groups`, 'POST', '{"name":"x","extra":1}', 'application/json', auth)).status, 400);
    const huge = await raw(`${server.url}/api/v1/groups`, 'POST', JSON.stringify({ name: 'x', pad: 'y'.repeat(20 * 1024 * 1024) }), 'application/json', auth);
    assert.ok(huge.status === 413 || huge.status === 0, `oversized body: ${huge.status} ${huge.body}`);
    assert.equal((await raw(`${server.url}/api/v1/restores`, 'POST', '{"source":"src-a","to":"relative/path"}', 'application/json', auth)).status, 400);
    assert.equal((await raw(`${server.url}/api/v1/jobs/zzz`, 'GET', undefined, undefined, auth)).status, 400);
    assert.equal((await raw(`${server.url}/api/v1/nothing`, 'GET', undefined, undefined, auth)).status, 404);
    // Too big: 413, or the connection cut while the client still writes (the server stops reading).
    await assert.rejects(cb.binary('POST', '/api/v1/agent/jobs/0123456789abcdef/chunks', { type: 'application/octet-stream', data: Buffer.alloc(41 * 1024 * 1024) }), (err: unknown) => {
      assert.ok(err instanceof HoldfastError);
      assert.ok((err.code === 'BAD_ARGUMENT' && err.details.status === 413) || (err.code === 'SERVER_UNREACHABLE' && /EPIPE|ECONNRESET|closed/.test(err.message)), err.message);
      return true;
    });
    const health = await raw(`${server.url}/api/v1/health`, 'GET');
    assert.equal(health.status, 200);
    const openapi = JSON.parse((await raw(`${server.url}/api/openapi.json`, 'GET')).body) as { paths: Record<string, unknown> };
    assert.ok(openapi.paths['/api/v1/sources/{name}/sync'], 'the OpenAPI document lists the routes');
  });

  it('an agent that goes away in the middle of a log upload does not keep one of the server’s log upload slots', async () => {
    // Twelve uploads cut off mid-body (more than the server's eight log slots); then a real one.
    const f = (n: string): string => readFileSync(join(tmp.dir, 'agent-b', n), 'utf8');
    const { hostname, port } = new URL(server.url);
    for (let i = 0; i < 12; i++) {
      await new Promise<void>((resolve, reject) => {
        const sock = connect({ host: hostname, port: Number(port), ca: f('ca.pem'), cert: f('cert.pem'), key: f('key.pem'), checkServerIdentity: () => undefined }, () => {
          sock.write(`POST /api/v1/agent/logs/src-a?name=seg${i}&kind=pg-wal HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\ncontent-length: 1048576\r\n\r\n`);
          sock.write(Buffer.alloc(64 * 1024));
          // Long enough for the server to have admitted the request and started on its body.
          setTimeout(() => {
            sock.destroy();
            resolve();
          }, 150);
        });
        sock.on('error', reject);
      });
    }
    await sleep(300);
    // Not BUSY: the upload reaches the route (which refuses it: src-a is not beta's).
    await assert.rejects(b.client().binary('POST', '/api/v1/agent/logs/src-a?name=real&kind=pg-wal', { type: 'application/octet-stream', data: encodeFrames([]) }), (err: unknown) => {
      assert.ok(err instanceof HoldfastError, String(err));
      assert.notEqual(err.code, 'BUSY', `every log upload slot is held by a cut-off upload: ${err.message}`);
      assert.equal(err.details.status, 403, err.message);
      return true;
    });
  });
});

