/** Jobs (recent, with live progress) and alerts (active and resolved). */
import type { ReactElement } from 'react';
import { api, type Alert, type Job } from '../api';
import { bytes, time } from '../format';
import { usePoll } from '../poll';
import { StatusBadge } from './dashboard';
import { JobProgress } from '../components/progress';

export function JobsAlerts(): ReactElement {
  const { data, error } = usePoll(async () => {
    const [jobs, alerts] = await Promise.all([api<Job[]>('GET', '/api/v1/jobs?limit=100'), api<Alert[]>('GET', '/api/v1/alerts')]);
    return { jobs, alerts };
  }, 2000);
  if (!data) return <p>{error || 'Loading…'}</p>;
  return (
    <div>
      <h1>Jobs</h1>
      <table id="jobs">
        <thead><tr><th>Created</th><th>Type</th><th>Source</th><th>Origin</th><th>State</th><th>Details</th></tr></thead>
        <tbody>
          {data.jobs.map((j) => (
            <tr key={j.id} data-job={j.id}>
              <td>{time(j.created)}</td><td>{j.type}</td><td>{j.source}</td><td>{j.origin}</td><td><StatusBadge status={j.state} /></td>
              <td className="wide">
                {j.state === 'running' ? <JobProgress job={j} /> : j.error ? <span className="error">{j.error.message}</span> : j.result ? (
                  <span className="muted">
                    {j.type === 'sync' ? `point ${String(j.result.point)} · read ${bytes(Number(j.result.readBytes ?? 0))} · new ${bytes(Number(j.result.newBytes ?? 0))}` : `${String(j.result.entries)} entries to ${String(j.result.target)}`}
                  </span>
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h1>Alerts</h1>
      <table id="alerts">
        <thead><tr><th>Raised</th><th>Severity</th><th>Kind</th><th>Object</th><th>Message</th><th>State</th></tr></thead>
        <tbody>
          {data.alerts.map((a) => (
            <tr key={a.id} className={a.state} data-kind={a.kind}>
              <td>{time(a.raised)}</td><td className={a.severity}>{a.severity}</td><td>{a.kind}</td><td>{a.object}</td><td>{a.message}</td><td>{a.state}{a.resolved ? ` ${time(a.resolved)}` : ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
