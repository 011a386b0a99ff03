import { CredbrokerError } from '../../errors/index.js';
import { checkOperatorPassword } from '../../operations/operators.js';
import { clearedCookie, sessionCookie } from '../auth.js';
import { objectBody, onlyFields, stringField } from '../input.js';
import type { LoginThrottle } from '../login-throttle.js';
import type { Route } from '../types.js';
import type { WebSessions } from '../web-sessions.js';

const SIGNED_IN = { type: 'object', required: ['name', 'role', 'csrfToken'], properties: { name: { type: 'string' }, role: { type: 'string', enum: ['viewer', 'operator', 'admin'] }, csrfToken: { type: 'string' } } };

/** Signing in and out of the console: `POST|GET|DELETE /session`. */
export function sessionRoutes(web: WebSessions, throttle: LoginThrottle): Route[] {
  return [
    {
      method: 'POST', path: '/session', right: 'open',
      summary: 'Sign in with name and password: sets the HttpOnly session cookie; state-changing cookie requests must send csrfToken as X-CSRF-Token. Throttled per name and per address (429).',
      body: { type: 'object', required: ['name', 'password'], properties: { name: { type: 'string' }, password: { type: 'string' } } },
      answer: SIGNED_IN,
      async handle({ req, deps }) {
        const body = objectBody(req.body, true);
        onlyFields(body, ['name', 'password']);
        const name = stringField(body, 'name', { required: true, max: 64 });
        const password = stringField(body, 'password', { required: true, max: 1024 });
        if (!throttle.allows(name, req.address)) throw new CredbrokerError('ERR_THROTTLED', 'too many failed sign-ins for this name or from this address: try again later');
        const operator = await checkOperatorPassword(deps.reg, name, password).catch((err: unknown) => {
          throttle.failed(name, req.address);
          throw err;
        });
        const { id, csrfToken } = web.start(operator.name);
        await deps.reg.audit.append(`operator:${operator.name}`, 'operator.login', null, { address: req.address });
        return { status: 200, body: { name: operator.name, role: operator.role, csrfToken }, headers: { 'set-cookie': sessionCookie(id, deps.secure) } };
      },
    },
    {
      method: 'GET', path: '/session', right: 'read',
      summary: 'Who is signed in (a console reloading its page reads its CSRF token here).',
      answer: SIGNED_IN,
      handle: async ({ caller }) => ({ status: 200, body: { name: caller!.operator.name, role: caller!.operator.role, csrfToken: caller!.csrfToken ?? null } }),
    },
    {
      method: 'DELETE', path: '/session', right: 'read',
      summary: 'Sign out: ends the cookie session.',
      answer: { type: 'object', properties: { signedOut: { type: 'boolean' } } },
      async handle({ caller, deps, actor }) {
        if (caller!.sessionId) web.end(caller!.sessionId);
        await deps.reg.audit.append(actor, 'operator.logout', null, null);
        return { status: 200, body: { signedOut: true }, headers: { 'set-cookie': clearedCookie(deps.secure) } };
      },
    },
  ];
}
