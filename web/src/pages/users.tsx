/** Accounts: administrators (console) and users (portal, mapped to a uid and groups on the hosts). */
import { useState, type FormEvent, type ReactElement } from 'react';
import { api, type User } from '../api';
import { usePoll } from '../poll';

export function Users(): ReactElement {
  const { data, error, reload } = usePoll(() => api<Array<User & { created: string }>>('GET', '/api/v1/users'), 0);
  const [f, setF] = useState({ name: '', role: 'user', uid: '', gids: '', password: '' });
  const [msg, setMsg] = useState('');
  const submit = (e: FormEvent): void => {
    e.preventDefault();
    const body = {
      name: f.name,
      role: f.role,
      ...(f.uid ? { uid: Number(f.uid) } : {}),
      gids: f.gids.split(',').map((x) => x.trim()).filter(Boolean).map(Number),
      ...(f.password ? { password: f.password } : {}),
    };
    api<User & { password?: string }>('POST', '/api/v1/users', body)
      .then((u) => {
        setMsg(u.password ? `Created ${u.name}; password (shown once): ${u.password}` : `Created ${u.name}`);
        reload();
      })
      .catch((err: Error) => setMsg(err.message));
  };
  const remove = (name: string): void => {
    if (confirm(`Delete account ${name}?`)) api('DELETE', `/api/v1/users/${encodeURIComponent(name)}`).then(reload).catch((err: Error) => setMsg(err.message));
  };
  if (!data) return <p>{error || 'Loading…'}</p>;
  return (
    <div>
      <h1>Accounts</h1>
      <table id="users">
        <thead><tr><th>Name</th><th>Role</th><th>uid</th><th>Groups</th><th /></tr></thead>
        <tbody>
          {data.map((u) => (
            <tr key={u.name}><td>{u.name}</td><td>{u.role}</td><td>{u.role === 'user' ? u.uid : '—'}</td><td>{u.gids.join(', ')}</td><td><button onClick={() => remove(u.name)}>Delete</button></td></tr>
          ))}
        </tbody>
      </table>
      <h2>New account</h2>
      <form className="inline-form" onSubmit={submit}>
        <label>Name <input value={f.name} onChange={(e) => setF({ ...f, name: e.target.value })} /></label>
        <label>Role <select value={f.role} onChange={(e) => setF({ ...f, role: e.target.value })}><option>user</option><option>admin</option></select></label>
        <label>uid <input value={f.uid} size={6} onChange={(e) => setF({ ...f, uid: e.target.value })} /></label>
        <label>Groups (gids) <input value={f.gids} placeholder="1000,100" onChange={(e) => setF({ ...f, gids: e.target.value })} /></label>
        <label>Password <input type="password" value={f.password} placeholder="random if empty" onChange={(e) => setF({ ...f, password: e.target.value })} /></label>
        <button type="submit">Create</button>
      </form>
      {msg && <p>{msg}</p>}
    </div>
  );
}
