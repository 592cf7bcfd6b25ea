/**
 * Routes for storage maintenance (administrator; the admin hook in admin-routes.ts checks the
 * token): prune by group policy, gc and verify as background tasks, storage allocation, and
 * deleting or pinning one recovery point.
 */
import { Type } from '@sinclair/typebox';
import { parseDuration } from '../../core/units.js';
import { deletePoint, setPinned } from '../../pool/point-admin.js';
import type { App } from '../http-app.js';
import type { ProtectionServer } from '../protection-server.js';

const Name = Type.String({ minLength: 1, maxLength: 63 });
const PointId = Type.String({ minLength: 1, maxLength: 64 });
const TaskId = Type.String({ pattern: '^[0-9a-f]{16}$' });

export function registerStorageRoutes(app: App, server: ProtectionServer): void {
  const tags = ['storage'];
  const security = [{ admin: [] }];
  const m = server.maintenance;

  app.post(
    '/api/v1/prune',
    { schema: { tags, security, body: Type.Object({ group: Type.Optional(Name), dryRun: Type.Optional(Type.Boolean()) }, { additionalProperties: false }) } },
    (req) => m.prune({ group: req.body.group, dryRun: req.body.dryRun === true, origin: 'manual' }),
  );

  app.post(
    '/api/v1/gc',
    {
      schema: {
        tags, security,
        body: Type.Object({ dryRun: Type.Optional(Type.Boolean()), repackBelow: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })) }, { additionalProperties: false }),
      },
    },
    (req, reply) => {
      void reply.status(202);
      return m.startGc({ dryRun: req.body.dryRun, repackBelow: req.body.repackBelow, origin: 'manual' });
    },
  );

  app.post(
    '/api/v1/verify',
    {
      schema: {
        tags, security,
        body: Type.Object(
          { full: Type.Optional(Type.Boolean()), olderThan: Type.Optional(Type.String({ maxLength: 32, description: 'with full: re-hash only packs not re-hashed within this span, e.g. 7d' })) },
          { additionalProperties: false },
        ),
      },
    },
    (req, reply) => {
      const olderThanMs = req.body.olderThan === undefined ? undefined : parseDuration(req.body.olderThan);
      void reply.status(202);
      return m.startVerify({ full: req.body.full === true, olderThanMs, origin: 'manual' });
    },
  );

  app.get('/api/v1/maintenance', { schema: { tags, security } }, () => m.status());

  app.get('/api/v1/maintenance/tasks/:id', { schema: { tags, security, params: Type.Object({ id: TaskId }) } }, (req) => m.task(req.params.id));

  app.get('/api/v1/usage', { schema: { tags, security } }, () => m.storage());

  app.delete('/api/v1/sources/:name/points/:id', { schema: { tags, security, params: Type.Object({ name: Name, id: PointId }) } }, async (req) => {
    server.requireSource(req.params.name);
    const p = await deletePoint(server.pool, req.params.name, req.params.id);
    return { deleted: p.id, source: p.source, time: p.time };
  });

  for (const pin of [true, false]) {
    app.post(`/api/v1/sources/:name/points/:id/${pin ? 'pin' : 'unpin'}`, { schema: { tags, security, params: Type.Object({ name: Name, id: PointId }) } }, async (req) => {
      server.requireSource(req.params.name);
      const p = await setPinned(server.pool, req.params.name, req.params.id, pin);
      return { point: p.id, source: p.source, pinned: pin };
    });
  }
}
