/**
 * A cluster configured outside its data directory (Debian keeps postgresql.conf, pg_hba.conf and
 * pg_ident.conf under /etc/postgresql/<version>/<cluster>): the data directory alone does not
 * start. The express full keeps the configuration with the point, as the files a restore writes
 * into the copy. postgresql.conf is rebuilt from pg_file_settings (every file and include, in the
 * order PostgreSQL read them), leaving out the settings that name the live cluster's files — the
 * copy must never open the original data directory, pid file or configuration.
 */
import { chown, readFile, writeFile } from 'node:fs/promises';
import { errnoCode } from '../../core/errors.js';
import { join, relative, isAbsolute } from 'node:path';
import type pg from 'pg';

/** Settings that point at the live cluster's files; a copy uses its own. */
const LIVE_PATHS = new Set(['data_directory', 'config_file', 'hba_file', 'ident_file', 'external_pid_file']);

const inside = (dir: string, file: string): boolean => {
  const rel = relative(dir, file);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
};

/** A setting line as postgresql.conf takes it (every value may be quoted). */
export const confLine = (name: string, value: string): string => `${name} = '${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;

/**
 * The configuration files to keep with the point, or undefined when postgresql.conf lives in the
 * data directory (the express full holds it already). Unreadable files become warnings.
 */
export async function outsideConfig(client: pg.Client, dataDir: string, warnings: string[]): Promise<Record<string, string> | undefined> {
  const files = Object.fromEntries(
    (await client.query<{ name: string; setting: string }>("SELECT name, setting FROM pg_settings WHERE name IN ('config_file', 'hba_file', 'ident_file')")).rows.map((r) => [r.name, r.setting]),
  ) as Record<string, string | undefined>;
  const configFile = files.config_file;
  if (!configFile || inside(dataDir, configFile)) return undefined;
  const rows = (
    await client.query<{ sourcefile: string | null; name: string | null; setting: string | null }>('SELECT sourcefile, name, setting FROM pg_file_settings WHERE error IS NULL ORDER BY seqno')
  ).rows;
  const auto = join(dataDir, 'postgresql.auto.conf'); // restored with the data directory
  const lines = [`# Written by a Holdfast restore: the settings of ${configFile} and its includes, read by the express full.`];
  let from = '';
  for (const r of rows) {
    if (!r.name || r.setting === null || !r.sourcefile || r.sourcefile === auto || LIVE_PATHS.has(r.name)) continue;
    if (r.sourcefile !== from) lines.push(`# from ${(from = r.sourcefile)}`);
    lines.push(confLine(r.name, r.setting));
  }
  const out: Record<string, string> = { 'postgresql.conf': `${lines.join('\n')}\n` };
  for (const [key, name] of [['hba_file', 'pg_hba.conf'], ['ident_file', 'pg_ident.conf']] as const) {
    const f = files[key];
    if (!f || inside(dataDir, f)) continue;
    try {
      out[name] = await readFile(f, 'utf8');
    } catch (err) {
      warnings.push(`cannot read ${f} (${(err as Error).message}); a restore of this point has no ${name}`);
    }
  }
  return out;
}

/**
 * Writes the configuration a point kept (see outsideConfig) into a restored data directory, owned
 * by its owner; a file the data directory already holds is left alone. Returns the names written.
 */
export async function writeConfig(dataDir: string, config: unknown, uid: number, gid: number): Promise<string[]> {
  if (!config || typeof config !== 'object') return [];
  const written: string[] = [];
  for (const [name, text] of Object.entries(config as Record<string, unknown>)) {
    if (!CONFIG_NAMES.has(name) || typeof text !== 'string') continue;
    const p = join(dataDir, name);
    try {
      await writeFile(p, text, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if (errnoCode(err) === 'EEXIST') continue;
      throw err;
    }
    await chown(p, uid, gid);
    written.push(name);
  }
  return written;
}

const CONFIG_NAMES = new Set(['postgresql.conf', 'pg_hba.conf', 'pg_ident.conf']);
