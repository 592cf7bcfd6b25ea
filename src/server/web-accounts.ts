/**
 * Console and portal accounts and their sessions, in the control catalog. An account is an
 * administrator (the console and the whole API) or a user (the portal only) who maps to a uid
 * and groups on the protected hosts. Sessions are random 256-bit ids in an HttpOnly cookie; the
 * catalog keeps only their SHA-256, with a CSRF token per session and idle and absolute expiry.
 */
import { createHash, randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import { HoldfastError } from '../core/errors.js';
import { hashPassword, verifyPassword } from './password.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS web_users (
  name TEXT PRIMARY KEY, role TEXT NOT NULL, uid INTEGER NOT NULL, gids TEXT NOT NULL, password_hash TEXT NOT NULL,
  created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS web_sessions (
  id_hash TEXT PRIMARY KEY, user TEXT NOT NULL REFERENCES web_users(name) ON DELETE CASCADE, csrf TEXT NOT NULL,
  created INTEGER NOT NULL, seen INTEGER NOT NULL);
`;

export type Role = 'admin' | 'user';

export interface WebUser {
  name: string;
  role: Role;
  uid: number;
  gids: number[];
  created: string;
}

export interface WebSession {
  user: WebUser;
  csrf: string;
}

/** An account as the API shows it (never its password hash). */
export const userView = (u: WebUser): Record<string, unknown> => ({ name: u.name, role: u.role, uid: u.uid, gids: u.gids, created: u.created });

const USER_NAME = /^[a-z_][a-z0-9._-]{0,31}$/;
/** a session unused this long ends */
export const SESSION_IDLE_MS = 60 * 60 * 1000;
/** and no session lives longer than this */
export const SESSION_MAX_MS = 12 * 60 * 60 * 1000;

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

type Raw = Record<string, unknown>;
function userOf(r: Raw): WebUser {
  return { name: r.name as string, role: r.role as Role, uid: r.uid as number, gids: JSON.parse(r.gids as string) as number[], created: r.created as string };
}

export class WebAccounts {
  // Verifying against this keeps a login for an unknown name as slow as one for a known name.
  private readonly dummyHash = hashPassword(randomBytes(12).toString('hex'));

  constructor(private readonly db: Database.Database) {
    db.exec(SCHEMA);
  }

  users(): WebUser[] {
    return (this.db.prepare('SELECT * FROM web_users ORDER BY name').all() as Raw[]).map(userOf);
  }

  user(name: string): WebUser | undefined {
    const r = this.db.prepare('SELECT * FROM web_users WHERE name = ?').get(name) as Raw | undefined;
    return r && userOf(r);
  }

  async addUser(u: { name: string; role: Role; uid: number; gids: number[]; password: string }): Promise<WebUser> {
    if (!USER_NAME.test(u.name)) throw new HoldfastError('BAD_ARGUMENT', `user name '${u.name}' is not valid (lower-case letters, digits, '.', '_', '-'; up to 32)`);
    // uid 0 would read everything on the host; the portal is for ordinary accounts.
    if (u.role === 'user' && u.uid === 0) throw new HoldfastError('BAD_ARGUMENT', `user '${u.name}' may not map to uid 0 (root)`);
    if (u.password.length < 8) throw new HoldfastError('BAD_ARGUMENT', `the password of user '${u.name}' must have at least 8 characters`);
    if (this.user(u.name)) throw new HoldfastError('CONFLICT', `user '${u.name}' already exists`);
    const row = { name: u.name, role: u.role, uid: u.uid, gids: [...new Set(u.gids)].sort((a, b) => a - b), created: new Date().toISOString() };
    const hash = await hashPassword(u.password);
    this.db.prepare('INSERT INTO web_users (name, role, uid, gids, password_hash, created) VALUES (?, ?, ?, ?, ?, ?)').run(row.name, row.role, row.uid, JSON.stringify(row.gids), hash, row.created);
    return row;
  }

  async setPassword(name: string, password: string): Promise<void> {
    if (password.length < 8) throw new HoldfastError('BAD_ARGUMENT', `the password of user '${name}' must have at least 8 characters`);
    const hash = await hashPassword(password);
    if (this.db.prepare('UPDATE web_users SET password_hash = ? WHERE name = ?').run(hash, name).changes === 0) throw new HoldfastError('NOT_FOUND', `no user named '${name}'`);
    this.db.prepare('DELETE FROM web_sessions WHERE user = ?').run(name); // a new password ends old sessions
  }

  deleteUser(name: string): void {
    this.db.prepare('DELETE FROM web_sessions WHERE user = ?').run(name);
    if (this.db.prepare('DELETE FROM web_users WHERE name = ?').run(name).changes === 0) throw new HoldfastError('NOT_FOUND', `no user named '${name}'`);
  }

  /** The account when the password matches; undefined otherwise (same cost either way). */
  async checkPassword(name: string, password: string): Promise<WebUser | undefined> {
    const r = this.db.prepare('SELECT * FROM web_users WHERE name = ?').get(name) as Raw | undefined;
    const ok = await verifyPassword(password, (r?.password_hash as string | undefined) ?? (await this.dummyHash));
    return r && ok ? userOf(r) : undefined;
  }

  /** A new session: the id goes into the cookie, only its hash into the catalog. */
  openSession(user: WebUser, now = Date.now()): { id: string; csrf: string } {
    const id = randomBytes(32).toString('base64url');
    const csrf = randomBytes(24).toString('base64url');
    this.db.prepare('DELETE FROM web_sessions WHERE seen < ? OR created < ?').run(now - SESSION_IDLE_MS, now - SESSION_MAX_MS);
    this.db.prepare('INSERT INTO web_sessions (id_hash, user, csrf, created, seen) VALUES (?, ?, ?, ?, ?)').run(sha(id), user.name, csrf, now, now);
    return { id, csrf };
  }

  /** The live session behind a cookie value, touched; undefined when unknown or expired. */
  session(id: string, now = Date.now()): WebSession | undefined {
    // The session's times get their own names: web_users has a `created` column too.
    const r = this.db.prepare('SELECT u.*, s.csrf AS s_csrf, s.created AS s_created, s.seen AS s_seen FROM web_sessions s JOIN web_users u ON u.name = s.user WHERE s.id_hash = ?').get(sha(id)) as Raw | undefined;
    if (!r) return undefined;
    if ((r.s_seen as number) < now - SESSION_IDLE_MS || (r.s_created as number) < now - SESSION_MAX_MS) {
      this.closeSession(id);
      return undefined;
    }
    if (now - (r.s_seen as number) > 30_000) this.db.prepare('UPDATE web_sessions SET seen = ? WHERE id_hash = ?').run(now, sha(id));
    return { user: userOf(r), csrf: r.s_csrf as string };
  }

  closeSession(id: string): void {
    this.db.prepare('DELETE FROM web_sessions WHERE id_hash = ?').run(sha(id));
  }
}
