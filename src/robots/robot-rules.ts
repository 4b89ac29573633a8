// Who may do what with a robot, written once for the service (REST) and the robot actor (live
// requests). The owner holds every right; a grant gives `viewer` or `operator`; an admin may act as
// the owner of any robot. Anyone else is told the robot does not exist, so ids cannot be probed.

import { notFound, SbError } from '../errors.js';
import type { GrantRole, RobotRole } from '../store/robots.js';

export interface Caller {
  id: string;
  admin: boolean;
}

/** The caller's role: `owner`, their grant, or null for an admin without one. NOT_FOUND for anyone else. */
export function roleOf(ownerId: string, grant: RobotRole | undefined | null, caller: Caller): RobotRole | null {
  if (caller.id === ownerId) return 'owner';
  if (grant) return grant;
  if (caller.admin) return null;
  throw notFound('robot');
}

/** Whether the caller can see the robot at all (and so keeps watching it). */
export const canView = (ownerId: string, grant: RobotRole | undefined | null, caller: Caller): boolean =>
  caller.id === ownerId || Boolean(grant) || caller.admin;

/** Owner, operator or admin (whatever grant an admin also holds): may drive the robot. FORBIDDEN for a viewer. */
export function requireOperator(role: RobotRole | null, admin: boolean, what: string): void {
  if (role === 'viewer' && !admin) throw new SbError('FORBIDDEN', `viewers cannot ${what}: it needs the operator role`);
}

/** May keep (or take over) the control lease whatever the grants say: the owner or an admin. */
export const isManager = (role: RobotRole | null, admin: boolean): boolean => role === 'owner' || admin;

/** Renames, deletes, grants, certificates and lease take-overs: the owner or an admin. NOT_OWNER for anyone else who sees the robot. */
export function requireManager(role: RobotRole | null, admin: boolean, what: string): void {
  if (!isManager(role, admin)) throw new SbError('NOT_OWNER', `only the robot's owner or an admin can ${what}`);
}

/** Whether the lease holder still may hold it after the grants changed: owner, operator, or an admin. */
export const mayHoldLease = (ownerId: string, grant: GrantRole | undefined, holder: Caller): boolean =>
  holder.admin || holder.id === ownerId || grant === 'operator';
