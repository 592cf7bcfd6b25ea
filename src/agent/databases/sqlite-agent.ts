/**
 * The agent daemon's side of SQLite sources: one shipper per source, polling every 250 ms
 * ('continuous', the default) or at the group's sync frequency ('frequency'), shipping through
 * the daemon's log transport. The daemon learns its sources at start and from each sync job
 * (which also carries the group's current frequency).
 */
import type { SourceOptions } from '../../core/protocol.js';
import type { AgentLog } from '../remote/agent-daemon.js';
import { sqliteShippers } from './sqlite-registry.js';
import type { ShipRecord } from './sqlite-shipper.js';

export const CONTINUOUS_MS = 250;
/** 'frequency' without a known group frequency: DPM's default synchronization frequency */
const DEFAULT_FREQUENCY_MS = 15 * 60_000;

export interface SqliteSourceInfo {
  name: string;
  kind: string;
  path: string;
  options?: SourceOptions;
  /** the group's sync frequency, when the caller knows it */
  syncEveryMs?: number | null;
}

export interface SqliteShippingContext {
  /** the agent's tracker state directory */
  stateDir: string;
  log: AgentLog;
  ship(source: string, r: ShipRecord): Promise<void>;
}

const settings = new Map<string, { mode: 'continuous' | 'frequency'; everyMs: number | null | undefined }>();

/** Starts (or updates) shipping for a sqlite source; other kinds are ignored. */
export function shipSqliteSource(s: SqliteSourceInfo, ctx: SqliteShippingContext): void {
  if (s.kind !== 'sqlite') return;
  const prev = settings.get(s.name);
  const mode = s.options?.sqlite?.ship ?? prev?.mode ?? 'continuous';
  const everyMs = s.syncEveryMs !== undefined ? s.syncEveryMs : prev?.everyMs;
  settings.set(s.name, { mode, everyMs });
  let failing = false;
  sqliteShippers.start(
    { source: s.name, path: s.path, stateDir: ctx.stateDir, ship: (r) => ctx.ship(s.name, r) },
    {
      intervalMs: () => {
        const c = settings.get(s.name);
        if (failing) return 2000; // a missing database or an unreachable server: ask again calmly
        return c?.mode === 'frequency' ? c.everyMs || DEFAULT_FREQUENCY_MS : CONTINUOUS_MS;
      },
      onError: (err) => {
        if (!failing) ctx.log.warn({ source: s.name, err: err.message }, 'SQLite WAL shipping failed; retrying');
        failing = true;
      },
      onPoll: () => {
        if (failing) ctx.log.info({ source: s.name }, 'SQLite WAL shipping resumed');
        failing = false;
      },
    },
  );
}

export async function stopSqliteShipping(): Promise<void> {
  settings.clear();
  await sqliteShippers.stopAll();
}
