/**
 * The server's data directory, made on first start: the storage pool, the control catalog,
 * the certificate authority, the server's TLS certificate and the admin token.
 *
 *   DIR/pool/            the storage pool (packs, index, points, catalog)
 *   DIR/control.sqlite   agents, groups, sources, jobs, alerts
 *   DIR/ca.pem, ca-key.pem, server.pem, server-key.pem
 *   DIR/admin-token      hfa1.<secret>.<ca fingerprint>, mode 0600
 */
import { access, chmod, mkdir, readFile } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { errnoCode } from '../core/errors.js';
import { certFingerprint, formatAdminToken } from '../core/tokens.js';
import { Pool } from '../pool/pool.js';
import { writeFileDurable } from '../pool/durable.js';
import { createCa, issueServerCert, type CertKey } from './pki.js';

export interface ServerData {
  dir: string;
  poolDir: string;
  ca: CertKey;
  tls: CertKey;
  caFingerprint: string;
  /** the admin token, only on the start that created it (to print once) */
  newAdminToken?: string;
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw err;
  }
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export interface AdminHashStore {
  get(): string | undefined;
  set(hash: string): void;
}

export async function makeDataDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
}

/** `dir` exists (makeDataDir); the admin token's hash is stored before the token file is written. */
export async function prepareServerData(dir: string, listenHost: string, adminHash: AdminHashStore): Promise<ServerData> {
  const poolDir = join(dir, 'pool');
  if (!(await exists(join(poolDir, 'config.json')))) await Pool.init(poolDir);
  const f = (n: string): string => join(dir, n);
  let ca: CertKey;
  if (await exists(f('ca.pem'))) ca = { cert: await readFile(f('ca.pem'), 'utf8'), key: await readFile(f('ca-key.pem'), 'utf8') };
  else {
    ca = await createCa();
    await writeFileDurable(f('ca-key.pem'), ca.key, 0o600);
    await writeFileDurable(f('ca.pem'), ca.cert, 0o644);
  }
  let tls: CertKey;
  if (await exists(f('server.pem'))) tls = { cert: await readFile(f('server.pem'), 'utf8'), key: await readFile(f('server-key.pem'), 'utf8') };
  else {
    tls = await issueServerCert(ca, [listenHost]);
    await writeFileDurable(f('server-key.pem'), tls.key, 0o600);
    await writeFileDurable(f('server.pem'), tls.cert, 0o644);
  }
  const caFingerprint = certFingerprint(ca.cert);
  const data: ServerData = { dir, poolDir, ca, tls, caFingerprint };
  if (!adminHash.get() || !(await exists(f('admin-token')))) {
    const secret = randomBytes(32).toString('base64url');
    const token = formatAdminToken({ secret, caFingerprint });
    adminHash.set(hashSecret(secret));
    await writeFileDurable(f('admin-token'), `${token}\n`, 0o600);
    data.newAdminToken = token;
  }
  return data;
}
