/** holdfast server --data DIR [--listen HOST:PORT]: the protection server. */
import type { Command } from 'commander';
import { parseDuration } from '../../core/units.js';
import { info } from '../output.js';
import { DEFAULT_DATA } from '../admin-client.js';

interface ServerCliOpts {
  data: string;
  listen: string;
  maxJobs: string;
  retryDelay: string;
  heartbeat: string;
  agentTimeout?: string;
  pruneEvery: string;
  pruneAfterSync: boolean;
  gcEvery: string;
  gcAfterPrune?: boolean;
  verifyEvery: string;
  verifyOlderThan?: string;
  usageEvery: string;
  logLevel: string;
}

const orOff = (t: string): number | null => (t === 'off' ? null : parseDuration(t));

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
    .option('--prune-every <duration>', "prune every group by its retention (or 'off'); sources are also pruned after each sync", '1h')
    .option('--no-prune-after-sync', "don't prune a source right after its sync")
    .option('--gc-every <duration>', "garbage collection (or 'off')", '1d')
    .option('--gc-after-prune', 'run gc after a prune that removed recovery points')
    .option('--verify-every <duration>', "full verify of chunks not re-hashed within --verify-older-than (or 'off')", '7d')
    .option('--verify-older-than <duration>', 'a scheduled verify re-hashes only chunks not verified within this span (default: --verify-every)')
    .option('--usage-every <duration>', 'storage allocation check: quota and pool alerts', '10m')
    .option('--log-level <level>', 'info, warn, debug', 'info')
    .action(async (opts: ServerCliOpts) => {
      // Loaded on use: the server's dependencies (fastify, x509) would slow every other command.
      const { runServer } = await import('../../server/run-server.js');
      const running = await runServer({
        dataDir: opts.data,
        listen: opts.listen,
        maxRunning: Math.max(1, Number.parseInt(opts.maxJobs, 10) || 16),
        retryDelayMs: parseDuration(opts.retryDelay),
        heartbeatMs: parseDuration(opts.heartbeat),
        offlineAfterMs: opts.agentTimeout ? parseDuration(opts.agentTimeout) : undefined,
        maintenance: {
          pruneEveryMs: orOff(opts.pruneEvery),
          pruneAfterSync: opts.pruneAfterSync,
          gcEveryMs: orOff(opts.gcEvery),
          gcAfterPrune: opts.gcAfterPrune === true,
          verifyEveryMs: orOff(opts.verifyEvery),
          verifyOlderThanMs: opts.verifyOlderThan ? parseDuration(opts.verifyOlderThan) : undefined,
          usageEveryMs: parseDuration(opts.usageEvery),
        },
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
