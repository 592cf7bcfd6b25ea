/** Dashboard: agents, sources with protection status and RPO compliance, running jobs with live progress, active alerts. */
import type { ReactElement } from 'react';
import { api, type Agent, type Alert, type Job, type Source } from '../api';
import { ago, time } from '../format';
import { usePoll } from '../poll';
import { JobProgress } from '../components/progress';

interface Data {
  agents: Agent[];
  sources: Source[];
  alerts: Alert[];
  jobs: Job[];
}

const load = async (): Promise<Data> => {
  const [agents, sources, alerts, running, queued] = await Promise.all([
    api<Agent[]>('GET', '/api/v1/agents'),
    api<Source[]>('GET', '/api/v1/sources'),
    api<Alert[]>('GET', '/api/v1/alerts?state=active'),
    api<Job[]>('GET', '/api/v1/jobs?state=running'),
    api<Job[]>('GET', '/api/v1/jobs?state=queued'),
  ]);
  return { agents, sources, alerts, jobs: [...running, ...queued] };
};

export function StatusBadge({ status }: { status: string }): ReactElement {
  return <span className={`badge ${status}`}>{status}</span>;
}

export function Dashboard(): ReactElement {
  const { data, error, reload } = usePoll(load, 1000);
  if (!data) return <p>{error || 'Loading…'}</p>;
  const online = data.agents.filter((a) => a.status === 'online').length;
  const compliant = data.sources.filter((s) => s.rpo?.compliant).length;
  const sync = (name: string): void => {
    api('POST', `/api/v1/sources/${encodeURIComponent(name)}/sync`).then(reload).catch((e: Error) => alert(e.message));
  };
  return (
    <div className="dashboard">
      <h1>Dashboard</h1>
      {error && <p className="error">{error}</p>}
      <div className="cards">
        <div className="card" id="card-agents">
          <b>{online}</b> of {data.agents.length} agents online
          <div className="muted">{data.agents.filter((a) => a.status !== 'online').map((a) => `${a.name} (${a.status})`).join(', ') || 'none offline'}</div>
        </div>
        <div className="card" id="card-rpo">
          <b>{compliant}</b> of {data.sources.length} sources meet their RPO
        </div>
        <div className={`card ${data.alerts.length ? 'warn' : ''}`} id="card-alerts">
          <b>{data.alerts.length}</b> active alerts
        </div>
        <div className="card" id="card-jobs">
          <b>{data.jobs.filter((j) => j.state === 'running').length}</b> jobs running, {data.jobs.filter((j) => j.state === 'queued').length} queued
        </div>
      </div>

      <h2>Sources</h2>
      <table id="sources">
        <thead>
          <tr><th>Source</th><th>Group</th><th>Agent</th><th>Status</th><th>Last good point</th><th>RPO</th><th /></tr>
        </thead>
        <tbody>
          {data.sources.map((s) => (
            <tr key={s.name} data-source={s.name}>
              <td><a href={`#/sources/${encodeURIComponent(s.name)}`}>{s.name}</a><div className="muted">{s.path}</div></td>
              <td>{s.group}</td>
              <td>{s.agent}</td>
              <td className="status"><StatusBadge status={s.status} /></td>
              <td className="last-point" title={time(s.latestPoint?.time)} data-time={s.latestPoint?.time}>{ago(s.latestPoint?.time)}</td>
              <td className="rpo">{s.rpo ? (s.rpo.compliant ? '✔ met' : '✘ missed') : '—'}</td>
              <td><button onClick={() => sync(s.name)}>Sync now</button></td>
            </tr>
          ))}
        </tbody>
      </table>

      <h2>Running jobs</h2>
      {data.jobs.length === 0 ? <p className="muted" id="no-jobs">No jobs running.</p> : (
        <table id="running-jobs">
          <tbody>
            {data.jobs.map((j) => (
              <tr key={j.id}>
                <td>{j.type} <b>{j.source}</b><div className="muted">{j.origin} · {j.id}</div></td>
                <td className="wide"><JobProgress job={j} /></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      <h2>Active alerts</h2>
      {data.alerts.length === 0 ? <p className="muted">No active alerts.</p> : (
        <ul className="alerts" id="active-alerts">
          {data.alerts.map((a) => (
            <li key={a.id} className={a.severity} data-kind={a.kind}><b>{a.severity}</b> {a.message} <span className="muted">since {time(a.raised)}</span></li>
          ))}
        </ul>
      )}
    </div>
  );
}
