/** holdfast server --data DIR [--listen HOST:PORT]: the protection server. */
import type { Command } from 'commander';
import { parseDuration } from '../../core/units.js';
import { info } from '../output.js';
import { DEFAULT_DATA } from '../admin-client.js';

export function registerServer(program: Command): void {
  program
    .command('server')
    .description('run the protection server (HTTPS API, scheduler, storage pool)')
    .option('--data <dir>', 'data directory (pool, catalog, certificates)', DEFAULT_DATA)
    .option('--listen <host:port>', 'where to listen', '127.0.0.1:7070')
    .option('--max-jobs <n>', 'jobs running at once, all agents together', '16')
    .option('--retry-delay <duration>', 'wait before the automatic re-run of a failed job', '60s')
    .option('--heartbeat <duration>', 'how often agents report in', '10s')
    .option('--agent-timeout <duration>', 'an agent silent this long is offline (default: 3 heartbeats, at least 30s)')
    .option('--log-level <level>', 'info, warn, debug', 'info')
    .action(async (opts: { data: string; listen: string; maxJobs: string; retryDelay: string; heartbeat: string; agentTimeout?: string; logLevel: string }) => {
      // Loaded on use: the server's dependencies (fastify, x509) would slow every other command.
      const { runServer } = await import('../../server/run-server.js');
      const running = await runServer({
        dataDir: opts.data,
        listen: opts.listen,
        maxRunning: Math.max(1, Number.parseInt(opts.maxJobs, 10) || 16),
        retryDelayMs: parseDuration(opts.retryDelay),
        heartbeatMs: parseDuration(opts.heartbeat),
        offlineAfterMs: opts.agentTimeout ? parseDuration(opts.agentTimeout) : undefined,
        logLevel: opts.logLevel,
      });
      info(`holdfast server listening on ${running.url} (data in ${opts.data})`);
      if (running.server.data.newAdminToken) {
        info(`administrator token (shown once; also in ${opts.data}/admin-token, mode 0600):\n  ${running.server.data.newAdminToken}`);
      }
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          void running.stop().then(resolve, resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
