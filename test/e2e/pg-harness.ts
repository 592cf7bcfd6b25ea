/**
 * Real PostgreSQL clusters for the end-to-end tests: initdb as the postgres user in a temporary
 * directory, trust authentication on a Unix socket in that directory, a free port, archiving on
 * (the agent sets archive_command). Needs root (to act as postgres) and Debian's PostgreSQL.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { TestAgent, TestServer, freePort, until } from './server-harness.js';

export const PG_BIN = process.env.HOLDFAST_PG_BIN ?? '/usr/lib/postgresql/15/bin';

function pgUser(): { uid: number; gid: number } | undefined {
  const r = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  return r.status === 0 && g.status === 0 ? { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) } : undefined;
}

export const PG_USER = pgUser();
/** Why the PostgreSQL tests cannot run here (or false when they can). */
export const pgSkip: string | false =
  process.getuid?.() !== 0 ? 'needs root (to run PostgreSQL as postgres)' : !existsSync(join(PG_BIN, 'initdb')) ? `needs PostgreSQL at ${PG_BIN}` : !PG_USER ? 'needs the postgres user' : false;

export class TestPg {
  /** where postgresql.conf lives: the data directory, or DIR/etc in the Debian layout */
  private confDir: string;
  /** the role the tests connect as: postgres (trust), or root (the Debian layout's peer authentication) */
  user = 'postgres';

  private constructor(
    readonly dir: string,
    readonly dataDir: string,
    readonly port: number,
  ) {
    this.confDir = dataDir;
  }

  /** libpq URL over the Unix socket in `dir` */
  get url(): string {
    return `postgresql://${this.user}@/postgres?host=${encodeURIComponent(this.dir)}&port=${this.port}`;
  }

  /** initdb in DIR/data (DIR made reachable for the postgres user), configured and started. */
  static async init(dir: string, conf: Record<string, string> = {}, layout: 'data' | 'debian' = 'data'): Promise<TestPg> {
    const u = PG_USER as { uid: number; gid: number };
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o755);
    chownSync(dir, u.uid, u.gid);
    const p = new TestPg(dir, join(dir, 'data'), await freePort());
    execFileSync(join(PG_BIN, 'initdb'), ['-D', p.dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-instructions'], { uid: u.uid, gid: u.gid, stdio: 'pipe', cwd: dir });
    const settings: Record<string, string> = {
      port: String(p.port),
      unix_socket_directories: `'${dir}'`,
      listen_addresses: "''",
      wal_level: 'replica',
      archive_mode: 'on',
      max_wal_size: "'1GB'",
      checkpoint_timeout: "'30min'",
      shared_buffers: "'32MB'",
      ...conf,
    };
    appendFileSync(join(p.dataDir, 'postgresql.conf'), `\n${Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join('\n')}\n`);
    if (layout === 'debian') p.debianLayout();
    p.start();
    return p;
  }

  /**
   * Debian's layout: postgresql.conf, pg_hba.conf and pg_ident.conf under DIR/etc (a conf.d
   * include, data_directory, an external pid file), peer authentication only; the tests and the
   * agent (root) connect as the superuser role root.
   */
  private debianLayout(): void {
    const u = PG_USER as { uid: number; gid: number };
    const as = { uid: u.uid, gid: u.gid, cwd: this.dir };
    execFileSync(join(PG_BIN, 'postgres'), ['--single', '-D', this.dataDir, 'postgres'], { ...as, input: 'CREATE ROLE root SUPERUSER LOGIN;\n', stdio: ['pipe', 'ignore', 'pipe'] });
    const etc = join(this.dir, 'etc');
    mkdirSync(join(etc, 'conf.d'), { recursive: true });
    for (const f of ['postgresql.conf', 'pg_ident.conf']) renameSync(join(this.dataDir, f), join(etc, f));
    rmSync(join(this.dataDir, 'pg_hba.conf'));
    writeFileSync(join(etc, 'pg_hba.conf'), 'local all all peer\n');
    writeFileSync(join(etc, 'conf.d', '10-site.conf'), "work_mem = '7MB'\n");
    appendFileSync(
      join(etc, 'postgresql.conf'),
      `data_directory = '${this.dataDir}'\nhba_file = '${etc}/pg_hba.conf'\nident_file = '${etc}/pg_ident.conf'\nexternal_pid_file = '${this.dir}/live.pid'\ninclude_dir = 'conf.d'\n`,
    );
    execFileSync('chown', ['-R', `${u.uid}:${u.gid}`, etc]);
    this.confDir = etc;
    this.user = 'root';
  }

  start(): void {
    const u = PG_USER as { uid: number; gid: number };
    execFileSync(join(PG_BIN, 'pg_ctl'), ['-D', this.confDir, '-l', join(this.dir, 'server.log'), '-w', '-t', '60', 'start'], { uid: u.uid, gid: u.gid, stdio: 'pipe', cwd: this.dir });
  }

  stop(): void {
    const u = PG_USER as { uid: number; gid: number };
    spawnSync(join(PG_BIN, 'pg_ctl'), ['-D', this.confDir, '-m', 'immediate', '-w', 'stop'], { uid: u.uid, gid: u.gid, stdio: 'pipe', cwd: this.dir });
  }

  get log(): string {
    return existsSync(join(this.dir, 'server.log')) ? readFileSync(join(this.dir, 'server.log'), 'utf8') : '';
  }

  async client(): Promise<pg.Client> {
    const c = new pg.Client({ host: this.dir, port: this.port, user: this.user, database: 'postgres' });
    c.on('error', () => undefined);
    await c.connect();
    return c;
  }

  /** One statement in a fresh session. */
  async query<T extends pg.QueryResultRow = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    const c = await this.client();
    try {
      return (await c.query<T>(sql, params)).rows;
    } finally {
      await c.end();
    }
  }
}

/** A client for a restored copy the agent started (its socket is in the WAL directory it reports). */
export async function connectRestored(socket: string, port: number, user = 'postgres'): Promise<pg.Client> {
  const c = new pg.Client({ host: socket, port, user, database: 'postgres' });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

/** Stops a restored copy as its owner. */
export function stopRestored(dataDir: string): void {
  const u = PG_USER as { uid: number; gid: number };
  spawnSync(join(PG_BIN, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', '-w', 'stop'], { uid: u.uid, gid: u.gid, stdio: 'pipe', cwd: '/' });
}

export function writeFileOwned(path: string, text: string): void {
  writeFileSync(path, text);
  const u = PG_USER as { uid: number; gid: number };
  chownSync(path, u.uid, u.gid);
}

/**
 * A cluster under protection: a server, an agent 'dbhost' and the cluster as source 'db' of an
 * unscheduled group 'g'. `prepare` runs on the cluster before the source is added.
 */
export class ProtectedPg {
  /** restored copies to stop when done */
  readonly restored: string[] = [];

  private constructor(
    readonly server: TestServer,
    readonly agent: TestAgent,
    readonly db: TestPg,
  ) {}

  static async start(dir: (name: string) => string, o: { layout?: 'data' | 'debian'; prepare?: (db: TestPg) => Promise<void> } = {}): Promise<ProtectedPg> {
    const server = await TestServer.start(dir('server'), ['--gc-every', 'off', '--verify-every', 'off']);
    const agent = await TestAgent.start(server, 'dbhost', dir('agent'));
    const db = await TestPg.init(dir('pg'), {}, o.layout);
    await o.prepare?.(db);
    await server.cliOk(['group', 'create', 'g', '--sync-every', 'off']);
    await server.cliOk(['source', 'add', '--group', 'g', '--agent', 'dbhost', '--kind', 'postgres', '--connect', db.url, 'db', db.dataDir]);
    return new ProtectedPg(server, agent, db);
  }

  /** Closes the current WAL segment and waits until the server holds it: every commit so far is restorable. */
  async shipCurrentSegment(timeoutMs = 60_000): Promise<string> {
    // The segment the switch completed (the one before the current, when there was nothing to switch).
    const seg = (await this.db.query<{ f: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS f'))[0]?.f as string;
    const shipped = async (): Promise<boolean> => (await this.server.admin().json<Array<{ name: string }>>('GET', '/api/v1/sources/db/logs')).some((l) => l.name >= seg && !l.name.endsWith('.history'));
    await until(`segment ${seg} on the server`, shipped, timeoutMs, 300);
    return seg;
  }

  async stop(): Promise<void> {
    for (const r of this.restored) stopRestored(r);
    this.db.stop();
    await this.agent.kill();
    await this.server.kill();
  }
}
