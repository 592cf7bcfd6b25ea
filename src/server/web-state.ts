/**
 * What the web console and the portal add to the protection server: accounts and sessions,
 * the login limiter, the file-version index (DIR/versions.sqlite, derived from the manifests)
 * and pool usage samples. ProtectionServer holds one and tells it when a point commits.
 */
import { join } from 'node:path';
import type { Pool } from '../pool/pool.js';
import type { ControlDb } from './control-db.js';
import { FileVersions, type Log } from './file-versions.js';
import { LoginLimiter } from './login-limiter.js';
import { UsageSamples } from './usage-samples.js';
import { VersionIndex } from './version-index.js';
import { WebAccounts } from './web-accounts.js';

export class WebState {
  readonly accounts: WebAccounts;
  readonly limiter = new LoginLimiter();
  readonly versions: FileVersions;
  readonly usage: UsageSamples;

  constructor(dataDir: string, db: ControlDb, pool: Pool, log: Log) {
    this.accounts = new WebAccounts(db.db);
    this.versions = new FileVersions(new VersionIndex(join(dataDir, 'versions.sqlite')), pool, log);
    this.usage = new UsageSamples(db, pool, log);
    this.usage.start();
    this.versions.kick(); // backfill points committed before the index existed
  }

  /** A recovery point was committed: index it and sample usage, in the background. */
  pointCommitted(): void {
    this.versions.kick();
    this.usage.take();
  }

  async close(): Promise<void> {
    this.usage.stop();
    await this.versions.close();
    this.versions.index.close();
  }
}
