/**
 * Alerts: raised once per key while the condition holds, resolved when it clears. Each change
 * is posted to the webhook, if one is set (a JSON body; failures are logged, never retried into
 * a backlog).
 */
import type { AlertRow, ControlDb } from './control-db.js';

export type Severity = AlertRow['severity'];

export interface AlertLog {
  warn(obj: object, msg: string): void;
}

export class Alerts {
  constructor(
    private readonly db: ControlDb,
    private readonly log: AlertLog,
  ) {}

  raise(key: string, kind: string, severity: Severity, object: string, message: string): void {
    const now = new Date().toISOString();
    const active = this.db.activeAlert(key);
    if (active) {
      if (active.message !== message || active.severity !== severity) {
        this.db.db.prepare('UPDATE alerts SET message = ?, severity = ?, updated = ? WHERE id = ?').run(message, severity, now, active.id);
      }
      return;
    }
    const row = this.db.addAlert({ key, kind, severity, object, message, state: 'active', raised: now, updated: now, resolved: null });
    this.notify('raised', row);
  }

  resolve(key: string): void {
    const active = this.db.activeAlert(key);
    if (!active) return;
    const now = new Date().toISOString();
    this.db.resolveAlert(active.id, now);
    this.notify('resolved', { ...active, state: 'resolved', resolved: now, updated: now });
  }

  private notify(event: 'raised' | 'resolved', alert: AlertRow): void {
    const url = this.db.setting('webhook');
    if (!url) return;
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ event, alert }),
      signal: AbortSignal.timeout(10_000),
    }).then(
      (res) => {
        if (!res.ok) this.log.warn({ url, status: res.status }, 'alert webhook refused the alert');
      },
      (err: unknown) => this.log.warn({ url, err: (err as Error).message }, 'alert webhook unreachable'),
    );
  }
}
