/** Administrator routes for console and portal accounts: list, create, set a password, delete. */
import { Type } from '@sinclair/typebox';
import { HoldfastError } from '../../core/errors.js';
import { requireAdmin, type App } from '../http-app.js';
import type { FastifyRequest } from 'fastify';
import type { ProtectionServer } from '../protection-server.js';
import { randomPassword } from '../password.js';
import { userView } from '../web-accounts.js';

const UserName = Type.String({ minLength: 1, maxLength: 32 });
const Id = Type.Integer({ minimum: 0, maximum: 0xfffffffe });

export function registerUsersRoutes(app: App, server: ProtectionServer): void {
  const tags = ['users'];
  const security = [{ admin: [] }];
  // The admin hook covers /api/v1/users already; checking here too keeps these safe if that hook changes.
  const onRequest = (req: FastifyRequest, _reply: unknown, done: (err?: Error) => void): void => {
    try {
      requireAdmin(server, req);
      done();
    } catch (err) {
      done(err as Error);
    }
  };

  app.get('/api/v1/users', { onRequest, schema: { tags, security } }, () => server.web.accounts.users().map(userView));

  app.post(
    '/api/v1/users',
    {
      onRequest,
      schema: {
        tags, security,
        body: Type.Object(
          {
            name: UserName,
            role: Type.Optional(Type.Union([Type.Literal('admin'), Type.Literal('user')])),
            uid: Type.Optional(Id),
            gids: Type.Optional(Type.Array(Id, { maxItems: 256 })),
            password: Type.Optional(Type.String({ minLength: 8, maxLength: 1024 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => {
      const b = req.body;
      const role = b.role ?? 'user';
      if (role === 'user' && b.uid === undefined) throw new HoldfastError('BAD_ARGUMENT', `user '${b.name}' needs a uid (the account's uid on the protected hosts)`);
      const password = b.password ?? randomPassword();
      const u = await server.web.accounts.addUser({ name: b.name, role, uid: b.uid ?? 0, gids: b.gids ?? [], password });
      void reply.status(201);
      return { ...userView(u), ...(b.password === undefined ? { password } : {}) };
    },
  );

  app.put(
    '/api/v1/users/:name/password',
    { onRequest, schema: { tags, security, params: Type.Object({ name: UserName }), body: Type.Object({ password: Type.String({ minLength: 8, maxLength: 1024 }) }, { additionalProperties: false }) } },
    async (req) => {
      await server.web.accounts.setPassword(req.params.name, req.body.password);
      return { ok: true };
    },
  );

  app.delete('/api/v1/users/:name', { onRequest, schema: { tags, security, params: Type.Object({ name: UserName }) } }, (req) => {
    server.web.accounts.deleteUser(req.params.name);
    return { ok: true };
  });
}
