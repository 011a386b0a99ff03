import t from 'tap';
import { MAX_SESSIONS_PER_OPERATOR, SESSION_IDLE_MS, WebSessions } from '../api/web-sessions.js';

// Console sign-ins are bounded per operator, so that one operator (a script, a stolen
// password) signing in again and again ends their own oldest session, never another's.

t.test('one operator past the cap ends their own least recently used session only', async (t) => {
  const sessions = new WebSessions();
  const now = Date.now();
  const bob = sessions.start('bob', now);
  const alice = Array.from({ length: MAX_SESSIONS_PER_OPERATOR }, (_, i) => sessions.start('alice', now + i + 1));
  t.ok(sessions.use(alice[0]!.id, now + 100), 'her first session, used again, becomes her most recent');
  const extra = sessions.start('alice', now + 200);
  t.equal(sessions.size, MAX_SESSIONS_PER_OPERATOR + 1, 'still at the cap for alice, plus bob');
  t.equal(sessions.use(alice[1]!.id, now + 300), null, 'her least recently used session ended');
  t.ok(sessions.use(alice[0]!.id, now + 300), 'the one she used recently lives');
  t.ok(sessions.use(extra.id, now + 300), 'the new one lives');
  t.same(sessions.use(bob.id, now + 300), { operator: 'bob', csrfToken: bob.csrfToken }, 'bob is never pushed out by alice');
});

t.test('sessions that end or expire no longer count against the cap', async (t) => {
  const sessions = new WebSessions();
  const now = Date.now();
  const first = Array.from({ length: MAX_SESSIONS_PER_OPERATOR }, () => sessions.start('carol', now));
  sessions.end(first[5]!.id);
  t.equal(sessions.use(first[6]!.id, now + SESSION_IDLE_MS + 10), null, 'an idle session found expired ends');
  sessions.start('carol', now + SESSION_IDLE_MS + 20);
  sessions.start('carol', now + SESSION_IDLE_MS + 20);
  // Signing in sweeps the rest, idle as long: only the two new sessions are left.
  t.equal(sessions.size, 2);
  const later = now + SESSION_IDLE_MS + 30;
  const fresh = Array.from({ length: MAX_SESSIONS_PER_OPERATOR - 2 }, () => sessions.start('carol', later));
  t.equal(sessions.size, MAX_SESSIONS_PER_OPERATOR, 'up to the cap again, nothing evicted');
  t.ok(fresh.every((s) => sessions.use(s.id, later) !== null));
});
