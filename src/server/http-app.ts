/**
 * The HTTPS front of the protection server (fastify): TLS with optional client certificates
 * (agents present theirs; administrators send a bearer token), JSON schemas on every route, one
 * error shape ({"error": {"code", "message"}}) and the OpenAPI document at /api/openapi.json.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { TLSSocket } from 'node:tls';
import type { Server as HttpsServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HoldfastError, isHoldfastError } from '../core/errors.js';
import { MAX_FRAMES_BODY } from '../core/protocol.js';
import { readUploadBody } from './upload-body.js';
import { AGENT_CN_PREFIX } from './pki.js';
import type { ProtectionServer } from './protection-server.js';
import { registerAdminRoutes } from './routes/admin-routes.js';
import { registerAgentRoutes } from './routes/agent-routes.js';
import { registerJobWaitRoutes } from './routes/job-wait-routes.js';
import { registerPublicRoutes } from './routes/public-routes.js';
import { registerStorageRoutes } from './routes/storage-routes.js';
import { registerLogRoutes } from './routes/log-routes.js';
import { registerDrillRoutes } from './routes/drill-routes.js';
import { registerWebRoutes } from './routes/web-routes.js';
import { adminSession } from './web-auth.js';

export type App = FastifyInstance<HttpsServer, IncomingMessage, ServerResponse, FastifyBaseLogger, TypeBoxTypeProvider>;

declare module 'fastify' {
  interface FastifyRequest {
    agentId?: string;
  }
}

/** The administrator, from `Authorization: Bearer <secret>` or a console session (with its CSRF token); throws UNAUTHORIZED otherwise. */
export function requireAdmin(server: ProtectionServer, req: FastifyRequest): void {
  const h = req.headers.authorization;
  if (h === undefined && adminSession(server, req)) return;
  const m = h ? /^Bearer ([A-Za-z0-9_-]{16,256})$/.exec(h) : null;
  if (!m || !server.checkAdminToken(m[1] as string)) throw new HoldfastError('UNAUTHORIZED', 'an administrator token is required (Authorization: Bearer …)');
}

const agentOfSocket = new WeakMap<TLSSocket, string>();

/** The agent, from its client certificate (signed by our CA, not revoked); throws otherwise. */
export function requireAgent(server: ProtectionServer, req: FastifyRequest): string {
  const sock = req.raw.socket as TLSSocket;
  if (!sock.authorized) throw new HoldfastError('UNAUTHORIZED', 'an agent certificate issued by this server is required');
  // A connection's certificate does not change: read it once per connection, not per request.
  let id = agentOfSocket.get(sock);
  if (id === undefined) {
    const cn = sock.getPeerCertificate().subject?.CN;
    const cnText = Array.isArray(cn) ? cn[0] : cn;
    if (!cnText?.startsWith(AGENT_CN_PREFIX)) throw new HoldfastError('UNAUTHORIZED', 'the client certificate is not an agent certificate');
    id = cnText.slice(AGENT_CN_PREFIX.length);
    agentOfSocket.set(sock, id);
  }
  if (!server.agentById(id)) throw new HoldfastError('FORBIDDEN', `agent ${id} is unknown or revoked`);
  req.agentId = id;
  server.seen(id);
  return id;
}

export async function buildApp(server: ProtectionServer, logger: FastifyBaseLogger): Promise<App> {
  const app = Fastify({
    loggerInstance: logger,
    https: { key: server.data.tls.key, cert: server.data.tls.cert, ca: [server.data.ca.cert], requestCert: true, rejectUnauthorized: false },
    bodyLimit: 16 * 1024 * 1024,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array' } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // A route's own bodyLimit, else MAX_FRAMES_BODY (above the server's default for JSON).
  app.addContentTypeParser('application/octet-stream', (req: FastifyRequest, payload: IncomingMessage) => readUploadBody(payload, Math.max(req.routeOptions.bodyLimit ?? 0, MAX_FRAMES_BODY)));

  app.setErrorHandler((err, req, reply) => {
    if (isHoldfastError(err)) {
      void reply.status(err.httpStatus).send({ error: { code: err.code, message: err.message } });
      return;
    }
    const e = err as { validation?: unknown; statusCode?: number; code?: string; message: string };
    if (e.validation) {
      void reply.status(400).send({ error: { code: 'BAD_ARGUMENT', message: e.message } });
      return;
    }
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
      void reply.status(e.statusCode).send({ error: { code: e.code ?? 'BAD_REQUEST', message: e.message } });
      return;
    }
    req.log.error({ err }, 'internal error');
    void reply.status(500).send({ error: { code: 'INTERNAL', message: 'internal server error (a bug; see the server log)' } });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: { code: 'NOT_FOUND', message: `no such API route: ${req.method} ${req.url}` } });
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'Holdfast protection server API', version: '1' },
      components: { securitySchemes: { admin: { type: 'http', scheme: 'bearer' }, agent: { type: 'mutualTLS' } as never } },
    },
  });
  registerPublicRoutes(app, server);
  await registerWebRoutes(app, server); // first: its cookie parser must run before the admin check
  registerAdminRoutes(app, server);
  registerAgentRoutes(app, server);
  registerJobWaitRoutes(app, server);
  registerStorageRoutes(app, server);
  registerLogRoutes(app, server);
  registerDrillRoutes(app, server);
  app.get('/api/openapi.json', { schema: { hide: true } }, () => app.swagger());
  return app;
}
