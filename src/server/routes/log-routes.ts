/**
 * Log shipping: an agent posts one log record of one of its database sources (agent TLS, checked
 * by the agent routes' hook); the answer comes once the record is durable. The administrator lists
 * a source's chain.
 */
import { Type } from '@sinclair/typebox';
import { HoldfastError } from '../../core/errors.js';
import { LogKindSchema } from '../../core/protocol.js';
import type { App } from '../http-app.js';
import type { ProtectionServer } from '../protection-server.js';
import { receiveLog } from '../log-receiver.js';

const Name = Type.String({ minLength: 1, maxLength: 63 });
/** WAL segment and history file names, SQLite frame-run names: no path separators */
const LogName = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$' });
/** log bodies received or verified at once, all agents together */
const MAX_LOG_UPLOADS = 8;

export function registerLogRoutes(app: App, server: ProtectionServer): void {
  let uploads = 0;
  const counted = new WeakSet<object>();
  const release = (req: object): void => {
    if (counted.delete(req)) uploads--;
  };
  app.post(
    '/api/v1/agent/logs/:source',
    {
      schema: {
        tags: ['agent'],
        params: Type.Object({ source: Name }),
        querystring: Type.Object({ name: LogName, kind: LogKindSchema, meta: Type.Optional(Type.String({ maxLength: 16384 })) }),
      },
      bodyLimit: 40 * 1024 * 1024,
      onRequest: (req, reply, done) => {
        if (uploads >= MAX_LOG_UPLOADS) return done(new HoldfastError('BUSY', `the server is receiving ${uploads} logs; try again shortly`));
        uploads++;
        counted.add(req);
        // The response's close comes in every case (sent, failed, or the connection cut before an
        // answer), so a slot is never lost: an upload that went away without one (onResponse
        // never runs) kept its slot, and after eight of them every log upload was BUSY forever.
        reply.raw.once('close', () => release(req));
        done();
      },
      onResponse: (req, _reply, done) => {
        release(req);
        done();
      },
      onRequestAbort: (req, done) => {
        release(req);
        done();
      },
    },
    async (req) => {
      if (!Buffer.isBuffer(req.body)) throw new HoldfastError('BAD_ARGUMENT', 'log uploads are application/octet-stream (chunk frames)');
      let meta: unknown = {};
      try {
        meta = req.query.meta === undefined ? {} : JSON.parse(req.query.meta);
      } catch {
        throw new HoldfastError('BAD_ARGUMENT', 'meta is not JSON');
      }
      if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) throw new HoldfastError('BAD_ARGUMENT', 'meta must be a JSON object');
      return receiveLog(server, req.agentId as string, req.params.source, { name: req.query.name, kind: req.query.kind, meta: meta as Record<string, unknown> }, req.body);
    },
  );

  app.get('/api/v1/sources/:name/logs', { schema: { tags: ['admin'], security: [{ admin: [] }], params: Type.Object({ name: Name }) } }, (req) => {
    server.requireSource(req.params.name);
    return server.pool.catalog.logs(req.params.name).map((l) => ({ name: l.name, seq: l.seq, kind: l.kind, time: l.time, bytes: l.bytes }));
  });
}
