import { CredbrokerError, RegistryError, UsageError } from '../errors/index.js';
import type { Actor, Operator, OperatorRole, Stores } from '../registry/index.js';
import { parseOperatorName } from '../registry/ids.js';
import { hashOperatorToken, newOperatorToken, parseOperatorToken, type OperatorApiToken } from '../operators/api-token.js';
import { hashPassword, MAX_PASSWORD_LENGTH, newPassword, UNUSABLE_HASH, verifyPassword } from '../operators/password.js';
import { isRole, ROLES } from '../operators/roles.js';

export const DEFAULT_OPERATOR_TOKEN_TTL_MS = 90 * 86_400_000;
/** An API token outliving a year is a credential nobody remembers: refused, mint a new one instead. */
export const MAX_OPERATOR_TOKEN_TTL_MS = 365 * 86_400_000;

export interface OperatorSummary {
  readonly name: string;
  readonly role: OperatorRole;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly lastLoginAt: number | null;
  /** API tokens not yet expired. */
  readonly tokens: number;
}

function parseRole(role: unknown): OperatorRole {
  if (isRole(role)) return role;
  throw new UsageError(`invalid role ${JSON.stringify(String(role)).slice(0, 40)}: use ${ROLES.join(', ')}`);
}

async function requireOperator(reg: Stores, name: string): Promise<Operator> {
  const op = await reg.operators.get(name);
  if (!op) throw new RegistryError('ERR_OPERATOR_NOT_FOUND', `no operator "${name}" (see: credbroker operator list)`);
  return op;
}

/** Creates an operator with a new random password, returned once (only its hash is kept). */
export async function addOperator(reg: Stores, rawName: string, rawRole: unknown, actor: Actor = 'cli', now = Date.now()): Promise<{ name: string; role: OperatorRole; password: string }> {
  const name = parseOperatorName(rawName);
  const role = parseRole(rawRole);
  const password = newPassword();
  const hash = await hashPassword(password); // before the transaction: it holds the write lock
  await reg.transaction(async (tx) => {
    if (!(await tx.operators.insert(name, role, hash, now))) throw new RegistryError('ERR_OPERATOR_EXISTS', `operator "${name}" already exists (a new password: credbroker operator passwd ${name})`);
    await tx.audit.append(actor, 'operator.add', null, { operator: name, role }, now);
  });
  return { name, role, password };
}

/** Sets a new random password, returned once. Sessions signed in with the old one end at their expiry. */
export async function resetOperatorPassword(reg: Stores, rawName: string, actor: Actor = 'cli', now = Date.now()): Promise<{ name: string; role: OperatorRole; password: string }> {
  const name = parseOperatorName(rawName);
  const password = newPassword();
  const hash = await hashPassword(password);
  const role = await reg.transaction(async (tx) => {
    const op = await requireOperator(tx, name);
    await tx.operators.setPassword(name, hash, now);
    await tx.audit.append(actor, 'operator.passwd', null, { operator: name }, now);
    return op.role;
  });
  return { name, role, password };
}

/** Mints an API token for the operator, returned once (only its hash is kept). */
export async function issueOperatorToken(reg: Stores, rawName: string, ttlMs = DEFAULT_OPERATOR_TOKEN_TTL_MS, actor: Actor = 'cli', now = Date.now()): Promise<{ name: string; token: OperatorApiToken; expiresAt: number }> {
  const name = parseOperatorName(rawName);
  if (ttlMs > MAX_OPERATOR_TOKEN_TTL_MS) throw new UsageError('invalid --ttl: an operator API token lives at most 365d', 'ERR_TTL_TOO_LONG');
  const token = newOperatorToken();
  const expiresAt = now + ttlMs;
  await reg.transaction(async (tx) => {
    await requireOperator(tx, name);
    await tx.operators.addToken(hashOperatorToken(token), name, expiresAt, now);
    await tx.audit.append(actor, 'operator.token', null, { operator: name, expiresAt: new Date(expiresAt).toISOString() }, now);
  });
  return { name, token, expiresAt };
}

export async function listOperators(reg: Stores, now = Date.now()): Promise<OperatorSummary[]> {
  const [ops, tokens] = await Promise.all([reg.operators.list(), reg.operators.liveTokenCounts(now)]);
  return ops.map(({ passwordHash: _hidden, ...o }) => ({ ...o, tokens: tokens.get(o.name) ?? 0 }));
}

/** Removes the operator and their API tokens; their signed-in sessions fail at the next request. */
export async function removeOperator(reg: Stores, rawName: string, actor: Actor = 'cli', now = Date.now()): Promise<void> {
  const name = parseOperatorName(rawName);
  await reg.transaction(async (tx) => {
    if (!(await tx.operators.delete(name))) throw new RegistryError('ERR_OPERATOR_NOT_FOUND', `no operator "${name}" (see: credbroker operator list)`);
    await tx.audit.append(actor, 'operator.remove', null, { operator: name }, now);
  });
}

const badLogin = () => new CredbrokerError('ERR_BAD_LOGIN', 'wrong operator name or password');

/**
 * Checks a name and password. An unknown name costs a hash like a wrong password
 * (the answer time does not tell which names exist) and gets the same error.
 * @throws CredbrokerError `ERR_BAD_LOGIN`
 */
export async function checkOperatorPassword(reg: Stores, name: unknown, password: unknown, now = Date.now()): Promise<Operator> {
  if (typeof name !== 'string' || typeof password !== 'string' || password.length > MAX_PASSWORD_LENGTH || name.length > 64) throw badLogin();
  const op = await reg.operators.get(name);
  const ok = await verifyPassword(password, op?.passwordHash ?? UNUSABLE_HASH);
  if (!op || !ok) throw badLogin();
  await reg.operators.touchLogin(op.name, now);
  return op;
}

/**
 * The operator an API token belongs to, if it is well-formed, known and not expired.
 * @throws CredbrokerError `ERR_BAD_LOGIN`
 */
export async function checkOperatorToken(reg: Stores, text: string, now = Date.now()): Promise<Operator> {
  let token: OperatorApiToken;
  try {
    token = parseOperatorToken(text);
  } catch {
    throw badLogin();
  }
  const hash = hashOperatorToken(token);
  const record = await reg.operators.findToken(hash);
  const op = record && record.expiresAt > now ? await reg.operators.get(record.operator) : undefined;
  if (!op || !record) throw new CredbrokerError('ERR_BAD_LOGIN', 'unknown or expired operator API token');
  // Last use to the minute: one write a minute per token, not one per request.
  if (record.lastUsedAt === null || now - record.lastUsedAt > 60_000) await reg.operators.touchToken(hash, now);
  return op;
}
