/**
 * The shell: who is signed in, the hash route (#/dashboard, #/sources/NAME, #/portal, ...) and
 * the navigation. Administrators get the console; users get the portal only.
 */
import { useEffect, useState, type ReactElement } from 'react';
import { api, setCsrf, type User } from './api';
import { Login } from './pages/login';
import { Dashboard } from './pages/dashboard';
import { Storage } from './pages/storage';
import { Groups } from './pages/groups';
import { SourcePage } from './pages/source';
import { JobsAlerts } from './pages/jobs';
import { Users } from './pages/users';
import { Portal } from './pages/portal';

function useHash(): string {
  const [hash, setHash] = useState(window.location.hash);
  useEffect(() => {
    const on = (): void => setHash(window.location.hash);
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return hash;
}

const NAV: Array<[string, string]> = [
  ['#/dashboard', 'Dashboard'],
  ['#/storage', 'Storage'],
  ['#/groups', 'Groups & sources'],
  ['#/jobs', 'Jobs & alerts'],
  ['#/users', 'Accounts'],
  ['#/portal', 'Previous versions'],
];

export function App(): ReactElement {
  const [user, setUser] = useState<User | null | undefined>(undefined);
  const hash = useHash();

  useEffect(() => {
    api<{ user: User; csrf: string }>('GET', '/api/v1/session')
      .then((s) => {
        setCsrf(s.csrf);
        setUser(s.user);
      })
      .catch(() => setUser(null));
  }, []);

  if (user === undefined) return <div className="loading">Loading…</div>;
  if (user === null) return <Login onLogin={(u) => { setUser(u); window.location.hash = u.role === 'admin' ? '#/dashboard' : '#/portal'; }} />;

  const logout = (): void => {
    void api('DELETE', '/api/v1/session')
      .catch(() => undefined)
      .finally(() => {
        setUser(null);
        window.location.hash = '';
      });
  };

  let page: ReactElement;
  const [, route = '', arg] = hash.split('/').map((x) => decodeURIComponent(x));
  if (user.role !== 'admin' || route === 'portal') page = <Portal user={user} />;
  else if (route === 'storage') page = <Storage />;
  else if (route === 'groups') page = <Groups />;
  else if (route === 'sources' && arg) page = <SourcePage name={arg} />;
  else if (route === 'jobs') page = <JobsAlerts />;
  else if (route === 'users') page = <Users />;
  else page = <Dashboard />;

  return (
    <div className="shell">
      <header>
        <span className="brand">Holdfast</span>
        {user.role === 'admin' && (
          <nav>
            {NAV.map(([href, label]) => (
              <a key={href} href={href} className={hash.startsWith(href) || (href === '#/dashboard' && (hash === '' || hash === '#/')) ? 'active' : ''}>
                {label}
              </a>
            ))}
          </nav>
        )}
        <span className="who">
          {user.name} ({user.role}) <button className="link" onClick={logout}>Sign out</button>
        </span>
      </header>
      <main>{page}</main>
    </div>
  );
}
