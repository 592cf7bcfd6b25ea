/** The holdfast command line: one file per command under commands/, wired here. */
import { Command, CommanderError } from 'commander';
import { isHoldfastError } from '../core/errors.js';
import { registerPool } from './commands/pool.js';
import { registerBackup } from './commands/backup.js';
import { registerPoints } from './commands/points.js';
import { registerRestore } from './commands/restore.js';
import { registerVerify } from './commands/verify.js';
import { registerServer } from './commands/server.js';
import { registerAgent } from './commands/agent.js';
import { registerAgentToken } from './commands/agent-token.js';
import { registerAgents } from './commands/agents.js';
import { registerGroup } from './commands/group.js';
import { registerSource } from './commands/source.js';
import { registerSync } from './commands/sync.js';
import { registerJobs } from './commands/jobs.js';
import { registerAlerts } from './commands/alerts.js';
import { registerGc } from './commands/gc.js';
import { registerPrune } from './commands/prune.js';
import { registerUsage } from './commands/usage.js';
import { registerPointsAdmin } from './commands/points-admin.js';
import { registerUser } from './commands/user.js';
import { registerDrill } from './commands/drill.js';
import { registerLogPush } from './commands/log-push.js';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('holdfast')
    .description('Holdfast: data protection manager for Linux — deduplicated, compressed recovery points of directories and images')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerPool(program);
  registerBackup(program);
  registerPoints(program);
  registerRestore(program);
  registerVerify(program);
  registerServer(program);
  registerAgent(program);
  registerAgentToken(program);
  registerAgents(program);
  registerGroup(program);
  registerSource(program);
  registerSync(program);
  registerJobs(program);
  registerAlerts(program);
  registerPointsAdmin(program);
  registerPrune(program);
  registerGc(program);
  registerUsage(program);
  registerUser(program);
  registerDrill(program);
  registerLogPush(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    if (isHoldfastError(err)) {
      process.stderr.write(`holdfast: ${err.message}\n`);
      process.exitCode = err.exitCode;
      return;
    }
    const maps = process.env.HOLDFAST_SOURCE_MAPS === '1' ? '' : ' (HOLDFAST_SOURCE_MAPS=1 names the source lines)';
    process.stderr.write(`holdfast: internal error (a bug)${maps}: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 70;
  }
}
