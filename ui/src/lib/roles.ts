/** Role checks from GET /api/v1/me (`role` is this session's effective role; higher passes lower gates). */
import type { Me, Role } from "./types";

const RANK: Record<Role, number> = { member: 0, team_admin: 1, org_admin: 2, system_admin: 3 };

/** True when `me`'s role is at least `role` (`hasRole(me, "org_admin")` is true for a system admin). */
export function hasRole(me: Pick<Me, "role"> | null | undefined, role: Role): boolean {
  if (!me) return false;
  const rank = RANK[me.role];
  return rank !== undefined && rank >= RANK[role];
}

export const isSystemAdmin = (me: Pick<Me, "role"> | null | undefined) => hasRole(me, "system_admin");
export const isOrgAdmin = (me: Pick<Me, "role"> | null | undefined) => hasRole(me, "org_admin");
export const isTeamAdmin = (me: Pick<Me, "role"> | null | undefined) => hasRole(me, "team_admin");
export const isMember = (me: Pick<Me, "role"> | null | undefined) => hasRole(me, "member");

export function roleLabel(role: Role | string): string {
  switch (role) {
    case "system_admin":
      return "System admin";
    case "org_admin":
      return "Organization admin";
    case "team_admin":
      return "Team admin";
    case "member":
      return "Member";
    default:
      return role;
  }
}
