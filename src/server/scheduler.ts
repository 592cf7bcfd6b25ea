/**
 * The scheduler's tick (once a second): syncs that fell due by a group's frequency or its
 * recovery point times (a database source: express fulls at the point times, or daily; its logs
 * ship at the frequency), recovery point objectives, agents that went silent, and storage
 * maintenance that fell due (prune, gc, verify, storage check: maintenance.ts), and drills
 * (drills.ts).
 */
import type { ProtectionServer } from './protection-server.js';
import { lastSlot, rpoState, scheduleFor } from './schedule.js';

export class Scheduler {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly server: ProtectionServer,
    private readonly tickMs = 1000,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      try {
        this.tick(new Date());
      } catch (err) {
        this.server.opts.log.warn({ err: (err as Error).message }, 'scheduler tick failed');
      }
    }, this.tickMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  tick(now: Date): void {
    const s = this.server;
    const open = s.db.openJobs();
    for (const src of s.db.sources()) {
      const group = s.db.group(src.group);
      const agent = s.db.agent(src.agentId);
      if (!group || !agent || agent.revoked) continue;
      const g = scheduleFor(src.kind, group);
      const pending = open.some((j) => j.type === 'sync' && j.source === src.name);
      const slot = lastSlot(g.points, now);
      if (slot && slot.getTime() >= Date.parse(src.created) && (!src.lastPointSlot || src.lastPointSlot < slot.toISOString())) {
        s.db.markPointSlot(src.name, slot.toISOString());
        if (!pending) s.requestSync(src.name, 'schedule:point');
      } else if (g.syncEveryMs && !pending) {
        const last = src.lastSync ? Date.parse(src.lastSync) : 0;
        if (now.getTime() - last >= g.syncEveryMs) s.requestSync(src.name, 'schedule');
      }
      const rpo = rpoState(g, new Date(src.created), this.newest(src.name), now);
      const key = `rpo:${src.name}`;
      if (rpo.compliant) s.alerts.resolve(key);
      else s.alerts.raise(key, 'rpo-missed', 'warning', src.name, `source '${src.name}' missed its recovery point objective: ${rpo.reason}`);
    }
    for (const a of s.db.agents()) {
      if (a.revoked) continue;
      if (s.agentStatus(a) === 'offline' && a.lastSeen) {
        s.alerts.raise(`agent-offline:${a.id}`, 'agent-offline', 'critical', a.name, `agent '${a.name}' has not been heard from since ${a.lastSeen}`);
        for (const j of open) {
          if (j.agentId === a.id && j.state === 'running') s.failJob(j, { code: 'SERVER_UNREACHABLE', message: `agent '${a.name}' went offline during the job` });
        }
      }
    }
    s.queue.wake(); // retries whose time has come
    s.maintenance.tick(now);
    s.drills.tick(now);
  }

  /** The newest moment a source can be restored to: its latest point, or a log shipped after it. */
  private newest(source: string): Date | undefined {
    const c = this.server.pool.catalog;
    const times = [c.latestPointHead(source)?.time, c.lastLog(source)?.time].filter((t): t is string => t !== undefined).map((t) => Date.parse(t));
    return times.length > 0 ? new Date(Math.max(...times)) : undefined;
  }
}
