/**
 * holdfast log-push --socket PATH --source NAME --key KEY FILE NAME: PostgreSQL's archive_command.
 * Hands one WAL file to the local agent daemon and exits 0 only once the server said it is
 * durable; any failure exits non-zero with the reason on stderr (PostgreSQL logs it, keeps the
 * file and tries again).
 */
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { HoldfastError, errnoCode } from '../../core/errors.js';
import { pushLog } from '../../agent/remote/log-socket.js';

export function registerLogPush(program: Command): void {
  program
    .command('log-push <file> [name]')
    .description("hand one log file to the local agent for shipping (PostgreSQL's archive_command); exits 0 once it is durable on the server")
    .requiredOption('--socket <path>', "the agent daemon's log socket (<state>/log.sock)")
    .requiredOption('--source <name>', 'the source the log belongs to')
    .requiredOption('--key <key>', "the source's log key (the agent writes it into archive_command)")
    .action(async (file: string, name: string | undefined, opts: { socket: string; source: string; key: string }) => {
      // When the process began (close to archive_command's call): the agent logs the latency from it.
      const started = Math.round(performance.timeOrigin);
      let data: Buffer;
      try {
        data = await readFile(file);
      } catch (err) {
        throw new HoldfastError(errnoCode(err) === 'ENOENT' ? 'PATH_NOT_FOUND' : 'PATH_UNREADABLE', `cannot read log file ${file}: ${(err as Error).message}`, { path: file });
      }
      await pushLog(opts.socket, { source: opts.source, key: opts.key, name: name ?? basename(file), started }, data);
    });
}
