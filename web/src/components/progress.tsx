/** A job's live progress: a bar when the total is known, counters otherwise. */
import type { ReactElement } from 'react';
import type { Job } from '../api';
import { bytes } from '../format';

export function JobProgress({ job }: { job: Job }): ReactElement {
  const p = job.progress ?? {};
  const done = p.bytesDone ?? p.readBytes ?? 0;
  const pct = p.totalBytes ? Math.min(100, Math.round((100 * done) / p.totalBytes)) : undefined;
  return (
    <div className="progress" data-job={job.id}>
      <div className="bar">
        <div className="fill" style={{ width: `${pct ?? (job.state === 'running' ? 5 : 0)}%` }} />
      </div>
      <span className="muted">
        {p.phase ?? job.state}
        {pct !== undefined ? ` ${pct}%` : ''} · {bytes(done)}
        {p.totalBytes ? ` of ${bytes(p.totalBytes)}` : ''}
        {p.entries !== undefined ? ` · ${p.entries} entries` : ''}
        {p.sentBytes !== undefined ? ` · ${bytes(p.sentBytes)} sent` : ''}
      </span>
    </div>
  );
}
