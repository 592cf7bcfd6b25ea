/**
 * Runs an external tool (qemu-img, btrfs) without a shell and returns its standard output; a
 * non-zero exit throws with its standard error. A missing tool says which package ships it.
 * Started without fork (native/spawn.ts): tools run in the middle of syncs.
 */
import { HoldfastError } from '../../core/errors.js';
import { spawnChild } from '../../native/spawn.js';

const PACKAGE: Record<string, string> = { 'qemu-img': 'qemu-utils', 'qemu-nbd': 'qemu-utils', btrfs: 'btrfs-progs' };

export function runTool(cmd: string, args: string[], signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawnChild(cmd, args, { signal, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => out.push(d));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    let failed = false;
    child.on('error', (err: NodeJS.ErrnoException) => {
      failed = true;
      if (err.code === 'ENOENT') reject(new HoldfastError('SOURCE_UNREADABLE', `${cmd} is not installed (Debian package ${PACKAGE[cmd] ?? cmd})`));
      else if (signal?.aborted) reject(new HoldfastError('ABORTED', `${cmd} aborted`));
      else reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}`));
    });
    child.on('close', (code: number | null, sig: NodeJS.Signals | null) => {
      if (failed) return;
      if (code === 0) return resolve(Buffer.concat(out).toString('utf8'));
      if (signal?.aborted) return reject(new HoldfastError('ABORTED', `${cmd} aborted`));
      reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || (sig ? `killed by ${sig}` : `exit status ${code}`)}`));
    });
  });
}
