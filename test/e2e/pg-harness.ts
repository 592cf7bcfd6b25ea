/**
 * Real PostgreSQL clusters for the end-to-end tests: initdb as the postgres user in a temporary
 * directory, trust authentication on a Unix socket in that directory, a free port, archiving on
 * (the agent sets archive_command). Needs root (to act as postgres) and Debian's PostgreSQL.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './server-harness.js';

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
  private constructor(
    readonly dir: string,
    readonly dataDir: string,
    readonly port: number,
  ) {}

  /** libpq URL over the Unix socket in `dir` */
  get url(): string {
    return `postgresql://postgres@/postgres?host=${encodeURIComponent(this.dir)}&port=${this.port}`;
  }

  /** initdb in DIR/data (DIR made reachable for the postgres user), configured and started. */
  static async init(dir: string, conf: Record<string, string> = {}): Promise<TestPg> {
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
    p.start();
    return p;
  }

  start(): void {
    const u = PG_USER as { uid: number; gid: number };
    execFileSync(join(PG_BIN, 'pg_ctl'), ['-D', this.dataDir, '-l', join(this.dir, 'server.log'), '-w', '-t', '60', 'start'], { uid: u.uid, gid: u.gid, stdio: 'pipe', cwd: this.dir });
  }

  stop(): void {
    const u = PG_USER as { uid: number; gid: number };
    spawnSync(join(PG_BIN, 'pg_ctl'), ['-D', this.dataDir, '-m', 'immediate', '-w', 'stop'], { uid: u.uid, gid: u.gid, stdio: 'pipe', cwd: this.dir });
  }

  get log(): string {
    return existsSync(join(this.dir, 'server.log')) ? readFileSync(join(this.dir, 'server.log'), 'utf8') : '';
  }

  async client(): Promise<pg.Client> {
    const c = new pg.Client({ host: this.dir, port: this.port, user: 'postgres', database: 'postgres' });
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
export async function connectRestored(socket: string, port: number): Promise<pg.Client> {
  const c = new pg.Client({ host: socket, port, user: 'postgres', database: 'postgres' });
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
