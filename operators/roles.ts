import type { OperatorRole } from '../registry/index.js';

/**
 * What each role may do (SPEC "Operators"): a viewer reads everything except
 * secrets; an operator also acts on devices, tokens, grants and claims; an
 * admin also manages profiles, signing keys and operators. Each role holds
 * every right of the roles before it.
 */
export type Right = 'read' | 'act' | 'admin';

export const ROLES: readonly OperatorRole[] = ['viewer', 'operator', 'admin'];

const RANK: Record<OperatorRole, number> = { viewer: 0, operator: 1, admin: 2 };
const NEEDS: Record<Right, number> = { read: 0, act: 1, admin: 2 };

export const hasRight = (role: OperatorRole, right: Right): boolean => RANK[role] >= NEEDS[right];

export const isRole = (v: unknown): v is OperatorRole => typeof v === 'string' && (ROLES as readonly string[]).includes(v);
