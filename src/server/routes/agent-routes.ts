/**
 * Routes an agent calls with its client certificate: hello, heartbeat, the job long poll, and
 * the data of its running jobs. Every job route checks that the job is this agent's and running.
 */
import { Type } from '@sinclair/typebox';
import { encodeFrames } from '../../core/chunk-frames.js';
import { ATTEMPT_HEADER, Hello, HelloReply, JobFailure, JobProgress, JobSpec, ReadRequest, RestoreReport, SyncReport, WantReply, WantRequest } from '../../core/protocol.js';
import { HoldfastError } from '../../core/errors.js';
import { requireAgent, type App } from '../http-app.js';
import type { ProtectionServer } from '../protection-server.js';
import { UploadAdmission } from '../upload-admission.js';

/**
 * Chunk upload bodies received or verified at once, all agents together (about 4 MiB each).
 * Twelve keep two cores busy verifying; 24 (before) only added bodies the big-buffer store could
 * not keep, fresh memory for each (fan-in of 50 agents: peak RSS 529-580 -> 430 MiB, same time).
 */
const MAX_UPLOADS = 12;
/** Uploads that may wait for a slot (each holds a connection and a few kernel buffers, not its body). */
const MAX_WAITING_UPLOADS = 256;

const JobParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{16}$' }) });

export function registerAgentRoutes(app: App, server: ProtectionServer): void {
  const tags = ['agent'];
  // Authentication before anything else (body parsing, validation): no certificate, no answer.
  app.addHook('onRequest', (req, _reply, done) => {
    try {
      if (req.url.startsWith('/api/v1/agent/')) requireAgent(server, req);
      done();
    } catch (err) {
      done(err as Error);
    }
  });
  app.post('/api/v1/agent/hello', { schema: { tags, body: Hello, response: { 200: HelloReply } } }, (req) => {
    const id = req.agentId as string;
    server.hello(id, req.body.run, req.body.abandoned, req.body.version);
    const a = server.requireAgent(id);
    return { agentId: id, name: a.name, heartbeatMs: server.heartbeatMs };
  });

  app.post('/api/v1/agent/heartbeat', { schema: { tags, body: Type.Object({ running: Type.Array(Type.String(), { maxItems: 64 }) }) } }, () => ({ ok: true }));

  app.get('/api/v1/agent/sources', { schema: { tags } }, (req) => {
    const id = req.agentId as string;
    // options and the group's frequency: a restarted agent's SQLite shippers keep their pace
    return server.sourcesFor(id).map((s) => ({ name: s.name, kind: s.kind, path: s.path, group: s.group, options: s.options, syncEveryMs: server.db.group(s.group)?.syncEveryMs ?? null }));
  });

  // Long poll: a job, or 204 after `wait` seconds.
  app.get(
    '/api/v1/agent/jobs/next',
    {
      schema: {
        tags,
        querystring: Type.Object({ wait: Type.Optional(Type.Integer({ minimum: 0, maximum: 60 })), run: Type.Optional(Type.String({ pattern: '^[0-9a-f]{16}$' })) }),
        response: { 200: JobSpec, 204: Type.Null() },
      },
    },
    async (req, reply) => {
      const id = req.agentId as string;
      const deadline = Date.now() + (req.query.wait ?? 20) * 1000;
      const gone = new AbortController();
      req.raw.once('close', () => gone.abort());
      for (;;) {
        const job = server.queue.take(id, req.query.run ?? null);
        if (job) {
          try {
            const spec = server.jobSpec(job);
            // The sync's transfer is made now, beside its spec: it knows the parent point the
            // agent starts from (the commit checks it is still the latest; see job-transfer.ts).
            if (job.type === 'sync') server.transfer(job);
            // Plain JSON.stringify: the schema's serializer first matches the spec against each job
            // type of the union (an image's manifest list is 2,048 references), 10-40 ms a job and
            // 200 ms for a server's first (docs/design.md, "Protection server").
            reply.serializer(JSON.stringify);
            return spec;
          } catch (err) {
            server.failJob(job, { code: (err as HoldfastError).code ?? 'INTERNAL', message: (err as Error).message });
            continue;
          }
        }
        const left = deadline - Date.now();
        if (left <= 0 || gone.signal.aborted) return reply.status(204).send(null);
        await server.queue.waitForWork(id, Math.min(left, 5000), gone.signal);
      }
    },
  );

  // Progress of all running jobs is written together once a second (one catalog commit): a
  // write (an fsync) per report, 50 reports a second with 50 agents, held up the main thread.
  const progress = new Map<string, Record<string, unknown>>();
  let progressTimer: NodeJS.Timeout | undefined;
  const writeProgress = (): void => {
    progressTimer = undefined;
    const batch = [...progress];
    progress.clear();
    if (!server.db.db.open) return; // the server is closing
    server.db.db.transaction(() => {
      for (const [id, p] of batch) server.db.setProgress(id, p);
    })();
  };
  app.post('/api/v1/agent/jobs/:id/progress', { schema: { tags, params: JobParams, body: JobProgress } }, (req) => {
    const job = server.runningJob(req.agentId as string, req.params.id, req.headers[ATTEMPT_HEADER]);
    progress.set(job.id, { ...req.body, at: new Date().toISOString() });
    progressTimer ??= setTimeout(writeProgress, 1000).unref();
    return { ok: true };
  });

  app.post('/api/v1/agent/jobs/:id/want', { schema: { tags, params: JobParams, body: WantRequest, response: { 200: WantReply } } }, (req) => {
    const job = server.runningJob(req.agentId as string, req.params.id, req.headers[ATTEMPT_HEADER]);
    if (job.type !== 'sync') throw new HoldfastError('CONFLICT', `job ${job.id} is a ${job.type}, not a sync`);
    return { want: server.transfer(job).want(req.body.digests) };
  });

  // Upload admission (upload-admission.ts): bodies are buffered whole, so the number being
  // received or verified at once bounds the server's memory however many agents sync. The rest
  // wait in line with their bodies unread; only a newcomer to a long line gets 503 and retries.
  const admission = new UploadAdmission(MAX_UPLOADS, MAX_WAITING_UPLOADS);
  const holding = new WeakSet<object>();
  const release = (req: object): void => {
    if (holding.delete(req)) admission.exit();
  };
  app.post(
    '/api/v1/agent/jobs/:id/chunks',
    {
      schema: { tags, params: JobParams },
      bodyLimit: 40 * 1024 * 1024,
      onRequest: (req, reply, done) => {
        const raw = req.raw;
        const admitted = (): void => {
          raw.off('close', gone);
          holding.add(req);
          // The response's close comes in every case (sent, failed, or the connection cut after
          // the body was read), so a slot is never lost; onResponse usually frees it first.
          reply.raw.once('close', () => release(req));
          done();
        };
        const gone = (): void => {
          if (typeof entry === 'object') entry.leave();
          done(new HoldfastError('ABORTED', 'the agent went away while its upload waited'));
        };
        const entry = admission.enter(admitted);
        if (entry === true) return admitted();
        if (entry === 'full') return done(new HoldfastError('BUSY', `the server is receiving ${admission.running} uploads and ${admission.waiting} wait; try again shortly`));
        raw.once('close', gone);
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
    const job = server.runningJob(req.agentId as string, req.params.id, req.headers[ATTEMPT_HEADER]);
    if (job.type !== 'sync') throw new HoldfastError('CONFLICT', `job ${job.id} is a ${job.type}, not a sync`);
    if (!Buffer.isBuffer(req.body)) throw new HoldfastError('BAD_ARGUMENT', 'chunk uploads are application/octet-stream');
    return { stored: await server.transfer(job).put(req.body, true) };
    },
  );

  app.post('/api/v1/agent/jobs/:id/read', { schema: { tags, params: JobParams, body: ReadRequest } }, async (req, reply) => {
    const job = server.runningJob(req.agentId as string, req.params.id, req.headers[ATTEMPT_HEADER]);
    const stored = await server.transfer(job).read(req.body.refs);
    return reply.type('application/octet-stream').send(encodeFrames(stored.map((c) => ({ digest: c.digest, length: c.length, flags: c.flags, data: c.data }))));
  });

  app.post('/api/v1/agent/jobs/:id/complete-sync', { schema: { tags, params: JobParams, body: SyncReport } }, async (req) => {
    const job = server.runningJob(req.agentId as string, req.params.id, req.headers[ATTEMPT_HEADER]);
    if (job.type !== 'sync') throw new HoldfastError('CONFLICT', `job ${job.id} is a ${job.type}, not a sync`);
    return server.completeSync(job, req.body);
  });

  app.post('/api/v1/agent/jobs/:id/complete-restore', { schema: { tags, params: JobParams, body: RestoreReport } }, (req) => {
    const job = server.runningJob(req.agentId as string, req.params.id, req.headers[ATTEMPT_HEADER]);
    if (job.type !== 'restore') throw new HoldfastError('CONFLICT', `job ${job.id} is a ${job.type}, not a restore`);
    return server.completeRestore(job, req.body);
  });

  app.post('/api/v1/agent/jobs/:id/fail', { schema: { tags, params: JobParams, body: JobFailure } }, (req) => {
    const job = server.runningJob(req.agentId as string, req.params.id, req.headers[ATTEMPT_HEADER]);
    server.failJob(job, req.body);
    return { ok: true };
  });
}
