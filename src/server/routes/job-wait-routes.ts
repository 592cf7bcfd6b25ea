/**
 * Waiting for a job without polling: `GET /api/v1/jobs/:id/wait?timeout=S` answers as soon as the
 * job has ended, or after S seconds with its current state (progress), whichever comes first.
 * `holdfast sync --wait` uses it, so a sync that takes 100 ms is reported done in about 100 ms,
 * not at the next half-second poll. The admin hook in admin-routes.ts checks the token.
 */
import { Type } from '@sinclair/typebox';
import { HoldfastError } from '../../core/errors.js';
import type { App } from '../http-app.js';
import type { ProtectionServer } from '../protection-server.js';
import { jobView } from './admin-routes.js';

export function registerJobWaitRoutes(app: App, server: ProtectionServer): void {
  app.get(
    '/api/v1/jobs/:id/wait',
    {
      schema: {
        tags: ['jobs'],
        security: [{ admin: [] }],
        params: Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{16}$' }) }),
        querystring: Type.Object({ timeout: Type.Optional(Type.Number({ minimum: 0, maximum: 60 })) }),
      },
    },
    async (req) => {
      const id = req.params.id;
      const open = (): boolean => {
        const j = server.db.job(id);
        if (!j) throw new HoldfastError('NOT_FOUND', `no job ${id}`, { job: id });
        return j.state === 'queued' || j.state === 'running';
      };
      if (open()) {
        const gone = new AbortController();
        req.raw.once('close', () => gone.abort());
        await server.queue.whenEnded(id, (req.query.timeout ?? 20) * 1000, gone.signal);
      }
      const j = server.db.job(id);
      if (!j) throw new HoldfastError('NOT_FOUND', `no job ${id}`, { job: id });
      return jobView(j);
    },
  );
}
