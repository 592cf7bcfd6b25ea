/** Sign-in form for administrators and users. */
import { useState, type FormEvent, type ReactElement } from 'react';
import { api, setCsrf, type User } from '../api';

export function Login({ onLogin }: { onLogin: (u: User) => void }): ReactElement {
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  const submit = (e: FormEvent): void => {
    e.preventDefault();
    setBusy(true);
    setError('');
    api<{ user: User; csrf: string }>('POST', '/api/v1/session', { name, password })
      .then((s) => {
        setCsrf(s.csrf);
        onLogin(s.user);
      })
      .catch((err: Error) => setError(err.message))
      .finally(() => setBusy(false));
  };

  return (
    <form className="login" onSubmit={submit}>
      <h1>Holdfast</h1>
      <p className="muted">Protection server console and previous versions</p>
      <label>
        Name
        <input name="name" autoComplete="username" value={name} onChange={(e) => setName(e.target.value)} autoFocus />
      </label>
      <label>
        Password
        <input name="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} />
      </label>
      {error && <p className="error">{error}</p>}
      <button type="submit" disabled={busy || !name || !password}>
        Sign in
      </button>
    </form>
  );
}
