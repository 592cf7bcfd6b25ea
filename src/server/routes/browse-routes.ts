/**
 * Administrator routes for the console's restore wizard and storage page: list one directory of
 * a recovery point, download one file of it (verified chunks, streamed), a directory or several chosen entries as a tar, every version of a path,
 * search the file-version index, and the pool usage samples.
 */
import { Type } from '@sinclair/typebox';
import { HoldfastError } from '../../core/errors.js';
import { baseName } from '../../core/entry-path.js';
import { requireAdmin, type App } from '../http-app.js';
import type { FastifyRequest } from 'fastify';
import type { ProtectionServer } from '../protection-server.js';
import { findEntry, fileStream, listDirectory, pointPath } from '../browse.js';
import { directoryTar, selectionTar } from '../browse-tar.js';
import type { PointRow } from '../../pool/catalog.js';

const PointId = Type.String({ pattern: '^[0-9a-f]{4,64}$' });
const PathQ = Type.String({ maxLength: 4096 });

export function attachmentName(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

export function requirePoint(server: ProtectionServer, id: string): PointRow {
  const p = server.pool.catalog.point(id);
  if (!p) throw new HoldfastError('POINT_NOT_FOUND', `no recovery point ${id}`, { point: id });
  return p;
}

export function registerBrowseRoutes(app: App, server: ProtectionServer): void {
  const tags = ['browse'];
  const security = [{ admin: [] }];
  const onRequest = (req: FastifyRequest, _reply: unknown, done: (err?: Error) => void): void => {
    try {
      requireAdmin(server, req);
      done();
    } catch (err) {
      done(err as Error);
    }
  };

  app.get('/api/v1/points/:id/browse', { onRequest, schema: { tags, security, params: Type.Object({ id: PointId }), querystring: Type.Object({ path: Type.Optional(PathQ) }) } }, async (req) => {
    const p = requirePoint(server, req.params.id);
    if (p.kind !== 'dir') throw new HoldfastError('KIND_MISMATCH', `recovery point ${p.id} is of an image source; there is no tree to browse`);
    return { point: p.id, source: p.source, time: p.time, ...(await listDirectory(server.pool.reader, p, req.query.path ?? '')) };
  });

  const download = { path: Type.Array(PathQ, { minItems: 1, maxItems: 1000, description: 'a file (its bytes), a directory (a tar), or several paths (one tar of them all, each under its own name)' }) };
  app.get('/api/v1/points/:id/download', { onRequest, schema: { tags, security, params: Type.Object({ id: PointId }), querystring: Type.Object(download) } }, async (req, reply) => {
    const p = requirePoint(server, req.params.id);
    const paths = req.query.path;
    if (paths.length > 1) {
      const tar = await selectionTar(server.pool.reader, p, paths);
      return reply.header('content-type', 'application/x-tar').header('content-disposition', attachmentName(tar.name)).send(tar.stream);
    }
    const path = paths[0] as string;
    const e = await findEntry(server.pool.reader, p, path);
    if (e.type === 'dir') {
      const tar = await directoryTar(server.pool.reader, p, path);
      return reply.header('content-type', 'application/x-tar').header('content-disposition', attachmentName(tar.name)).send(tar.stream);
    }
    const body = fileStream(server.pool.reader, e);
    void reply.header('content-type', 'application/octet-stream').header('content-disposition', attachmentName(baseName(e.path) || p.source));
    if ('size' in e) void reply.header('content-length', String(e.size));
    return reply.send(body);
  });

  app.get('/api/v1/sources/:name/versions', { onRequest, schema: { tags, security, params: Type.Object({ name: Type.String({ maxLength: 63 }) }), querystring: Type.Object({ path: PathQ }) } }, async (req) => {
    server.requireSource(req.params.name);
    return server.web.versions.pointVersions(req.params.name, pointPath(req.query.path));
  });

  app.get('/api/v1/search', { onRequest, schema: { tags, security, querystring: Type.Object({ q: Type.String({ minLength: 1, maxLength: 256 }) }) } }, async (req) => {
    const sources = server.sourcesFor().filter((s) => s.kind === 'dir').map((s) => s.name);
    return server.web.versions.search(sources, req.query.q, undefined, 100);
  });

  app.get('/api/v1/usage/samples', { onRequest, schema: { tags, security, querystring: Type.Object({ since: Type.Optional(Type.String({ maxLength: 40 })) }) } }, async (req) => {
    return { samples: server.web.usage.samples(req.query.since), now: await server.web.usage.measure() };
  });
}
