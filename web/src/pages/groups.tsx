/** Protection groups and sources: create and edit groups, add sources on an agent and edit them. */
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

const KINDS: Array<[Source['kind'], string]> = [
  ['dir', 'dir (a directory tree)'],
  ['image', 'image (a disk image file)'],
  ['btrfs', 'btrfs (a subvolume, from snapshots)'],
  ['postgres', 'postgres (a data directory)'],
  ['sqlite', 'sqlite (a database file)'],
];

/** The change trackers the server accepts per kind (server/source-options.ts). */
const TRACKERS: Record<Source['kind'], string[]> = {
  dir: ['auto', 'full'],
  image: ['auto', 'full', 'qcow2-bitmap'],
  btrfs: ['auto', 'full', 'btrfs'],
  postgres: ['auto', 'full'],
  sqlite: ['auto', 'full'],
};

/** The kind-specific fields of the add and edit forms. */
interface KindFields {
  snapshotDir: string;
  connect: string;
  pgBin: string;
  ship: string;
}

function KindInputs({ kind, f, set }: { kind: Source['kind']; f: KindFields; set: (k: keyof KindFields, v: string) => void }): ReactElement | null {
  if (kind === 'btrfs') return <label>Snapshot directory <input name="snapshot-dir" value={f.snapshotDir} placeholder="SUBVOLUME/.holdfast-snapshots" onChange={(e) => set('snapshotDir', e.target.value)} /></label>;
  if (kind === 'postgres') {
    return (
      <>
        <label>Connection (libpq) <input name="connect" value={f.connect} placeholder="postgresql://postgres@/postgres?host=/run/postgresql" onChange={(e) => set('connect', e.target.value)} /></label>
        <label>pg_ctl directory <input name="pg-bin" value={f.pgBin} placeholder="found on the host" onChange={(e) => set('pgBin', e.target.value)} /></label>
      </>
    );
  }
  if (kind === 'sqlite') {
    return (
      <label>Ship WAL <select name="ship" value={f.ship} onChange={(e) => set('ship', e.target.value)}><option value="continuous">continuously</option><option value="frequency">at the sync frequency</option></select></label>
    );
  }
  return null;
}

function SourceAdder({ data, onDone }: { data: Data; onDone: () => void }): ReactElement {
  const [f, setF] = useState({ name: '', group: data.groups[0]?.name ?? '', agent: data.agents[0]?.name ?? '', kind: 'dir' as Source['kind'], path: '', snapshotDir: '', connect: '', pgBin: '', ship: 'continuous' });
  const [error, setError] = useState('');
  const submit = (e: FormEvent): void => {
    e.preventDefault();
    const options = f.kind === 'btrfs' && f.snapshotDir ? { snapshotDir: f.snapshotDir }
      : f.kind === 'postgres' ? { postgres: { connect: f.connect, ...(f.pgBin ? { bin: f.pgBin } : {}) } }
      : f.kind === 'sqlite' ? { sqlite: { ship: f.ship } }
      : {};
    api('POST', '/api/v1/sources', { name: f.name, group: f.group, agent: f.agent, kind: f.kind, path: f.path, options }).then(onDone).catch((err: Error) => setError(err.message));
  };
  return (
    <form className="inline-form" onSubmit={submit} id="new-source">
      <label>Name <input name="source-name" value={f.name} onChange={(e) => setF({ ...f, name: e.target.value })} /></label>
      <label>Group <select name="group" value={f.group} onChange={(e) => setF({ ...f, group: e.target.value })}>{data.groups.map((g) => <option key={g.name}>{g.name}</option>)}</select></label>
      <label>Agent <select name="agent" value={f.agent} onChange={(e) => setF({ ...f, agent: e.target.value })}>{data.agents.filter((a) => a.status !== 'revoked').map((a) => <option key={a.name}>{a.name}</option>)}</select></label>
      <label>Kind <select name="kind" value={f.kind} onChange={(e) => setF({ ...f, kind: e.target.value as Source['kind'] })}>{KINDS.map(([k, label]) => <option key={k} value={k}>{label}</option>)}</select></label>
      <label>Path on the agent <input name="path" value={f.path} placeholder={f.kind === 'sqlite' || f.kind === 'image' ? '/srv/app.db' : '/srv/data'} onChange={(e) => setF({ ...f, path: e.target.value })} /></label>
      <KindInputs kind={f.kind} f={f} set={(k, v) => setF({ ...f, [k]: v })} />
      <button type="submit">Add source</button>
      {error && <span className="error">{error}</span>}
    </form>
  );
}

/** Edits a source: its group and how its agent reads it. Name, agent, kind and path stay. */
function SourceEditor({ source, groups, onDone }: { source: Source; groups: Group[]; onDone: () => void }): ReactElement {
  const o = source.options ?? {};
  const [f, setF] = useState({
    group: source.group, tracker: o.tracker ?? 'auto', preSnapshot: o.preSnapshot ?? '', postSnapshot: o.postSnapshot ?? '',
    snapshotDir: o.snapshotDir ?? '', connect: o.postgres?.connect ?? '', pgBin: o.postgres?.bin ?? '', ship: o.sqlite?.ship ?? 'continuous',
  });
  const [error, setError] = useState('');
  const submit = (e: FormEvent): void => {
    e.preventDefault();
    const text = (v: string): string | null => v || null; // an emptied field removes the option
    const options = {
      tracker: f.tracker, preSnapshot: text(f.preSnapshot), postSnapshot: text(f.postSnapshot),
      ...(source.kind === 'btrfs' ? { snapshotDir: text(f.snapshotDir) } : {}),
      ...(source.kind === 'postgres' ? { postgres: { connect: f.connect, ...(f.pgBin ? { bin: f.pgBin } : {}) } } : {}),
      ...(source.kind === 'sqlite' ? { sqlite: { ship: f.ship } } : {}),
    };
    api('PATCH', `/api/v1/sources/${encodeURIComponent(source.name)}`, { group: f.group, options }).then(onDone).catch((err: Error) => setError(err.message));
  };
  return (
    <form className="inline-form" onSubmit={submit} id={`edit-source-${source.name}`}>
      <label>Group <select name="group" value={f.group} onChange={(e) => setF({ ...f, group: e.target.value })}>{groups.map((g) => <option key={g.name}>{g.name}</option>)}</select></label>
      <label>Tracker <select name="tracker" value={f.tracker} onChange={(e) => setF({ ...f, tracker: e.target.value as typeof f.tracker })}>{TRACKERS[source.kind].map((t) => <option key={t}>{t}</option>)}</select></label>
      <label>Before snapshot <input name="pre-snapshot" value={f.preSnapshot} placeholder="command" onChange={(e) => setF({ ...f, preSnapshot: e.target.value })} /></label>
      <label>After snapshot <input name="post-snapshot" value={f.postSnapshot} placeholder="command" onChange={(e) => setF({ ...f, postSnapshot: e.target.value })} /></label>
      <KindInputs kind={source.kind} f={f} set={(k, v) => setF({ ...f, [k]: v })} />
      <button type="submit">Save</button>
      {error && <span className="error">{error}</span>}
    </form>
  );
}

export function Groups(): ReactElement {
  const { data, error, reload } = usePoll(load, 0);
  const [editing, setEditing] = useState<string | null>(null);
  const [editingSource, setEditingSource] = useState<string | null>(null);
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
        <thead><tr><th>Source</th><th>Group</th><th>Agent</th><th>Kind</th><th>Path</th><th>Points</th><th>Status</th><th /></tr></thead>
        <tbody>
          {data.sources.map((s) => (
            <tr key={s.name} data-source={s.name}>
              {editingSource === s.name ? (
                <td colSpan={8}><b>{s.name}</b> <span className="muted">{s.kind} {s.path} on {s.agent}</span> <SourceEditor source={s} groups={data.groups} onDone={() => { setEditingSource(null); reload(); }} /></td>
              ) : (
                <>
                  <td><a href={`#/sources/${encodeURIComponent(s.name)}`}>{s.name}</a></td><td>{s.group}</td><td>{s.agent}</td><td>{s.kind}</td><td>{s.path}</td><td>{s.points}</td><td><StatusBadge status={s.status} /></td>
                  <td><button onClick={() => setEditingSource(s.name)}>Edit</button></td>
                </>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Add a source on an agent</h2>
      {data.groups.length === 0 ? <p className="muted">Create a group first.</p> : <SourceAdder data={data} onDone={reload} />}
    </div>
  );
}
