/**
 * Previous versions for end users: search a file by name or path, see every version of it across
 * recovery points (time, size, changed or unchanged), restore one beside the original or download it.
 * The server shows only what the signed-in account could read at each recovery point.
 */
import { useState, type FormEvent, type ReactElement } from 'react';
import { api, type PointVersion, type User } from '../api';
import { bytes, mtime, time } from '../format';

interface Hit {
  source: string;
  path: string;
  absPath: string;
  type: string;
  size: number;
  latest: string;
  versions: number;
  changes: number;
}

interface RestoreState {
  job: string;
  restoredAs: string;
  state: string;
  error?: string;
}

export function Portal({ user }: { user: User }): ReactElement {
  const [q, setQ] = useState('');
  const [hits, setHits] = useState<Hit[] | undefined>(undefined);
  const [open, setOpen] = useState<Hit | undefined>(undefined);
  const [versions, setVersions] = useState<PointVersion[]>([]);
  const [restores, setRestores] = useState<Record<string, RestoreState>>({});
  const [error, setError] = useState('');

  const search = (e: FormEvent): void => {
    e.preventDefault();
    setError('');
    setOpen(undefined);
    api<Hit[]>('GET', `/api/v1/portal/search?q=${encodeURIComponent(q)}`).then(setHits).catch((err: Error) => setError(err.message));
  };

  const show = (h: Hit): void => {
    setOpen(h);
    api<{ versions: PointVersion[] }>('GET', `/api/v1/portal/versions?source=${encodeURIComponent(h.source)}&path=${encodeURIComponent(h.path)}`)
      .then((r) => setVersions([...r.versions].reverse()))
      .catch((err: Error) => setError(err.message));
  };

  const follow = (point: string, r: RestoreState): void => {
    setRestores((all) => ({ ...all, [point]: r }));
    if (r.state === 'succeeded' || r.state === 'failed' || r.state === 'cancelled') return;
    setTimeout(() => {
      api<{ state: string; error: { message: string } | null }>('GET', `/api/v1/portal/jobs/${r.job}`)
        .then((j) => follow(point, { ...r, state: j.state, error: j.error?.message }))
        .catch((err: Error) => follow(point, { ...r, state: 'failed', error: err.message }));
    }, 1000);
  };

  const restore = (h: Hit, v: PointVersion): void => {
    api<{ job: string; restoredAs: string; state: string }>('POST', '/api/v1/portal/restore', { source: h.source, path: h.path, point: v.point })
      .then((r) => follow(v.point, r))
      .catch((err: Error) => setError(err.message));
  };

  const dl = (h: Hit, v: PointVersion): string => `/api/v1/portal/download?source=${encodeURIComponent(h.source)}&path=${encodeURIComponent(h.path)}&point=${v.point}`;

  return (
    <div className="portal">
      <h1>Previous versions</h1>
      <p className="muted">Signed in as {user.name}. You see the files you could read when each recovery point was made.</p>
      <form className="search" onSubmit={search}>
        <input name="q" value={q} placeholder="a file name or a path, e.g. report.docx or /home/you/docs" onChange={(e) => setQ(e.target.value)} />
        <button type="submit" disabled={!q.trim()}>Search</button>
      </form>
      {error && <p className="error">{error}</p>}
      {hits && !open && (
        hits.length === 0 ? <p id="no-hits">No files found that you may read.</p> : (
          <table id="hits">
            <thead><tr><th>File</th><th>Size now</th><th>Latest</th><th>Versions</th></tr></thead>
            <tbody>
              {hits.map((h) => (
                <tr key={`${h.source}:${h.path}`} data-path={h.absPath}>
                  <td><a onClick={() => show(h)}>{h.absPath}</a>{h.type === 'dir' ? '/' : ''}</td>
                  <td>{h.type === 'dir' ? '' : bytes(h.size)}</td>
                  <td>{time(h.latest)}</td>
                  <td>{h.changes} different in {h.versions} points</td>
                </tr>
              ))}
            </tbody>
          </table>
        )
      )}
      {open && (
        <div id="versions">
          <p><a onClick={() => setOpen(undefined)}>← results</a></p>
          <h2 className="mono">{open.absPath}</h2>
          <table>
            <thead><tr><th>Recovery point</th><th>Size</th><th>Modified</th><th>Change</th><th /></tr></thead>
            <tbody>
              {versions.map((v) => {
                const r = restores[v.point];
                const isFile = v.type === 'file' || v.type === 'hardlink';
                return (
                  <tr key={v.point} data-point={v.point} className={v.changed ? 'changed' : 'unchanged'}>
                    <td>{time(v.time)}</td>
                    <td>{isFile ? bytes(v.size) : v.type}</td>
                    <td>{mtime(v.mtimeNs)}</td>
                    <td>{v.changed ? 'changed' : 'unchanged'}</td>
                    <td>
                      {isFile && <a className="download" href={dl(open, v)}>Download</a>}{' '}
                      {isFile && !r && <button className="restore" onClick={() => restore(open, v)}>Restore beside the original</button>}
                      {r && <span className={`restore-state ${r.state}`}>{r.state === 'succeeded' ? `Restored as ${r.restoredAs}` : r.state === 'failed' ? `Failed: ${r.error ?? ''}` : `Restoring… (${r.state})`}</span>}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
