/**
 * Runs an external tool (qemu-img, btrfs) without a shell and returns its standard output; a
 * non-zero exit throws with its standard error. A missing tool says which package ships it.
 */
import { execFile } from 'node:child_process';
import { HoldfastError } from '../../core/errors.js';

const PACKAGE: Record<string, string> = { 'qemu-img': 'qemu-utils', 'qemu-nbd': 'qemu-utils', btrfs: 'btrfs-progs' };

export function runTool(cmd: string, args: string[], signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { signal, maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(new HoldfastError('SOURCE_UNREADABLE', `${cmd} is not installed (Debian package ${PACKAGE[cmd] ?? cmd})`));
      }
      if (signal?.aborted) return reject(new HoldfastError('ABORTED', `${cmd} aborted`));
      reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`));
    });
  });
}
