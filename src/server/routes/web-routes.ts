/**
 * The web console and portal: the built single-page app (dist/web, from web/ by Vite) at /,
 * security headers on every response, and the session routes (sign in, who am I, sign out).
 * Registered before the other routes: its cookie parser must run before the admin check.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import cookie from '@fastify/cookie';
import fastifyStatic from '@fastify/static';
import { Type } from '@sinclair/typebox';
import { HoldfastError } from '../../core/errors.js';
import type { App } from '../http-app.js';
import type { ProtectionServer } from '../protection-server.js';
import { checkOrigin, clearSessionCookie, requireSession, sessionCookieValue, setSessionCookie } from '../web-auth.js';
import { userView } from '../web-accounts.js';
import { registerUsersRoutes } from './users-routes.js';
import { registerBrowseRoutes } from './browse-routes.js';
import { registerPortalRoutes } from './portal-routes.js';

/** dist/web beside dist/src (this file is dist/src/server/routes/web-routes.js once built). */
export const WEB_ROOT = fileURLToPath(new URL('../../../web/', import.meta.url));

const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

export async function registerWebRoutes(app: App, server: ProtectionServer): Promise<void> {
  await app.register(cookie);
  app.addHook('onSend', async (req, reply, payload) => {
    void reply.header('x-content-type-options', 'nosniff');
    void reply.header('referrer-policy', 'no-referrer');
    void reply.header('x-frame-options', 'DENY');
    if (!req.url.startsWith('/api/')) void reply.header('content-security-policy', CSP);
    else void reply.header('cache-control', 'no-store');
    return payload;
  });

  if (existsSync(`${WEB_ROOT}index.html`)) {
    await app.register(fastifyStatic, { root: WEB_ROOT, prefix: '/', wildcard: false, index: 'index.html', schemaHide: true } as never);
  } else {
    app.get('/', { schema: { hide: true } }, (_req, reply) => {
      void reply.type('text/plain').send('The web console is not built: run `npm run build` (it builds web/ into dist/web).\n');
    });
  }

  const tags = ['session'];
  app.post(
    '/api/v1/session',
    { schema: { tags, body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 64 }), password: Type.String({ minLength: 1, maxLength: 1024 }) }, { additionalProperties: false }) } },
    async (req, reply) => {
      checkOrigin(req);
      const { name, password } = req.body;
      const limiter = server.web.limiter;
      limiter.check(req.ip, name);
      const user = await server.web.accounts.checkPassword(name, password);
      if (!user) {
        limiter.failed(req.ip, name);
        throw new HoldfastError('UNAUTHORIZED', 'wrong name or password');
      }
      limiter.succeeded(name);
      const old = sessionCookieValue(req);
      if (old) server.web.accounts.closeSession(old); // a fresh id at each sign-in (no fixation)
      const s = server.web.accounts.openSession(user);
      setSessionCookie(reply, s.id);
      return { user: userView(user), csrf: s.csrf };
    },
  );

  app.get('/api/v1/session', { schema: { tags } }, (req) => {
    const s = requireSession(server, req);
    return { user: userView(s.user), csrf: s.csrf };
  });

  app.delete('/api/v1/session', { schema: { tags } }, (req, reply) => {
    requireSession(server, req);
    const id = sessionCookieValue(req);
    if (id) server.web.accounts.closeSession(id);
    clearSessionCookie(reply);
    return { ok: true };
  });

  registerUsersRoutes(app, server);
  registerBrowseRoutes(app, server);
  registerPortalRoutes(app, server);
}
