/** Routes for the administrator (bearer token): agents, join tokens, groups, sources, syncs, restores, jobs, alerts, settings. */
import { Type, type TSchema } from '@sinclair/typebox';
import { HoldfastError } from '../../core/errors.js';
import { parseDuration, parseSize } from '../../core/units.js';
import { requireAdmin, type App } from '../http-app.js';
import { SourceKindSchema, SourceOptions } from '../../core/protocol.js';
import type { ProtectionServer } from '../protection-server.js';
import type { GroupRow, JobRow } from '../control-db.js';
import { GroupPolicies } from '../group-policy.js';
import { Drills } from '../drills.js';

const Name = Type.String({ minLength: 1, maxLength: 63 });
const TIME = /^([01]\d|2[0-3]):[0-5]\d$/;

export function parseThrottle(text: string): number {
  const n = parseSize(text.replace(/\/s$/i, ''));
  if (n <= 0) throw new HoldfastError('BAD_ARGUMENT', `throttle '${text}' must be more than zero`);
  return n;
}

const optionalDuration = (t: string): number | null => (t === 'off' ? null : parseDuration(t));
const optionalThrottle = (t: string): number | null => (t === 'off' ? null : parseThrottle(t));

function parsePoints(times: string[]): string[] {
  for (const t of times) if (!TIME.test(t)) throw new HoldfastError('BAD_ARGUMENT', `recovery point time '${t}' is not HH:MM (24-hour)`);
  return [...new Set(times)].sort();
}

export function groupView(g: GroupRow): Record<string, unknown> {
  return { name: g.name, syncEveryMs: g.syncEveryMs, points: g.points, retainMs: g.retainMs, compress: g.compress, throttleBps: g.throttleBps, created: g.created };
}

export function jobView(j: JobRow): Record<string, unknown> {
  return {
    id: j.id, type: j.type, source: j.source, agent: j.agentId, state: j.state, origin: j.origin, attempt: j.attempt, params: j.params,
    progress: j.progress, result: j.result, error: j.error, created: j.created, started: j.started, finished: j.finished, retryOf: j.retryOf, notBefore: j.notBefore,
  };
}

/** Long-term keep rules beyond the retention range (group-policy.ts); 0 clears one. */
function keepFields() {
  const n = Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 }));
  return { keepLast: n, keepHourly: n, keepDaily: n, keepWeekly: n, keepMonthly: n, keepYearly: n };
}

/**
 * SourceOptions for an edit: each option may also be null (removed). Null comes first: the
 * server's type coercion would otherwise turn a null into '' for a string option.
 */
const P = SourceOptions.properties;
const orNull = <T extends TSchema>(t: T) => Type.Optional(Type.Union([Type.Null(), t]));
const SourceOptionsPatchSchema = Type.Object(
  {
    tracker: orNull(P.tracker), qemu: orNull(P.qemu), snapshotDir: orNull(P.snapshotDir), preSnapshot: orNull(P.preSnapshot), postSnapshot: orNull(P.postSnapshot),
    timeoutMs: orNull(P.timeoutMs), fsfreeze: orNull(P.fsfreeze), postgres: orNull(P.postgres), sqlite: orNull(P.sqlite),
  } satisfies Record<keyof SourceOptions, TSchema>, // every option, or this does not compile
  { additionalProperties: false },
);

const GroupBody = Type.Object(
  {
    name: Name,
    syncEvery: Type.Optional(Type.String({ maxLength: 32, description: "a duration such as 15m, or 'off' (recovery point times only)" })),
    points: Type.Optional(Type.Array(Type.String({ maxLength: 5 }), { maxItems: 48 })),
    retain: Type.Optional(Type.String({ maxLength: 32 })),
    compress: Type.Optional(Type.Boolean()),
    throttle: Type.Optional(Type.String({ maxLength: 32, description: "a rate such as 20MiB/s, or 'off'" })),
    ...keepFields(),
    quotaFactor: Type.Optional(Type.Number({ description: "each source's quota is DPM 2007's default allocation times this" })),
    quota: Type.Optional(Type.String({ maxLength: 32, description: "an explicit quota per source, such as 50GiB, or 'default'" })),
    drillSchedule: Type.Optional(Type.String({ maxLength: 200, description: "recoverability drills: times of day (03:30[,15:30]), an interval (7d), or 'off'" })),
    drillQuery: Type.Optional(Type.String({ maxLength: 8192, description: "a query a drill's check runs as well ('' clears)" })),
  },
  { additionalProperties: false },
);

export function registerAdminRoutes(app: App, server: ProtectionServer): void {
  app.addHook('onRequest', (req, _reply, done) => {
    const url = req.url;
    if (url.startsWith('/api/v1/agent/') || url === '/api/v1/ca' || url === '/api/v1/health' || url === '/api/v1/join' || url.startsWith('/api/openapi.json')) return done();
    if (url === '/api/v1/session' || url.startsWith('/api/v1/portal/')) return done(); // their own session check (routes/web-routes.ts, portal-routes.ts)
    try {
      if (url.startsWith('/api/')) requireAdmin(server, req);
      done();
    } catch (err) {
      done(err as Error);
    }
  });
  const tags = ['admin'];
  const security = [{ admin: [] }];

  app.get('/api/v1/agents', { schema: { tags, security } }, () =>
    server.db.agents().map((a) => ({
      id: a.id, name: a.name, hostname: a.hostname, status: server.agentStatus(a), lastSeen: a.lastSeen, version: a.version, created: a.created,
      sources: server.sourcesFor(a.id).map((s) => s.name),
    })),
  );

  app.post('/api/v1/agents/:name/revoke', { schema: { tags, security, params: Type.Object({ name: Name }) } }, (req) => {
    const a = server.revoke(req.params.name);
    return { id: a.id, name: a.name, status: 'revoked' };
  });

  app.post(
    '/api/v1/agent-tokens',
    { schema: { tags, security, body: Type.Object({ expires: Type.Optional(Type.String({ maxLength: 32 })), name: Type.Optional(Name) }, { additionalProperties: false }) } },
    (req) => server.createJoinToken(parseDuration(req.body.expires ?? '1h'), req.body.name),
  );

  const policies = server.maintenance.policies;
  const viewOf = (g: GroupRow): Record<string, unknown> => ({ ...groupView(g), ...policies.view(g.name), ...server.drills.groupView(g.name) });
  app.get('/api/v1/groups', { schema: { tags, security } }, () => server.db.groups().map(viewOf));

  app.post('/api/v1/groups', { schema: { tags, security, body: GroupBody } }, (req, reply) => {
    const b = req.body;
    GroupPolicies.check(b);
    Drills.check(b);
    const g = server.createGroup({
      name: b.name,
      syncEveryMs: optionalDuration(b.syncEvery ?? '15m'),
      points: parsePoints(b.points ?? []),
      retainMs: parseDuration(b.retain ?? '14d'),
      compress: b.compress ?? true,
      throttleBps: optionalThrottle(b.throttle ?? 'off'),
    });
    policies.update(g.name, b);
    server.drills.updatePolicy(g.name, b);
    void reply.status(201);
    return viewOf(g);
  });

  app.patch('/api/v1/groups/:name', { schema: { tags, security, params: Type.Object({ name: Name }), body: Type.Partial(Type.Omit(GroupBody, ['name'])) } }, (req) => {
    const g = server.requireGroup(req.params.name);
    const b = req.body;
    const next: GroupRow = {
      ...g,
      syncEveryMs: b.syncEvery === undefined ? g.syncEveryMs : optionalDuration(b.syncEvery),
      points: b.points === undefined ? g.points : parsePoints(b.points),
      retainMs: b.retain === undefined ? g.retainMs : parseDuration(b.retain),
      compress: b.compress ?? g.compress,
      throttleBps: b.throttle === undefined ? g.throttleBps : optionalThrottle(b.throttle),
    };
    GroupPolicies.check(b);
    Drills.check(b);
    server.db.updateGroup(next);
    policies.update(g.name, b);
    server.drills.updatePolicy(g.name, b);
    return viewOf(next);
  });

  app.get('/api/v1/sources', { schema: { tags, security } }, () => server.sourcesFor().map((s) => server.sourceView(s)));

  app.get('/api/v1/sources/:name', { schema: { tags, security, params: Type.Object({ name: Name }) } }, (req) => server.sourceView(server.requireSource(req.params.name)));

  app.post(
    '/api/v1/sources',
    {
      schema: {
        tags, security,
        body: Type.Object(
          { name: Name, group: Name, agent: Name, kind: SourceKindSchema, path: Type.String({ minLength: 1, maxLength: 4096 }), options: Type.Optional(SourceOptions) },
          { additionalProperties: false },
        ),
      },
    },
    (req, reply) => {
      const s = server.addSource(req.body);
      void reply.status(201);
      return server.sourceView(s);
    },
  );

  app.patch(
    '/api/v1/sources/:name',
    {
      schema: {
        tags, security, params: Type.Object({ name: Name }),
        description: "move a source to another group and/or change its options (a given option replaces it, null removes it); name, agent, kind and path stay",
        body: Type.Object({ group: Type.Optional(Name), options: Type.Optional(SourceOptionsPatchSchema) }, { additionalProperties: false }),
      },
    },
    (req) => server.sourceView(server.editSource(req.params.name, req.body)),
  );

  app.post(
    '/api/v1/sources/:name/sync',
    {
      schema: { tags, security, params: Type.Object({ name: Name }), description: 'optional JSON body: {"check": "light" | "heavy"} for a consistency check' },
    },
    (req, reply) => {
      // The body is optional (a plain sync has none), so it is checked here rather than by a schema.
      const check = (req.body as { check?: unknown } | null | undefined)?.check;
      if (check !== undefined && check !== 'light' && check !== 'heavy') throw new HoldfastError('BAD_ARGUMENT', `check must be 'light' or 'heavy', not ${JSON.stringify(check)}`);
      void reply.status(202);
      return jobView(server.requestSync(req.params.name, 'manual', check));
    },
  );

  app.get('/api/v1/sources/:name/points', { schema: { tags, security, params: Type.Object({ name: Name }) } }, (req) => {
    const points = server.points(req.params.name);
    // the last verify's result per point (null: not verified since it was committed)
    const verified = new Map(server.pool.catalog.verifications().map((v) => [v.point, { time: v.time, full: v.full, ok: v.ok, detail: v.detail }]));
    const drilled = server.drills.latestByPoint(req.params.name);
    return points.map((p) => ({
      id: p.id, source: p.source, time: p.time, kind: p.kind, logicalBytes: p.logicalBytes, files: p.files, readBytes: p.readBytes,
      newBytes: p.newBytes, storedNewBytes: p.storedNewBytes, durationMs: p.durationMs, parent: p.parent, torn: p.torn,
      pinned: p.pinned === true, verified: verified.get(p.id) ?? null, drill: server.drills.brief(drilled.get(p.id)),
    }));
  });

  app.post(
    '/api/v1/restores',
    {
      schema: {
        tags, security,
        body: Type.Object(
          {
            source: Name,
            point: Type.Optional(Type.String({ maxLength: 64 })),
            at: Type.Optional(Type.String({ maxLength: 64 })),
            /** database sources: recover as far as the shipped logs go */
            latest: Type.Optional(Type.Boolean()),
            /** database sources: start the database after preparing it (default true), on this port */
            start: Type.Optional(Type.Boolean()),
            port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
            path: Type.Optional(Type.String({ maxLength: 4096 })),
            /** several entries, each placed in `to` under its own name, in one job (instead of path) */
            paths: Type.Optional(Type.Array(Type.String({ maxLength: 4096 }), { minItems: 1, maxItems: 1000 })),
            to: Type.String({ minLength: 1, maxLength: 4096 }),
            agent: Type.Optional(Name),
            overwrite: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
      },
    },
    (req, reply) => {
      if (req.body.point && req.body.at) throw new HoldfastError('BAD_ARGUMENT', 'give point or at, not both');
      void reply.status(202);
      return jobView(server.requestRestore({ ...req.body, overwrite: req.body.overwrite === true }));
    },
  );

  app.get(
    '/api/v1/jobs',
    {
      schema: {
        tags, security,
        querystring: Type.Object({
          state: Type.Optional(Type.Union(['queued', 'running', 'succeeded', 'failed', 'cancelled'].map((s) => Type.Literal(s)))),
          source: Type.Optional(Name),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
        }),
      },
    },
    (req) => server.db.jobs({ state: req.query.state as JobRow['state'] | undefined, source: req.query.source, limit: req.query.limit }).map(jobView),
  );

  app.get('/api/v1/jobs/:id', { schema: { tags, security, params: Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{16}$' }) }) } }, (req) => {
    const j = server.db.job(req.params.id);
    if (!j) throw new HoldfastError('NOT_FOUND', `no job ${req.params.id}`, { job: req.params.id });
    return jobView(j);
  });

  app.get(
    '/api/v1/alerts',
    { schema: { tags, security, querystring: Type.Object({ state: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('resolved')])) }) } },
    (req) => server.db.alerts({ state: req.query.state }),
  );

  app.get('/api/v1/settings', { schema: { tags, security } }, () => ({ webhook: server.db.setting('webhook') ?? null }));

  app.put(
    '/api/v1/settings',
    { schema: { tags, security, body: Type.Object({ webhook: Type.String({ maxLength: 2048, description: "an http(s) URL, or 'off'" }) }, { additionalProperties: false }) } },
    (req) => {
      const url = req.body.webhook;
      if (url !== 'off' && !/^https?:\/\/\S+$/.test(url)) throw new HoldfastError('BAD_ARGUMENT', `webhook '${url}' is not an http(s) URL (or 'off')`);
      server.db.setSetting('webhook', url === 'off' ? '' : url);
      return { webhook: url === 'off' ? null : url };
    },
  );
}
