/** Protection groups and sources: create and edit groups, add sources on an agent. */
import { useState, type FormEvent, type ReactElement } from 'react';
import { api, type Agent, type Group, type Source } from '../api';
import { bytes, duration } from '../format';
import { usePoll } from '../poll';
import { StatusBadge } from './dashboard';

interface Data {
  groups: Group[];
  sources: Source[];
  agents: Agent[];
}

const load = async (): Promise<Data> => {
  const [groups, sources, agents] = await Promise.all([api<Group[]>('GET', '/api/v1/groups'), api<Source[]>('GET', '/api/v1/sources'), api<Agent[]>('GET', '/api/v1/agents')]);
  return { groups, sources, agents };
};

interface GroupForm {
  name: string;
  syncEvery: string;
  points: string;
  retain: string;
  compress: boolean;
  throttle: string;
}

const formOf = (g?: Group): GroupForm => ({
  name: g?.name ?? '',
  syncEvery: g ? duration(g.syncEveryMs) : '15m',
  points: g?.points.join(',') ?? '',
  retain: g ? duration(g.retainMs) : '14d',
  compress: g?.compress ?? true,
  throttle: g?.throttleBps ? `${bytes(g.throttleBps).replace(' ', '')}/s` : 'off',
});

function GroupEditor({ group, onDone }: { group?: Group; onDone: () => void }): ReactElement {
  const [f, setF] = useState<GroupForm>(formOf(group));
  const [error, setError] = useState('');
  const set = (k: keyof GroupForm, v: string | boolean): void => setF({ ...f, [k]: v });
  const submit = (e: FormEvent): void => {
    e.preventDefault();
    const body = { syncEvery: f.syncEvery, points: f.points.split(',').map((x) => x.trim()).filter(Boolean), retain: f.retain, compress: f.compress, throttle: f.throttle };
    const req = group ? api('PATCH', `/api/v1/groups/${encodeURIComponent(group.name)}`, body) : api('POST', '/api/v1/groups', { name: f.name, ...body });
    req.then(onDone).catch((err: Error) => setError(err.message));
  };
  return (
    <form className="inline-form" onSubmit={submit} id={group ? `edit-${group.name}` : 'new-group'}>
      {!group && <label>Name <input name="group-name" value={f.name} onChange={(e) => set('name', e.target.value)} /></label>}
      <label>Sync every <input name="sync-every" value={f.syncEvery} onChange={(e) => set('syncEvery', e.target.value)} size={6} /></label>
      <label>Point times <input name="points" value={f.points} placeholder="08:00,12:00,20:00" onChange={(e) => set('points', e.target.value)} /></label>
      <label>Retain <input name="retain" value={f.retain} onChange={(e) => set('retain', e.target.value)} size={5} /></label>
      <label>Throttle <input name="throttle" value={f.throttle} onChange={(e) => set('throttle', e.target.value)} size={9} /></label>
      <label className="check"><input type="checkbox" checked={f.compress} onChange={(e) => set('compress', e.target.checked)} /> compress</label>
      <button type="submit">{group ? 'Save' : 'Create group'}</button>
      {error && <span className="error">{error}</span>}
    </form>
  );
}

function SourceAdder({ data, onDone }: { data: Data; onDone: () => void }): ReactElement {
  const [f, setF] = useState({ name: '', group: data.groups[0]?.name ?? '', agent: data.agents[0]?.name ?? '', kind: 'dir', path: '' });
  const [error, setError] = useState('');
  const submit = (e: FormEvent): void => {
    e.preventDefault();
    api('POST', '/api/v1/sources', f).then(onDone).catch((err: Error) => setError(err.message));
  };
  return (
    <form className="inline-form" onSubmit={submit} id="new-source">
      <label>Name <input name="source-name" value={f.name} onChange={(e) => setF({ ...f, name: e.target.value })} /></label>
      <label>Group <select name="group" value={f.group} onChange={(e) => setF({ ...f, group: e.target.value })}>{data.groups.map((g) => <option key={g.name}>{g.name}</option>)}</select></label>
      <label>Agent <select name="agent" value={f.agent} onChange={(e) => setF({ ...f, agent: e.target.value })}>{data.agents.filter((a) => a.status !== 'revoked').map((a) => <option key={a.name}>{a.name}</option>)}</select></label>
      <label>Kind <select name="kind" value={f.kind} onChange={(e) => setF({ ...f, kind: e.target.value })}><option>dir</option><option>image</option></select></label>
      <label>Path on the agent <input name="path" value={f.path} placeholder="/srv/data" onChange={(e) => setF({ ...f, path: e.target.value })} /></label>
      <button type="submit">Add source</button>
      {error && <span className="error">{error}</span>}
    </form>
  );
}

export function Groups(): ReactElement {
  const { data, error, reload } = usePoll(load, 0);
  const [editing, setEditing] = useState<string | null>(null);
  if (!data) return <p>{error || 'Loading…'}</p>;
  return (
    <div>
      <h1>Protection groups</h1>
      <table id="groups">
        <thead><tr><th>Group</th><th>Sync every</th><th>Point times</th><th>Retain</th><th>Compress</th><th>Throttle</th><th>Sources</th><th /></tr></thead>
        <tbody>
          {data.groups.map((g) => (
            <tr key={g.name} data-group={g.name}>
              {editing === g.name ? (
                <td colSpan={8}><b>{g.name}</b> <GroupEditor group={g} onDone={() => { setEditing(null); reload(); }} /></td>
              ) : (
                <>
                  <td>{g.name}</td><td>{duration(g.syncEveryMs)}</td><td>{g.points.join(', ') || '—'}</td><td>{duration(g.retainMs)}</td>
                  <td>{g.compress ? 'on' : 'off'}</td><td>{g.throttleBps ? `${bytes(g.throttleBps)}/s` : 'off'}</td>
                  <td>{data.sources.filter((s) => s.group === g.name).length}</td>
                  <td><button onClick={() => setEditing(g.name)}>Edit</button></td>
                </>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      <h2>New group</h2>
      <GroupEditor onDone={reload} />
      <h1>Sources</h1>
      <table id="source-list">
        <thead><tr><th>Source</th><th>Group</th><th>Agent</th><th>Kind</th><th>Path</th><th>Points</th><th>Status</th></tr></thead>
        <tbody>
          {data.sources.map((s) => (
            <tr key={s.name}>
              <td><a href={`#/sources/${encodeURIComponent(s.name)}`}>{s.name}</a></td><td>{s.group}</td><td>{s.agent}</td><td>{s.kind}</td><td>{s.path}</td><td>{s.points}</td><td><StatusBadge status={s.status} /></td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Add a source on an agent</h2>
      {data.groups.length === 0 ? <p className="muted">Create a group first.</p> : <SourceAdder data={data} onDone={reload} />}
    </div>
  );
}
