/**
 * DPM 2007's default disk allocation for a file data source, used as a source's initial quota:
 * replica volume = 1.5 x data size; recovery point volume = data size x retention days x 2% +
 * 1600 MB (MB as DPM counts it, 2^20 bytes). Pure functions.
 */
const MB = 1024 * 1024;

export interface Allocation {
  replicaBytes: number;
  recoveryPointBytes: number;
  totalBytes: number;
}

export function defaultAllocation(dataBytes: number, retentionDays: number): Allocation {
  if (!(dataBytes >= 0) || !(retentionDays >= 0)) throw new RangeError('data size and retention days must not be negative');
  const replicaBytes = Math.ceil(dataBytes * 1.5);
  const recoveryPointBytes = Math.ceil(dataBytes * retentionDays * 0.02) + 1600 * MB;
  return { replicaBytes, recoveryPointBytes, totalBytes: replicaBytes + recoveryPointBytes };
}
