/**
 * PostgreSQL connections for the agent, and log shipping's configuration on the source cluster:
 * archive_command runs `holdfast log-push` with the agent's socket and the source's key (so a
 * segment counts as archived only once it is durable on the server), archive_timeout comes from
 * the group's sync frequency (a quiet database still ships a segment at least that often).
 * Set with ALTER SYSTEM (postgresql.auto.conf, readable only by the cluster's owner, which keeps
 * the key private) and pg_reload_conf(). archive_mode needs a restart: when it is off the agent
 * turns it on and says so; express fulls work meanwhile, without log shipping.
 */
import { resolve } from 'node:path';
import pg from 'pg';
import { HoldfastError } from '../../core/errors.js';
import { logSourceKey } from '../remote/log-socket.js';

export type PgClient = pg.Client;

/** Opens a session from the source's libpq URL or conninfo. */
export async function pgConnect(connect: string, source: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: connect, application_name: 'holdfast-agent' });
  try {
    await client.connect();
  } catch (err) {
    throw new HoldfastError('SOURCE_UNREADABLE', `cannot connect to PostgreSQL of source '${source}' (${connect}): ${(err as Error).message}`, { source });
  }
  // A dropped session must not take the agent down: the query that was running fails instead.
  client.on('error', () => undefined);
  return client;
}

export interface ArchiveSetup {
  /** absolute paths of node and of the holdfast launcher (bin/holdfast.js) */
  node: string;
  cli: string;
  socket: string;
  source: string;
  key: string;
  /** the group's sync frequency; null or absent: 15 minutes */
  syncEveryMs?: number | null;
}

const q = (s: string): string => `'${s.replace(/'/g, "'\\''")}'`;

/** The archive_command for a source (shell words quoted; %p is relative to the data directory). */
export function archiveCommand(a: ArchiveSetup): string {
  return `${q(a.node)} ${q(a.cli)} log-push --socket ${q(a.socket)} --source ${q(a.source)} --key ${q(a.key)} %p %f`;
}

export function archiveTimeoutS(syncEveryMs: number | null | undefined): number {
  return syncEveryMs ? Math.max(1, Math.round(syncEveryMs / 1000)) : 900;
}

/**
 * Makes the cluster ship its WAL through this agent. Returns warnings (archive_mode off: a
 * restart is needed before segments ship).
 */
export async function configureArchiving(client: pg.Client, a: ArchiveSetup): Promise<string[]> {
  const warnings: string[] = [];
  const get = async (name: string): Promise<string> => ((await client.query<{ setting: string }>('SELECT setting FROM pg_settings WHERE name = $1', [name])).rows[0]?.setting ?? '');
  const want = { archive_command: archiveCommand(a), archive_timeout: String(archiveTimeoutS(a.syncEveryMs)) };
  let changed = false;
  for (const [name, value] of Object.entries(want)) {
    if ((await get(name)) === value) continue;
    await client.query(`ALTER SYSTEM SET ${name} = ${client.escapeLiteral(value)}`);
    changed = true;
  }
  if ((await get('archive_mode')) === 'off') {
    await client.query("ALTER SYSTEM SET archive_mode = 'on'");
    warnings.push(`archive_mode was off on source '${a.source}': it is now set to 'on', and takes effect when PostgreSQL restarts; until then only express fulls protect it (no log shipping)`);
  }
  if ((await get('wal_level')) === 'minimal') {
    await client.query("ALTER SYSTEM SET wal_level = 'replica'");
    warnings.push(`wal_level was minimal on source '${a.source}': set to 'replica' (needs a restart)`);
  }
  if (changed) await client.query('SELECT pg_reload_conf()');
  return warnings;
}

/** How this agent process's archive_command is built: node, the launcher it runs from, its socket and the source's key. */
export async function pgArchiveFor(agentStateDir: string | undefined, socket: string | undefined, source: string): Promise<{ node: string; cli: string; socket: string; key: string } | undefined> {
  const cli = process.argv[1];
  if (!agentStateDir || !socket || !cli) return undefined;
  return { node: process.execPath, cli: resolve(cli), socket, key: await logSourceKey(agentStateDir, source, 'pg-wal') };
}
