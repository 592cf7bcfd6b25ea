import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { LoginLimiter } from './login-limiter.js';
import { hashPassword, verifyPassword } from './password.js';
import { SESSION_IDLE_MS, SESSION_MAX_MS, WebAccounts } from './web-accounts.js';

test('passwords: scrypt, salted, verified in constant form', async () => {
  const a = await hashPassword('open sesame');
  const b = await hashPassword('open sesame');
  assert.match(a, /^scrypt\$32768\$8\$1\$/);
  assert.notEqual(a, b, 'a fresh salt each time');
  assert.equal(await verifyPassword('open sesame', a), true);
  assert.equal(await verifyPassword('open sesame!', a), false);
  assert.equal(await verifyPassword('open sesame', 'plain'), false);
});

test('accounts and sessions: roles, refused names and uid 0, idle and absolute expiry, hashed ids', async () => {
  const db = new Database(':memory:');
  const acc = new WebAccounts(db);
  const alice = await acc.addUser({ name: 'alice', role: 'user', uid: 1000, gids: [100, 1000, 100], password: 'password1' });
  assert.deepEqual(alice.gids, [100, 1000]);
  await assert.rejects(acc.addUser({ name: 'alice', role: 'user', uid: 1, gids: [], password: 'password1' }), /already exists/);
  await assert.rejects(acc.addUser({ name: 'Robert;', role: 'user', uid: 1, gids: [], password: 'password1' }), /not valid/);
  await assert.rejects(acc.addUser({ name: 'toor', role: 'user', uid: 0, gids: [], password: 'password1' }), /uid 0/);
  await assert.rejects(acc.addUser({ name: 'short', role: 'user', uid: 5, gids: [], password: 'pw' }), /at least 8/);
  assert.equal(await acc.checkPassword('alice', 'wrong'), undefined);
  assert.equal(await acc.checkPassword('nobody', 'password1'), undefined);
  assert.equal((await acc.checkPassword('alice', 'password1'))?.uid, 1000);

  const t0 = 1_000_000_000_000;
  const s = acc.openSession(alice, t0);
  assert.equal(acc.session(s.id, t0 + 1000)?.csrf, s.csrf);
  const stored = db.prepare('SELECT id_hash FROM web_sessions').all() as Array<{ id_hash: string }>;
  assert.ok(stored.every((r) => r.id_hash !== s.id), 'only the hash of the id is stored');
  assert.equal(acc.session(s.id, t0 + SESSION_IDLE_MS + 2000), undefined, 'idle too long');
  // Kept busy, a session still ends at the absolute limit.
  const k = acc.openSession(alice, t0);
  for (let t = t0; t < t0 + SESSION_MAX_MS - 60_000; t += SESSION_IDLE_MS / 2) assert.ok(acc.session(k.id, t), 'alive while used');
  assert.equal(acc.session(k.id, t0 + SESSION_MAX_MS + 1), undefined, 'past the absolute limit');
  // A new password ends every session.
  const n = acc.openSession(alice);
  await acc.setPassword('alice', 'password2');
  assert.equal(acc.session(n.id), undefined);
  db.close();
});

test('login limiter: five failures per address or name in the window, then refused until it passes', () => {
  const l = new LoginLimiter(5, 60_000);
  const t = 1_000_000;
  for (let i = 0; i < 5; i++) {
    l.check('1.2.3.4', 'alice', t + i);
    l.failed('1.2.3.4', 'alice', t + i);
  }
  assert.throws(() => l.check('1.2.3.4', 'bob', t + 10), /from this address/);
  assert.throws(() => l.check('5.6.7.8', 'alice', t + 10), /for 'alice'/);
  l.check('5.6.7.8', 'bob', t + 10);
  l.check('1.2.3.4', 'alice', t + 60_010);
});

test('login limiter: a good password clears its name only, never the address', () => {
  const l = new LoginLimiter(5, 60_000);
  const t = 1_000_000;
  // Four guesses at other names, then the attacker's own valid login, then one more guess each time.
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 4; i++) l.failed('1.2.3.4', `victim${i}`, t + round * 10 + i);
    l.succeeded('mallory');
  }
  assert.throws(() => l.check('1.2.3.4', 'victim9', t + 100), /from this address/);
  l.failed('5.6.7.8', 'alice', t);
  l.succeeded('alice');
  l.check('9.9.9.9', 'alice', t + 1);
});
