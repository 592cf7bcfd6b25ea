/**
 * One source: its recovery points on a timeline, and the restore wizard: browse a point's tree,
 * choose files and directories, restore them to the original location or to another place on an
 * agent, or download them. Any point that holds a tree (dir, btrfs, and the files of a database
 * source) can be browsed; an image point has no tree.
 */
import { useState, type ReactElement } from 'react';
import { api, type Agent, type BrowseEntry, type Job, type Point, type Source } from '../api';
import { bytes, mode, mtime, time } from '../format';
import { usePoll } from '../poll';
import { StatusBadge } from './dashboard';
import { JobProgress } from '../components/progress';

function Timeline({ points, selected, onSelect }: { points: Point[]; selected?: string; onSelect: (p: Point) => void }): ReactElement {
  const width = 900;
  const height = 70;
  if (points.length === 0) return <p className="muted">No recovery points yet.</p>;
  const ts = points.map((p) => Date.parse(p.time));
  const t0 = Math.min(...ts);
  const t1 = Math.max(...ts, t0 + 1);
  const X = (t: number): number => 20 + ((t - t0) / (t1 - t0)) * (width - 40);
  return (
    <svg className="timeline" viewBox={`0 0 ${width} ${height}`} id="timeline">
      <line x1={20} x2={width - 20} y1={30} y2={30} stroke="#9ca3af" />
      {points.map((p) => (
        <g key={p.id} onClick={() => onSelect(p)} className="tick" data-point={p.id}>
          <title>{`${time(p.time)} · ${bytes(p.logicalBytes)} · ${p.files} entries`}</title>
          <circle cx={X(Date.parse(p.time))} cy={30} r={p.id === selected ? 8 : 6} fill={p.id === selected ? '#2563eb' : '#60a5fa'} />
        </g>
      ))}
      <text x={20} y={60} fontSize="11">{time(points[0]?.time)}</text>
      <text x={width - 20} y={60} fontSize="11" textAnchor="end">{time(points[points.length - 1]?.time)}</text>
    </svg>
  );
}

const parentOf = (p: string): string => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '.');
const absPath = (root: string, p: string): string => (p === '.' ? root : `${root.replace(/\/$/, '')}/${p}`);
const isWithin = (p: string, under: string): boolean => under === '.' || p === under || p.startsWith(`${under}/`);
/** The chosen entries without those inside another chosen one (they come with it). */
const outermost = (paths: string[]): string[] => paths.filter((p) => !paths.some((q) => q !== p && isWithin(p, q)));
/** Database sources: files put back under a running database would corrupt it. */
const isDatabase = (s: Source): boolean => s.kind === 'postgres' || s.kind === 'sqlite';

/**
 * The restore requests for the chosen entries. Another location: one job with every entry (the
 * target is checked once, nothing races). Original location: one job per parent directory, each
 * putting its entries back in that directory (overwrite); their directories are disjoint.
 */
export function restoreRequests(source: Source, point: Point, chosen: string[], where: 'original' | 'other', other: { agent: string; target: string; overwrite: boolean }): Array<Record<string, unknown>> {
  const top = outermost(chosen);
  const one = (paths: string[]): Record<string, unknown> => (paths.length === 1 ? { path: paths[0] } : { paths });
  if (where === 'other') return [{ source: source.name, point: point.id, ...one(top), to: other.target, agent: other.agent, overwrite: other.overwrite }];
  const byParent = new Map<string, string[]>();
  for (const p of top) byParent.set(parentOf(p), [...(byParent.get(parentOf(p)) ?? []), p]);
  return [...byParent].map(([parent, paths]) => ({ source: source.name, point: point.id, ...one(paths), to: absPath(source.path, parent), overwrite: true }));
}

function RestoreWizard({ source, point, agents }: { source: Source; point: Point; agents: Agent[] }): ReactElement {
  const [dir, setDir] = useState('.');
  const [chosen, setChosen] = useState<string[]>([]);
  const [where, setWhere] = useState<'original' | 'other'>(isDatabase(source) ? 'other' : 'original');
  const [agent, setAgent] = useState(source.agent);
  const [target, setTarget] = useState('/tmp/restore');
  const [overwrite, setOverwrite] = useState(false);
  const [jobs, setJobs] = useState<string[]>([]);
  const [error, setError] = useState('');
  const listing = usePoll(() => api<{ entries: BrowseEntry[] }>('GET', `/api/v1/points/${point.id}/browse?path=${encodeURIComponent(dir)}`), 0, [point.id, dir]);
  const jobRows = usePoll(async () => Promise.all(jobs.map((id) => api<Job>('GET', `/api/v1/jobs/${id}`))), jobs.length ? 1000 : 0, [jobs.join()]);

  const toggle = (p: string): void => setChosen(chosen.includes(p) ? chosen.filter((x) => x !== p) : [...chosen, p]);
  const crumbs = dir === '.' ? [] : dir.split('/');

  const restore = async (): Promise<void> => {
    setError('');
    const started: string[] = [];
    try {
      for (const body of restoreRequests(source, point, chosen, where, { agent, target, overwrite })) started.push((await api<Job>('POST', '/api/v1/restores', body)).id);
    } catch (e) {
      setError((e as Error).message);
    }
    setJobs([...jobs, ...started]);
  };

  return (
    <div className="wizard" id="restore-wizard">
      <h2>Restore from {time(point.time)} <span className="muted">({point.id})</span></h2>
      <div className="crumbs">
        <a onClick={() => setDir('.')}>{source.path}</a>
        {crumbs.map((c, i) => (
          <span key={i}> / <a onClick={() => setDir(crumbs.slice(0, i + 1).join('/'))}>{c}</a></span>
        ))}
      </div>
      {listing.error && <p className="error">{listing.error}</p>}
      <table id="browse">
        <thead><tr><th /><th>Name</th><th>Size</th><th>Modified</th><th>Mode</th><th>Owner</th><th /></tr></thead>
        <tbody>
          {dir !== '.' && <tr><td /><td><a onClick={() => setDir(parentOf(dir))}>..</a></td><td colSpan={5} /></tr>}
          {listing.data?.entries.map((e) => (
            <tr key={e.path} data-path={e.path}>
              <td><input type="checkbox" aria-label={`choose ${e.name}`} checked={chosen.includes(e.path)} onChange={() => toggle(e.path)} /></td>
              <td>{e.type === 'dir' ? <a className="dir" onClick={() => setDir(e.path)}>{e.name}/</a> : e.name}</td>
              <td>{e.type === 'dir' ? '' : bytes(e.size)}</td>
              <td>{mtime(e.mtimeNs)}</td>
              <td className="mono">{mode(e.type, e.mode)}</td>
              <td>{e.uid}:{e.gid}</td>
              <td>{(e.type === 'file' || e.type === 'hardlink' || e.type === 'dir') && <a className="download" href={`/api/v1/points/${point.id}/download?path=${encodeURIComponent(e.path)}`}>{e.type === 'dir' ? 'Download (.tar)' : 'Download'}</a>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <div className="restore-options">
        <p>Chosen: {chosen.length === 0 ? <span className="muted">nothing yet</span> : chosen.join(', ')}</p>
        <label className="check"><input type="radio" name="where" value="original" disabled={isDatabase(source)} checked={where === 'original'} onChange={() => setWhere('original')} /> Original location on {source.agent} (replaces what is there){isDatabase(source) && ' — not for a database source'}</label>
        <label className="check"><input type="radio" name="where" value="other" checked={where === 'other'} onChange={() => setWhere('other')} /> Another location</label>
        {where === 'other' && (
          <div className="inline-form">
            <label>Agent <select name="restore-agent" value={agent} onChange={(e) => setAgent(e.target.value)}>{agents.filter((a) => a.status !== 'revoked').map((a) => <option key={a.name}>{a.name}</option>)}</select></label>
            <label>Directory <input name="restore-target" value={target} onChange={(e) => setTarget(e.target.value)} /></label>
            <label className="check"><input type="checkbox" checked={overwrite} onChange={(e) => setOverwrite(e.target.checked)} /> into a non-empty directory</label>
          </div>
        )}
        <button id="restore-button" disabled={chosen.length === 0} onClick={() => void restore()}>Restore {chosen.length || ''}</button>
        {chosen.length > 0 && (
          <a id="download-chosen" className="download" href={`/api/v1/points/${point.id}/download?${chosen.map((p) => `path=${encodeURIComponent(p)}`).join('&')}`}>
            {chosen.length > 1 ? `Download chosen (one .tar)` : 'Download chosen'}
          </a>
        )}
        {error && <p className="error">{error}</p>}
      </div>
      {jobRows.data && jobRows.data.length > 0 && (
        <table id="restore-jobs">
          <tbody>
            {jobRows.data.map((j) => (
              <tr key={j.id} data-state={j.state}>
                <td>{Array.isArray(j.params.subPaths) ? j.params.subPaths.join(', ') : typeof j.params.subPath === 'string' ? j.params.subPath : '.'} → {typeof j.params.target === 'string' ? j.params.target : ''}</td>
                <td><StatusBadge status={j.state} /></td>
                <td className="wide">{j.state === 'running' ? <JobProgress job={j} /> : j.error?.message ?? (j.result ? `${String(j.result.entries)} entries, ${bytes(Number(j.result.bytes ?? 0))}` : '')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

export function SourcePage({ name }: { name: string }): ReactElement {
  const enc = encodeURIComponent(name);
  const { data, error, reload } = usePoll(
    async () => {
      const [source, points, agents, jobs] = await Promise.all([
        api<Source>('GET', `/api/v1/sources/${enc}`),
        api<Point[]>('GET', `/api/v1/sources/${enc}/points`),
        api<Agent[]>('GET', '/api/v1/agents'),
        api<Job[]>('GET', `/api/v1/jobs?source=${enc}&limit=10`),
      ]);
      return { source, points, agents, jobs };
    },
    2000,
    [name],
  );
  const [point, setPoint] = useState<Point | undefined>(undefined);
  if (!data) return <p>{error || 'Loading…'}</p>;
  const s = data.source;
  const sync = (): void => {
    api('POST', `/api/v1/sources/${enc}/sync`).then(reload).catch((e: Error) => alert(e.message));
  };
  return (
    <div>
      <h1>{s.name} <StatusBadge status={s.status} /></h1>
      <p>{s.kind} source <span className="mono">{s.path}</span> on <b>{s.agent}</b>, group <b>{s.group}</b> · {data.points.length} recovery points <button onClick={sync}>Sync now</button></p>
      {(s.kind === 'postgres' || s.kind === 'sqlite') && s.recoverable && (
        <p id="recoverable">Recoverable to any time from <b>{time(s.recoverable.from)}</b> to <b>{time(s.recoverable.to)}</b> (recovery points and shipped logs)</p>
      )}
      {s.lastDrill && (
        <p id="last-drill" className={s.lastDrill.ok ? '' : 'error'}>Last recoverability drill {time(s.lastDrill.time)}: {s.lastDrill.ok ? 'passed' : `FAILED: ${s.lastDrill.detail}`}</p>
      )}
      {data.jobs.filter((j) => j.state === 'running' || j.state === 'queued').map((j) => <div key={j.id}>{j.type}: <JobProgress job={j} /></div>)}
      <h2>Recovery points</h2>
      <Timeline points={data.points} selected={point?.id} onSelect={setPoint} />
      <table id="points">
        <thead><tr><th>Time</th><th>Size</th><th>Entries</th><th>New</th><th /></tr></thead>
        <tbody>
          {[...data.points].reverse().slice(0, 20).map((p) => (
            <tr key={p.id} className={p.id === point?.id ? 'selected' : ''}>
              <td>{time(p.time)}</td><td>{bytes(p.logicalBytes)}</td><td>{p.files}</td><td>{bytes(p.newBytes)}</td>
              <td>{p.kind === 'dir' && <button data-point={p.id} onClick={() => setPoint(p)}>Browse</button>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {point?.kind === 'dir' && <RestoreWizard key={point.id} source={s} point={point} agents={data.agents} />}
    </div>
  );
}
