/**
 * Recoverability drills: the administrator asks for one and reads the results (the admin hook in
 * admin-routes.ts checks the token); the agent reports what its drill found (its certificate is
 * checked by the agent hook in agent-routes.ts, and the job must be its own, running, drill).
 */
import { Type } from '@sinclair/typebox';
import { ATTEMPT_HEADER, DrillReport } from '../../core/protocol.js';
import { HoldfastError } from '../../core/errors.js';
import type { App } from '../http-app.js';
import type { ProtectionServer } from '../protection-server.js';
import { jobView } from './admin-routes.js';

const Name = Type.String({ minLength: 1, maxLength: 63 });

export function registerDrillRoutes(app: App, server: ProtectionServer): void {
  const tags = ['drills'];
  const security = [{ admin: [] }];
  const d = server.drills;

  app.post(
    '/api/v1/sources/:name/drill',
    {
      schema: {
        tags, security, params: Type.Object({ name: Name }),
        body: Type.Object(
          {
            at: Type.Optional(Type.String({ maxLength: 64 })),
            point: Type.Optional(Type.String({ maxLength: 64 })),
            check: Type.Optional(Type.Union([Type.Literal('postgres'), Type.Literal('sqlite'), Type.Literal('bytes')], { description: "a directory or btrfs source holding a PostgreSQL cluster or SQLite files: check it as one" })),
          },
          { additionalProperties: false },
        ),
      },
    },
    (req, reply) => {
      void reply.status(202);
      return jobView(d.request(req.params.name, { at: req.body.at, point: req.body.point, check: req.body.check, origin: 'manual' }));
    },
  );

  app.get(
    '/api/v1/sources/:name/drills',
    { schema: { tags, security, params: Type.Object({ name: Name }), querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) }) } },
    (req) => {
      server.requireSource(req.params.name);
      return d.list({ source: req.params.name, limit: req.query.limit }).map((r) => d.view(r));
    },
  );

  app.get('/api/v1/drills', { schema: { tags, security, querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) }) } }, (req) =>
    d.list({ limit: req.query.limit }).map((r) => d.view(r)),
  );

  app.post('/api/v1/agent/jobs/:id/complete-drill', { schema: { tags: ['agent'], params: Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{16}$' }) }), body: DrillReport } }, (req) => {
    const job = server.runningJob(req.agentId as string, req.params.id, req.headers[ATTEMPT_HEADER]);
    if (job.type !== 'drill') throw new HoldfastError('CONFLICT', `job ${job.id} is a ${job.type}, not a drill`);
    return d.complete(job, req.body);
  });
}
