/**
 * The end-user portal ("Previous Versions" for the web), for any signed-in account: search the
 * file-version index, list every version of a file, download one, or restore one beside the
 * original under a new name. A user sees and gets only what their uid and groups could read at
 * that recovery point (read on the file, search on every directory above it, per the recorded
 * owner, mode and ACL); anything else is answered as if it did not exist. Administrators see all.
 */
import { posix } from 'node:path';
import { Type } from '@sinclair/typebox';
import { HoldfastError } from '../../core/errors.js';
import { baseName } from '../../core/entry-path.js';
import type { App } from '../http-app.js';
import type { ProtectionServer } from '../protection-server.js';
import { findEntry, fileStream, pointPath } from '../browse.js';
import type { Principal } from '../file-access.js';
import type { PointVersion } from '../file-versions.js';
import { requireSession, type AnyRequest } from '../web-auth.js';
import type { SourceRowC } from '../control-db.js';
import { attachmentName, requirePoint } from './browse-routes.js';

const SourceName = Type.String({ minLength: 1, maxLength: 63 });
const PathQ = Type.String({ minLength: 1, maxLength: 4096 });
const PointId = Type.String({ pattern: '^[0-9a-f]{4,64}$' });

/** `report.docx` at 2026-11-25 08:00 → `report (restored 2026-11-25 08.00).docx` (server local time). */
export function restoredName(name: string, time: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  const stamp = `${time.getFullYear()}-${pad(time.getMonth() + 1)}-${pad(time.getDate())} ${pad(time.getHours())}.${pad(time.getMinutes())}`;
  const dot = name.lastIndexOf('.');
  const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ''];
  return `${stem} (restored ${stamp})${ext}`;
}

/** Source kinds whose points are a host's folder of user files (a database's data directory is not). */
const HAS_USER_FILES: ReadonlySet<SourceRowC['kind']> = new Set(['dir', 'btrfs']);

/**
 * A user's copy of a file they do not own is theirs, as `cp` would make it. Accounts record no
 * primary group: the copy keeps the file's group when the user is in it, else takes the group
 * numbered as the user (Debian's user private groups), else the user's lowest group.
 */
function copyOwner(who: Principal, gid: number): { uid: number; gid: number } {
  if (who.gids.includes(gid)) return { uid: who.uid, gid };
  return { uid: who.uid, gid: who.gids.includes(who.uid) ? who.uid : (who.gids[0] ?? who.uid) };
}

const absolute = (s: SourceRowC, path: string): string => (path === '.' ? s.path : posix.join(s.path, path));

export function registerPortalRoutes(app: App, server: ProtectionServer): void {
  const tags = ['portal'];
  const dirSources = (): SourceRowC[] => server.sourcesFor().filter((s) => HAS_USER_FILES.has(s.kind));
  /** undefined for an administrator: no filter */
  const principal = (req: AnyRequest): { who: Principal | undefined; name: string } => {
    const s = requireSession(server, req);
    return { who: s.user.role === 'admin' ? undefined : { uid: s.user.uid, gids: s.user.gids }, name: s.user.name };
  };
  const notFound = (source: string, path: string): HoldfastError => new HoldfastError('PATH_NOT_FOUND', `no version of '${path}' in source '${source}' that you may read`, { path });
  /** The versions the caller may read; none at all is answered as not found (nothing leaks). */
  const readable = async (who: Principal | undefined, source: string, path: string): Promise<{ s: SourceRowC; versions: PointVersion[] }> => {
    const s = server.db.source(source);
    if (!s || !HAS_USER_FILES.has(s.kind)) throw notFound(source, path);
    const versions = await server.web.versions.pointVersions(source, pointPath(path), who);
    if (versions.length === 0) throw notFound(source, path);
    return { s, versions };
  };

  app.get('/api/v1/portal/search', { schema: { tags, querystring: Type.Object({ q: Type.String({ minLength: 1, maxLength: 256 }) }) } }, async (req) => {
    const { who } = principal(req);
    const sources = dirSources();
    let text = req.query.q.trim();
    // An absolute path on a protected host becomes a path inside the source that holds it.
    for (const s of sources) if (text.startsWith(`${s.path}/`)) text = text.slice(s.path.length + 1);
    if (text.startsWith('/')) text = text.slice(1);
    if (text === '') throw new HoldfastError('BAD_ARGUMENT', 'search for a file name or a path');
    const found = await server.web.versions.search(sources.map((s) => s.name), text, who, 50);
    return found.map((f) => {
      const s = sources.find((x) => x.name === f.source) as SourceRowC;
      const last = f.versions[f.versions.length - 1] as PointVersion;
      return { source: f.source, path: f.path, absPath: absolute(s, f.path), type: last.type, size: last.size, latest: last.time, versions: f.versions.length, changes: f.versions.filter((v) => v.changed).length };
    });
  });

  app.get('/api/v1/portal/versions', { schema: { tags, querystring: Type.Object({ source: SourceName, path: PathQ }) } }, async (req) => {
    const { who } = principal(req);
    const { s, versions } = await readable(who, req.query.source, req.query.path);
    return { source: s.name, path: pointPath(req.query.path), absPath: absolute(s, pointPath(req.query.path)), versions };
  });

  app.get('/api/v1/portal/download', { schema: { tags, querystring: Type.Object({ source: SourceName, path: PathQ, point: PointId }) } }, async (req, reply) => {
    const { who } = principal(req);
    const { versions } = await readable(who, req.query.source, req.query.path);
    const v = versions.find((x) => x.point === req.query.point);
    if (!v) throw notFound(req.query.source, req.query.path);
    if (v.type !== 'file' && v.type !== 'hardlink') throw new HoldfastError('BAD_ARGUMENT', `'${req.query.path}' is a ${v.type}, not a file`);
    const p = requirePoint(server, v.point);
    const e = await findEntry(server.pool.reader, p, req.query.path);
    void reply.header('content-type', 'application/octet-stream').header('content-disposition', attachmentName(baseName(e.path))).header('content-length', String(v.size));
    return reply.send(fileStream(server.pool.reader, e));
  });

  app.post(
    '/api/v1/portal/restore',
    { schema: { tags, body: Type.Object({ source: SourceName, path: PathQ, point: PointId }, { additionalProperties: false }) } },
    async (req, reply) => {
      const { who, name } = principal(req);
      const { s, versions } = await readable(who, req.body.source, req.body.path);
      const v = versions.find((x) => x.point === req.body.point);
      if (!v) throw notFound(req.body.source, req.body.path);
      if (v.type !== 'file' && v.type !== 'hardlink' && v.type !== 'symlink') throw new HoldfastError('BAD_ARGUMENT', `only files are restored from the portal; '${req.body.path}' is a ${v.type}`);
      const path = pointPath(req.body.path);
      const agent = server.agentById(s.agentId);
      if (!agent) throw new HoldfastError('CONFLICT', `the host of source '${s.name}' is no longer protected`);
      const parent = posix.dirname(path);
      if (who && !(await server.web.versions.canCreateIn(s.name, parent, who))) {
        throw new HoldfastError('FORBIDDEN', `you may not create files in '${absolute(s, parent)}' (as of the newest recovery point of '${s.name}'); download the version instead`, { path: parent });
      }
      const target = posix.dirname(absolute(s, path));
      const rename = restoredName(baseName(path), new Date(v.time));
      const owner = who && who.uid !== v.uid ? copyOwner(who, v.gid) : undefined;
      const job = server.queue.enqueue('restore', s.name, agent.id, { point: v.point, target, subPath: path, overwrite: false, rename, ...(owner ? { owner } : {}) }, `portal:${name}`);
      void reply.status(202);
      return { job: job.id, state: job.state, restoredAs: posix.join(target, rename) };
    },
  );

  app.get('/api/v1/portal/jobs/:id', { schema: { tags, params: Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{16}$' }) }) } }, (req) => {
    const { name } = principal(req);
    const j = server.db.job(req.params.id);
    // Users follow only the restores they started.
    if (!j || j.origin !== `portal:${name}`) throw new HoldfastError('NOT_FOUND', `no job ${req.params.id} of yours`);
    return { id: j.id, state: j.state, error: j.error, restoredAs: posix.join(String(j.params.target), String(j.params.rename)), progress: j.progress };
  });
}
