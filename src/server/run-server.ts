/**
 * Starts a protection server: data directory, HTTPS listener, scheduler. Returns a handle the
 * CLI (and tests) stop cleanly; SIGTERM/SIGINT handling is the caller's.
 */
import pino from 'pino';
import type { AddressInfo } from 'node:net';
import { HoldfastError } from '../core/errors.js';
import { buildApp, type App } from './http-app.js';
import { ProtectionServer } from './protection-server.js';
import type { MaintenanceOptions } from './maintenance.js';
import { Scheduler } from './scheduler.js';

export interface RunServerOptions {
  dataDir: string;
  listen: string; // HOST:PORT
  maxRunning?: number;
  retryDelayMs?: number;
  heartbeatMs?: number;
  offlineAfterMs?: number;
  tickMs?: number;
  maintenance?: MaintenanceOptions;
  logLevel?: string;
}

export interface RunningServer {
  url: string;
  server: ProtectionServer;
  app: App;
  stop(): Promise<void>;
}

export function parseListen(text: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new HoldfastError('BAD_ARGUMENT', `--listen '${text}' is not HOST:PORT (for example 127.0.0.1:7070)`);
  return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port };
}

export async function runServer(o: RunServerOptions): Promise<RunningServer> {
  const { host, port } = parseListen(o.listen);
  const log = pino({ level: o.logLevel ?? 'info' }, pino.destination(2));
  const server = await ProtectionServer.open({
    dataDir: o.dataDir,
    listenHost: host,
    maxRunning: o.maxRunning,
    retryDelayMs: o.retryDelayMs,
    heartbeatMs: o.heartbeatMs,
    offlineAfterMs: o.offlineAfterMs,
    maintenance: o.maintenance,
    log,
  });
  const app = await buildApp(server, log.child({ component: 'http' }, { level: o.logLevel === 'debug' ? 'debug' : 'warn' }));
  try {
    await app.listen({ host, port });
  } catch (err) {
    await server.close();
    throw new HoldfastError('CONFLICT', `cannot listen on ${o.listen}: ${(err as Error).message}`);
  }
  const scheduler = new Scheduler(server, o.tickMs);
  scheduler.start();
  const addr = app.server.address() as AddressInfo;
  const shownHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  return {
    url: `https://${shownHost}:${addr.port}`,
    server,
    app,
    stop: async () => {
      scheduler.stop();
      await app.close();
      await server.close();
    },
  };
}
