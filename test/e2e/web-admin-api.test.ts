/**
 * The console's administrator API beyond what the browser test clicks through, against a real
 * server and agent: the session cookie's and the pages' security settings, editing a source
 * (PATCH, `holdfast source edit`), several entries restored to another place in one job, and
 * several entries downloaded as one tar.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, scratch, sh } from './cli-harness.js';
import { TestAgent, TestServer, until, type JobJson } from './server-harness.js';
import { WebClient } from './web-client.js';

interface SourceJson {
  name: string;
  group: string;
  kind: string;
  options: Record<string, unknown>;
}

describe('console administrator API', { timeout: 240_000 }, () => {
  const tmp = scratch('holdfast-web-api-');
  const data = join(tmp.dir, 'data');
  let server: TestServer;
  let agent: TestAgent;
  let web: WebClient;
  let point = '';
  const PW = 'a long enough password';

  const job = (id: string): Promise<JobJson> =>
    until(`job ${id} to end`, async () => {
      const j = (await web.call<JobJson>('GET', `/api/v1/jobs/${id}`)).body;
      return j.state === 'succeeded' || j.state === 'failed' ? j : undefined;
    }, 60_000, 200);

  before(async () => {
    for (const d of ['docs/old', 'etc', 'var/log']) mkdirSync(join(data, d), { recursive: true });
    writeFileSync(join(data, 'docs/a.txt'), 'a\n');
    writeFileSync(join(data, 'docs/old/b.txt'), 'b\n');
    writeFileSync(join(data, 'etc/app.conf'), 'setting = 1\n');
    writeFileSync(join(data, 'var/log/a.txt'), 'log a\n');
    server = await TestServer.start(join(tmp.dir, 'server'));
    agent = await TestAgent.start(server, 'host-a', join(tmp.dir, 'agent'));
    await server.cliOk(['group', 'create', 'daily', '--sync-every', 'off']);
    await server.cliOk(['group', 'create', 'weekly', '--sync-every', 'off']);
    await server.cliOk(['source', 'add', '--group', 'daily', '--agent', 'host-a', 'files', data]);
    point = (await server.json<{ point: string }>(['sync', 'files', '--wait'])).point;
    writeFileSync(join(tmp.dir, 'pw'), PW);
    await server.cliOk(['user', 'add', '--role', 'admin', 'boss', '--password-file', join(tmp.dir, 'pw')]);
    web = new WebClient(server.url, server.dir);
  });

  after(async () => {
    await web?.close();
    await agent?.kill();
    await server?.kill();
    tmp.cleanup();
  });

  it('signs in with a __Host- cookie that is Secure, HttpOnly, SameSite=Strict and for Path=/', async () => {
    const r = await web.login('boss', PW);
    assert.equal(r.status, 200);
    const raw = r.headers['set-cookie'];
    const cookie = (Array.isArray(raw) ? raw : [raw ?? '']).find((c) => c.startsWith('__Host-hf_session=')) ?? '';
    const attrs = cookie.split(';').slice(1).map((a) => a.trim().toLowerCase());
    for (const a of ['secure', 'httponly', 'samesite=strict', 'path=/']) assert.ok(attrs.includes(a), `${a} in ${cookie}`);
    assert.ok(!attrs.some((a) => a.startsWith('domain=')), 'a __Host- cookie has no Domain');
  });

  it('serves the app with a content security policy, and the built app loads nothing from elsewhere', async () => {
    const r = await web.call('GET', '/');
    assert.equal(r.status, 200);
    const csp = String(r.headers['content-security-policy']);
    for (const d of ["default-src 'self'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]) assert.ok(csp.includes(d), `${d} in ${csp}`);
    assert.equal(r.headers['x-frame-options'], 'DENY');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    // index.html and every file it loads (scripts, styles) name no outside address
    const root = join(REPO, 'dist', 'web');
    const html = readFileSync(join(root, 'index.html'), 'utf8');
    const refs = [...html.matchAll(/(?:src|href)\s*=\s*["']([^"']+)["']/g)].map((m) => m[1] as string);
    assert.ok(refs.length >= 2, `index.html loads its script and style: ${refs.join(', ')}`);
    for (const ref of refs) {
      assert.doesNotMatch(ref, /^(https?:)?\/\//, `index.html loads ${ref}`);
      const asset = readFileSync(join(root, ref.replace(/^\//, '')), 'utf8');
      assert.doesNotMatch(asset, /(?:@import|url\()\s*["']?(https?:)?\/\//, `${ref} imports from elsewhere`);
      assert.doesNotMatch(asset, /\bimport\s*\(?\s*["'`](https?:)?\/\//, `${ref} imports a module from elsewhere`);
      // React's own strings (error page links, XML namespaces) name addresses but load nothing
      assert.doesNotMatch(asset, /\b(?:src|href|action)\s*[:=]\s*["'`](https?:)?\/\//, `${ref} points an element at another address`);
      assert.doesNotMatch(asset, /\b(?:fetch|EventSource|WebSocket)\(\s*["'`](https?:|wss?:)?\/\//, `${ref} calls another address`);
    }
    for (const f of readdirSync(join(root, 'assets')).filter((n) => n.endsWith('.css'))) {
      assert.doesNotMatch(readFileSync(join(root, 'assets', f), 'utf8'), /url\(\s*["']?(https?:)?\/\//, f);
    }
  });

  it('edits a source: another group, changed and removed options, checked against its kind; the agent uses them at its next sync', async () => {
    const r = await web.call<SourceJson>('PATCH', '/api/v1/sources/files', { group: 'weekly', options: { tracker: 'full', preSnapshot: 'true' } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.group, 'weekly');
    assert.equal(r.body.options.tracker, 'full');
    const s = await server.json<SourceJson[]>(['source', 'list']);
    assert.deepEqual(s.map((x) => [x.name, x.group, x.options.tracker, x.options.preSnapshot, x.options.timeoutMs]), [['files', 'weekly', 'full', 'true', 60_000]], 'other options stay');
    const groups = await server.json<Array<{ name: string }>>(['group', 'list']);
    assert.deepEqual(groups.map((g) => g.name), ['daily', 'weekly']);
    // The agent daemon would use its change journal (inotify); the edited tracker reads everything.
    const sync = await server.json<{ tracker: string }>(['sync', 'files', '--wait']);
    assert.equal(sync.tracker, 'full');

    // holdfast source edit: '' removes an option
    await server.cliOk(['source', 'edit', 'files', '--group', 'daily', '--pre-snapshot', '', '--tracker', 'auto']);
    const [e] = await server.json<SourceJson[]>(['source', 'list']);
    assert.equal(e?.group, 'daily');
    assert.equal(e?.options.tracker, 'auto');
    assert.ok(e && !('preSnapshot' in e.options), JSON.stringify(e?.options));

    const refused: Array<[unknown, number, RegExp]> = [
      [{ options: { tracker: 'qcow2-bitmap' } }, 400, /tracker 'qcow2-bitmap' cannot track it/],
      [{ options: { postgres: { connect: 'postgresql:///x' } } }, 400, /postgres options are for postgres sources/],
      [{ options: { timeoutMs: 5 } }, 400, /timeoutMs|>= 1000/],
      [{ group: 'nope' }, 404, /no protection group named 'nope'/],
      [{ path: '/elsewhere' }, 400, /additional/i],
      [{ kind: 'image' }, 400, /additional/i],
    ];
    for (const [body, status, message] of refused) {
      const x = await web.call<{ error: { message: string } }>('PATCH', '/api/v1/sources/files', body);
      assert.equal(x.status, status, JSON.stringify(body));
      assert.match(x.body.error.message, message);
    }
    assert.equal((await web.call('PATCH', '/api/v1/sources/nope', { group: 'daily' })).status, 404);
    assert.equal((await web.call('PATCH', '/api/v1/sources/files', { group: 'weekly' }, { csrf: false })).status, 403, 'a session needs its CSRF token');
    const after = await server.json<SourceJson[]>(['source', 'list']);
    assert.deepEqual(after.map((x) => [x.group, x.options]), [['daily', e?.options]], 'refused edits changed nothing');
    // source add is checked the same way
    const bad = await server.cli(['source', 'add', '--group', 'daily', '--agent', 'host-a', '--tracker', 'btrfs', 'files2', data]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /tracker 'btrfs' cannot track it/);
  });

  it('restores several entries to another place in one job, each under its own name', async () => {
    const to = join(tmp.dir, 'restored');
    mkdirSync(to);
    writeFileSync(join(to, 'unrelated.txt'), 'mine\n');
    const body = { source: 'files', point, paths: ['etc/app.conf', 'docs', 'docs/old/b.txt'], to, agent: 'host-a' };
    // a non-empty target needs overwrite: the job fails before writing anything
    const no = await web.call<JobJson>('POST', '/api/v1/restores', body);
    assert.equal(no.status, 202);
    const failed = await job(no.body.id);
    assert.equal(failed.error?.code, 'TARGET_NOT_EMPTY');
    assert.deepEqual(readdirSync(to), ['unrelated.txt']);
    const yes = await web.call<JobJson & { params: { subPaths: string[] } }>('POST', '/api/v1/restores', { ...body, overwrite: true });
    assert.deepEqual(yes.body.params.subPaths, ['docs', 'etc/app.conf'], 'in walk order, docs/old/b.txt comes with docs');
    const done = await job(yes.body.id);
    assert.equal(done.state, 'succeeded', JSON.stringify(done.error));
    assert.deepEqual(readdirSync(to).sort(), ['app.conf', 'docs', 'unrelated.txt']);
    assert.equal(readFileSync(join(to, 'docs/old/b.txt'), 'utf8'), 'b\n');
    assert.equal(readFileSync(join(to, 'unrelated.txt'), 'utf8'), 'mine\n', 'nothing else is touched');

    const same = await web.call<{ error: { message: string } }>('POST', '/api/v1/restores', { ...body, paths: ['docs/a.txt', 'var/log/a.txt'] });
    assert.equal(same.status, 400);
    assert.match(same.body.error.message, /same name/);
    assert.equal((await web.call('POST', '/api/v1/restores', { ...body, path: 'etc', paths: ['docs'] })).status, 400);
    assert.equal((await web.call('POST', '/api/v1/restores', { ...body, paths: ['docs', '../x'] })).status, 400);
  });

  it('downloads several chosen entries as one tar, each under its own name', async () => {
    const t = await web.call('GET', `/api/v1/points/${point}/download?path=etc/app.conf&path=docs&path=var/log`);
    assert.equal(t.status, 200);
    assert.match(String(t.headers['content-disposition']), new RegExp(`files-${point}\\.tar`));
    const file = join(tmp.dir, 'chosen.tar');
    writeFileSync(file, t.raw);
    const names = sh('tar', ['-tf', file]).trim().split('\n');
    assert.deepEqual(names, ['docs/', 'docs/a.txt', 'docs/old/', 'docs/old/b.txt', 'app.conf', 'log/', 'log/a.txt']);
    const out = join(tmp.dir, 'untar');
    mkdirSync(out);
    sh('tar', ['-xf', file, '-C', out]);
    assert.equal(readFileSync(join(out, 'app.conf'), 'utf8'), 'setting = 1\n');
    assert.equal(readFileSync(join(out, 'log/a.txt'), 'utf8'), 'log a\n');
    const missing = await web.call<{ error: { message: string } }>('GET', `/api/v1/points/${point}/download?path=docs&path=nowhere`);
    assert.equal(missing.status, 404);
    assert.match(missing.body.error.message, /no 'nowhere'/);
  });
});
