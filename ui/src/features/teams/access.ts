/** Who administers teams (kept apart from the queries: the navigation and route guard import it). */
import { hasRole } from "../../lib/roles";
import type { Me } from "../../lib/types";

/** Org admins administer every team; below that, a user administers the teams where their team role is
 * `team_admin` (GET /me `team_admin_of`: a user key's `role` is its org role, never `team_admin`). */
export function canAdministerTeams(me: Me): boolean {
  return hasRole(me, "org_admin") || (me.team_admin_of?.length ?? 0) > 0;
}

export function administers(me: Me, teamId: string): boolean {
  return hasRole(me, "org_admin") || (me.team_admin_of ?? []).includes(teamId);
}

/** Creating and deleting teams, their limits, model allowlists and aliases are the org admins'. */
export const canManageOrgTeams = (me: Me) => hasRole(me, "org_admin");
