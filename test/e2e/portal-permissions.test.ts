/**
 * The portal's permission rule, end to end (real server and agent processes): a user sees and
 * gets only files their uid and groups could read at each recovery point (owner, mode, POSIX ACL,
 * search on every parent), and every attempt at other users' files and directories is refused.
 * Also: sessions, CSRF, login rate limiting, roles, and restoring a version beside the original.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratch, sh } from './cli-harness.js';
import { TestAgent, TestServer, until, type JobJson } from './server-harness.js';
import { WebClient } from './web-client.js';
import { LoopBtrfs } from './btrfs-fixtures.js';

interface Version {
  point: string;
  time: string;
  size: number;
  changed: boolean;
}

describe('portal permissions', { timeout: 300_000 }, () => {
  const tmp = scratch('holdfast-portal-');
  const data = join(tmp.dir, 'data');
  let server: TestServer;
  let agent: TestAgent;
  const btrfs = new LoopBtrfs(tmp.dir);
  let vol = '';
  const points: string[] = [];
  const web: Record<string, WebClient> = {};
  const PW = 'correct horse battery';

  const put = (rel: string, text: string, mode: number, uid: number, gid: number): void => {
    writeFileSync(join(data, rel), text);
    chmodSync(join(data, rel), mode);
    chownSync(join(data, rel), uid, gid);
  };
  const dir = (rel: string, mode: number, uid: number, gid: number): void => {
    mkdirSync(join(data, rel), { recursive: true });
    chmodSync(join(data, rel), mode);
    chownSync(join(data, rel), uid, gid);
  };
  const sync = async (): Promise<void> => {
    const r = await server.json<{ point: string }>(['sync', 'docs', '--wait']);
    points.push(r.point);
  };
  const versions = (who: string, path: string): Promise<{ status: number; body: { versions: Version[] } }> =>
    (web[who] as WebClient).call<{ versions: Version[] }>('GET', `/api/v1/portal/versions?source=docs&path=${encodeURIComponent(path)}`);

  /** The end of a portal restore job, as its user follows it. */
  const portalJobEnd = (w: WebClient, id: string): Promise<{ state: string; error: unknown }> =>
    until('the portal restore', async () => {
      const j = await w.call<{ state: string; error: unknown }>('GET', `/api/v1/portal/jobs/${id}`);
      return j.body.state === 'succeeded' || j.body.state === 'failed' ? j.body : undefined;
    }, 60_000, 500);

  before(async () => {
    dir('.', 0o755, 0, 0);
    dir('home', 0o755, 0, 0);
    dir('home/alice', 0o700, 1000, 1000);
    put('home/alice/report.docx', 'report v1', 0o600, 1000, 1000);
    dir('home/bob', 0o750, 1001, 1001);
    put('home/bob/secret.txt', 'bob secret', 0o644, 1001, 1001);
    dir('team', 0o755, 0, 0);
    put('team/acl.txt', 'shared by acl', 0o600, 1001, 1001);
    sh('setfacl', ['-m', 'u:1000:r', join(data, 'team/acl.txt')]);
    put('team/plan.txt', 'group plan', 0o640, 0, 100);
    put('team/hidden.txt', 'root only', 0o600, 0, 0);
    dir('drop', 0o711, 0, 0);
    put('drop/public.txt', 'known by name', 0o644, 0, 0);
    dir('pub', 0o1777, 0, 0);
    put('pub/bob-tool', 'bob tool v1', 0o4755, 1001, 1001);
    chmodSync(join(data, 'pub/bob-tool'), 0o4755); // chown cleared the set-user-ID bit

    server = await TestServer.start(join(tmp.dir, 'server'));
    agent = await TestAgent.start(server, 'host-a', join(tmp.dir, 'agent'));
    await server.cliOk(['group', 'create', 'files', '--sync-every', 'off']);
    await server.cliOk(['source', 'add', '--group', 'files', '--agent', 'host-a', '--kind', 'dir', 'docs', data]);
    // A btrfs subvolume's points are a folder of files too: the portal serves them alike.
    btrfs.setup(256);
    vol = btrfs.subvolume('homes');
    mkdirSync(join(vol, 'alice'), { mode: 0o700 });
    chownSync(join(vol, 'alice'), 1000, 1000);
    writeFileSync(join(vol, 'alice/thesis.txt'), 'thesis draft');
    chownSync(join(vol, 'alice/thesis.txt'), 1000, 1000);
    await server.cliOk(['source', 'add', '--group', 'files', '--agent', 'host-a', '--kind', 'btrfs', 'homes', vol]);
    await server.cliOk(['sync', 'homes', '--wait']);
    await sync(); // point 1
    put('home/alice/report.docx', 'report v2, longer', 0o600, 1000, 1000);
    await sync(); // point 2: report changed
    chmodSync(join(data, 'home/bob'), 0o755);
    await sync(); // point 3: bob's home opened to others
    writeFileSync(join(tmp.dir, 'pw'), `${PW}\n`);
    await server.cliOk(['user', 'add', '--role', 'admin', 'boss', '--password-file', join(tmp.dir, 'pw')]);
    await server.cliOk(['user', 'add', 'alice', '--uid', '1000', '--groups', '1000,100', '--password-file', join(tmp.dir, 'pw')]);
    await server.cliOk(['user', 'add', 'bob', '--uid', '1001', '--groups', '1001', '--password-file', join(tmp.dir, 'pw')]);
    await server.cliOk(['user', 'add', 'carol', '--uid', '1002', '--groups', '1002', '--password-file', join(tmp.dir, 'pw')]);
    for (const who of ['boss', 'alice', 'bob', 'carol']) {
      const w = new WebClient(server.url, server.dir);
      web[who] = w;
      assert.equal((await w.login(who, PW)).status, 200);
    }
  });

  after(async () => {
    for (const w of Object.values(web)) await w.close();
    await agent?.kill();
    await server?.kill();
    btrfs.teardown();
    tmp.cleanup();
  });

  it('lists every version of a readable file, changed or unchanged, per recovery point', async () => {
    const r = await versions('alice', 'home/alice/report.docx');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.versions.map((v) => [v.point, v.size, v.changed]), [[points[0], 9, true], [points[1], 17, true], [points[2], 17, false]]);
  });

  it("refuses another user's private file and directory (owner only, parent without search)", async () => {
    for (const who of ['bob', 'carol']) {
      const r = await versions(who, 'home/alice/report.docx');
      assert.equal(r.status, 404, `${who} must not see alice's report`);
      assert.equal((await versions(who, 'home/alice')).status, 404, `${who} must not see alice's home`);
      const d = await (web[who] as WebClient).call('GET', `/api/v1/portal/download?source=docs&path=home/alice/report.docx&point=${points[0] as string}`);
      assert.equal(d.status, 404);
      assert.doesNotMatch(d.raw.toString(), /report v1/);
      const rs = await (web[who] as WebClient).call('POST', '/api/v1/portal/restore', { source: 'docs', path: 'home/alice/report.docx', point: points[0] });
      assert.equal(rs.status, 404, `${who} must not restore alice's report`);
    }
    const s = await (web.carol as WebClient).call<unknown[]>('GET', '/api/v1/portal/search?q=report');
    assert.deepEqual(s.body, [], 'search shows nothing of it either');
  });

  it('applies the permissions recorded at each point: a file appears only where its parents were searchable', async () => {
    // bob/ was 0750 in points 1 and 2, 0755 in point 3; secret.txt itself was always 0644.
    const r = await versions('alice', 'home/bob/secret.txt');
    assert.deepEqual(r.body.versions.map((v) => v.point), [points[2]]);
    const old = await (web.alice as WebClient).call('GET', `/api/v1/portal/download?source=docs&path=home/bob/secret.txt&point=${points[0] as string}`);
    assert.equal(old.status, 404, 'not at a point where home/bob was closed');
    const now = await (web.alice as WebClient).call('GET', `/api/v1/portal/download?source=docs&path=home/bob/secret.txt&point=${points[2] as string}`);
    assert.equal(now.status, 200);
    assert.equal(now.raw.toString(), 'bob secret');
  });

  it('honours POSIX ACLs and group permissions', async () => {
    assert.equal((await versions('alice', 'team/acl.txt')).body.versions.length, 3, 'a named-user ACL entry grants alice read');
    assert.equal((await versions('bob', 'team/acl.txt')).status, 200, 'the owner reads it');
    assert.equal((await versions('carol', 'team/acl.txt')).status, 404);
    assert.equal((await versions('alice', 'team/plan.txt')).status, 200, 'alice is in group 100');
    assert.equal((await versions('bob', 'team/plan.txt')).status, 404);
    for (const who of ['alice', 'bob', 'carol']) assert.equal((await versions(who, 'team/hidden.txt')).status, 404);
    const s = await (web.alice as WebClient).call<Array<{ path: string }>>('GET', '/api/v1/portal/search?q=team/');
    assert.deepEqual(s.body.map((h) => h.path).sort(), ['team/acl.txt', 'team/plan.txt'], 'hidden.txt is not listed');
  });

  it('reaches a file in a search-only directory by its exact path, but never lists it', async () => {
    assert.equal((await versions('carol', 'drop/public.txt')).body.versions.length, 3);
    const s = await (web.carol as WebClient).call<unknown[]>('GET', '/api/v1/portal/search?q=public');
    assert.deepEqual(s.body, []);
    const admin = await (web.boss as WebClient).call<unknown[]>('GET', '/api/v1/portal/search?q=public');
    assert.equal(admin.body.length, 1, 'an administrator sees it');
  });

  it('keeps users out of the administrator API and point browsing, and refuses bad paths', async () => {
    const w = web.alice as WebClient;
    assert.equal((await w.call('GET', `/api/v1/points/${points[0] as string}/browse?path=home`)).status, 403);
    assert.equal((await w.call('GET', `/api/v1/points/${points[0] as string}/download?path=team/hidden.txt`)).status, 403);
    assert.equal((await w.call('GET', '/api/v1/users')).status, 403);
    assert.equal((await w.call('POST', '/api/v1/sources/docs/sync')).status, 403);
    assert.equal((await versions('alice', '../../etc/shadow')).status, 400);
    const anon = new WebClient(server.url, server.dir);
    assert.equal((await anon.call('GET', '/api/v1/portal/search?q=report')).status, 401);
    assert.equal((await anon.call('GET', `/api/v1/points/${points[0] as string}/browse`)).status, 401);
    await anon.close();
  });

  it('requires the CSRF token and this origin on state-changing requests', async () => {
    const w = web.alice as WebClient;
    const body = { source: 'docs', path: 'home/alice/report.docx', point: points[0] };
    assert.equal((await w.call('POST', '/api/v1/portal/restore', body, { csrf: false })).status, 403);
    assert.equal((await w.call('POST', '/api/v1/portal/restore', body, { csrf: 'x'.repeat(32) })).status, 403);
    assert.equal((await w.call('POST', '/api/v1/portal/restore', body, { headers: { origin: 'https://evil.example' } })).status, 403);
    assert.equal((await (web.boss as WebClient).call('POST', '/api/v1/groups', { name: 'nocsrf' }, { csrf: false })).status, 403);
    assert.equal((await (web.boss as WebClient).call('POST', '/api/v1/groups', { name: 'withcsrf' })).status, 201, 'an admin session with the token may');
  });

  it('restores a version beside the original under a new name, owned as it was', async () => {
    const w = web.alice as WebClient;
    const r = await w.call<{ job: string; restoredAs: string }>('POST', '/api/v1/portal/restore', { source: 'docs', path: 'home/alice/report.docx', point: points[0] });
    assert.equal(r.status, 202);
    assert.match(r.body.restoredAs, /\/home\/alice\/report \(restored \d{4}-\d\d-\d\d \d\d\.\d\d\)\.docx$/);
    const job = await portalJobEnd(w, r.body.job);
    assert.equal(job.state, 'succeeded', JSON.stringify(job));
    assert.equal(readFileSync(r.body.restoredAs, 'utf8'), 'report v1');
    assert.equal(readFileSync(join(data, 'home/alice/report.docx'), 'utf8'), 'report v2, longer', 'the original is untouched');
    const st = statSync(r.body.restoredAs);
    assert.deepEqual([st.uid, st.mode & 0o7777], [1000, 0o600]);
    assert.equal(readdirSync(join(data, 'home/alice')).length, 2);
    // Someone else cannot follow alice's job.
    assert.equal((await (web.bob as WebClient).call('GET', `/api/v1/portal/jobs/${r.body.job}`)).status, 404);
    const jobs = await server.json<JobJson[]>(['jobs', '--source', 'docs']);
    assert.ok(jobs.some((j) => j.origin === 'portal:alice' && j.type === 'restore'));
  });

  it("refuses to restore beside the original where the user could not create the copy; a copy of another's file is the user's, without set-ID bits", async () => {
    const w = web.alice as WebClient;
    // alice reads team/plan.txt (group 100), but team/ is root's 0755.
    const no = await w.call<{ error: { code: string; message: string } }>('POST', '/api/v1/portal/restore', { source: 'docs', path: 'team/plan.txt', point: points[0] });
    assert.equal(no.status, 403);
    assert.match(no.body.error.message, /may not create files in '.*\/team'/);
    assert.deepEqual(readdirSync(join(data, 'team')).sort(), ['acl.txt', 'hidden.txt', 'plan.txt'], 'nothing written');
    // pub/ is 1777: alice may copy bob's set-user-ID tool there, and the copy is hers.
    const r = await w.call<{ job: string; restoredAs: string }>('POST', '/api/v1/portal/restore', { source: 'docs', path: 'pub/bob-tool', point: points[0] });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const job = await portalJobEnd(w, r.body.job);
    assert.equal(job.state, 'succeeded', JSON.stringify(job));
    assert.equal(readFileSync(r.body.restoredAs, 'utf8'), 'bob tool v1');
    const st = statSync(r.body.restoredAs);
    assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [1000, 1000, 0o755]);
    assert.equal(statSync(join(data, 'pub/bob-tool')).mode & 0o7777, 0o4755, 'the original is untouched');
  });

  it("serves a btrfs source's files too, with the same permission rule", async () => {
    const s = await (web.alice as WebClient).call<Array<{ source: string; path: string }>>('GET', '/api/v1/portal/search?q=thesis');
    assert.deepEqual(s.body.map((h) => [h.source, h.path]), [['homes', 'alice/thesis.txt']]);
    const v = await (web.alice as WebClient).call<{ versions: Version[] }>('GET', '/api/v1/portal/versions?source=homes&path=alice/thesis.txt');
    assert.equal(v.body.versions.length, 1);
    const d = await (web.alice as WebClient).call('GET', `/api/v1/portal/download?source=homes&path=alice/thesis.txt&point=${v.body.versions[0]?.point as string}`);
    assert.equal(d.raw.toString(), 'thesis draft');
    assert.equal((await (web.carol as WebClient).call('GET', '/api/v1/portal/versions?source=homes&path=alice/thesis.txt')).status, 404);
    assert.deepEqual((await (web.carol as WebClient).call<unknown[]>('GET', '/api/v1/portal/search?q=thesis')).body, []);
  });

  it('lets an administrator session browse a point and download a file and a directory (tar), and the bearer token still works', async () => {
    const b = web.boss as WebClient;
    const list = await b.call<{ entries: Array<{ name: string; type: string }> }>('GET', `/api/v1/points/${points[2] as string}/browse?path=team`);
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.entries.map((e) => e.name), ['acl.txt', 'hidden.txt', 'plan.txt']);
    const d = await b.call('GET', `/api/v1/points/${points[0] as string}/download?path=home/alice/report.docx`);
    assert.equal(d.status, 200);
    assert.equal(d.raw.toString(), 'report v1');
    assert.match(String(d.headers['content-disposition']), /report\.docx/);
    // A directory downloads as a tar: every entry with its bytes, mode and owner.
    const t = await b.call('GET', `/api/v1/points/${points[2] as string}/download?path=team`);
    assert.equal(t.status, 200);
    assert.match(String(t.headers['content-disposition']), /team\.tar/);
    const tarFile = join(tmp.dir, 'team.tar');
    writeFileSync(tarFile, t.raw);
    const out = join(tmp.dir, 'untar');
    mkdirSync(out);
    sh('tar', ['-xpf', tarFile, '-C', out, '--numeric-owner']);
    assert.deepEqual(readdirSync(join(out, 'team')).sort(), ['acl.txt', 'hidden.txt', 'plan.txt']);
    for (const n of ['acl.txt', 'hidden.txt', 'plan.txt']) {
      const [a, z] = [statSync(join(data, 'team', n)), statSync(join(out, 'team', n))];
      assert.equal(readFileSync(join(out, 'team', n), 'utf8'), readFileSync(join(data, 'team', n), 'utf8'), n);
      assert.deepEqual([z.mode & 0o7777, z.uid, z.gid, Math.floor(z.mtimeMs / 1000)], [a.mode & 0o7777, a.uid, a.gid, Math.floor(a.mtimeMs / 1000)], n);
    }
    assert.equal((await b.call('GET', `/api/v1/points/${points[2] as string}/download?path=nowhere`)).status, 404);
    const agents = await server.json<unknown[]>(['agents']);
    assert.equal(agents.length, 1);
  });

  it('rate-limits failed logins, and a signed-out session is dead', async () => {
    const w = new WebClient(server.url, server.dir);
    for (let i = 0; i < 5; i++) assert.equal((await w.login('carol', 'wrong password')).status, 401);
    const limited = await w.login('carol', PW);
    assert.equal(limited.status, 429, 'even the right password waits');
    await w.close();
    const c = web.bob as WebClient;
    assert.equal((await c.call('DELETE', '/api/v1/session')).status, 200);
    assert.equal((await c.call('GET', '/api/v1/portal/search?q=plan')).status, 401);
  });
});
