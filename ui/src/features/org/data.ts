/** Queries, paths and rules of the organisation pages (`/org/*`, `/orgs`, `/orgs/:orgId/*`, `/users`). */
import { useQuery } from "@tanstack/react-query";
import { api } from "../../lib/api";
import { appUrl } from "../../lib/base";
import { hasRole } from "../../lib/roles";
import type { Me } from "../../lib/types";
import { fetchAllPages } from "../keys/data";
import type { ModelAccess } from "../keys/types";
import type { AliasOut, AvailableMcpServer, InviteOut, McpAccess, MemberOut, OrgOut, UserOut } from "./types";

export const orgPath = (orgId: string) => `orgs/${encodeURIComponent(orgId)}`;

/** Query keys: everything of one organisation under ["org", orgId]. */
export const orgKey = (orgId: string, ...rest: string[]) => ["org", orgId, ...rest];

export function useOrg(orgId: string, enabled = true) {
  return useQuery({
    queryKey: orgKey(orgId, "settings"),
    queryFn: ({ signal }) => api.get<OrgOut>(orgPath(orgId), { signal }),
    enabled,
  });
}

export function useMembers(orgId: string) {
  return useQuery({
    queryKey: orgKey(orgId, "members"),
    queryFn: ({ signal }) => fetchAllPages<MemberOut>(`${orgPath(orgId)}/members`, signal),
  });
}

export function useInvites(orgId: string) {
  return useQuery({
    queryKey: orgKey(orgId, "invites"),
    queryFn: ({ signal }) => fetchAllPages<InviteOut>(`${orgPath(orgId)}/invites`, signal),
  });
}

export function useOrgModelAccess(orgId: string) {
  return useQuery({
    queryKey: orgKey(orgId, "model-access"),
    queryFn: ({ signal }) => api.get<ModelAccess>(`${orgPath(orgId)}/model-access`, { signal }),
  });
}

export function useOrgAliases(orgId: string) {
  return useQuery({
    queryKey: orgKey(orgId, "model-aliases"),
    queryFn: ({ signal }) => fetchAllPages<AliasOut>(`${orgPath(orgId)}/model-aliases`, signal),
  });
}

export function useOrgMcpAccess(orgId: string) {
  return useQuery({
    queryKey: orgKey(orgId, "mcp-access"),
    queryFn: ({ signal }) => api.get<McpAccess>(`${orgPath(orgId)}/mcp-access`, { signal }),
  });
}

export function useAvailableMcpServers(orgId: string) {
  return useQuery({
    queryKey: orgKey(orgId, "available-mcp-servers"),
    queryFn: ({ signal }) => api.get<AvailableMcpServer[]>(`${orgPath(orgId)}/available-mcp-servers`, { signal }),
  });
}

/**
 * The model names an allowlist or an alias may name: every model of the registry for a system admin
 * (GET /models), the models of this session otherwise (GET /me/available-models).
 */
export function useModelNames(me: Me) {
  const system = hasRole(me, "system_admin");
  return useQuery({
    queryKey: ["org", "model-names", system ? "all" : "mine"],
    queryFn: async ({ signal }) => {
      if (system) return (await fetchAllPages<{ name: string }>("models", signal)).items.map((m) => m.name);
      const mine = await api.get<{ models: { name: string }[] }>("me/available-models", { signal });
      return mine.models.map((m) => m.name);
    },
  });
}

export function useOrgs(enabled = true) {
  return useQuery({
    queryKey: ["orgs", "list"],
    queryFn: ({ signal }) => fetchAllPages<OrgOut>("orgs", signal),
    enabled,
  });
}

export function useUsers() {
  return useQuery({
    queryKey: ["users", "list"],
    queryFn: ({ signal }) => fetchAllPages<UserOut>("users", signal),
  });
}

/** The link an invitee opens: `<mount root>/invite/<token>` (works under a sub-path too). */
export function inviteLink(token: string): string {
  return appUrl(`invite/${encodeURIComponent(token)}`).href;
}

/** The organisation a page is about: `/orgs/:orgId/...` (system admins) or the session's own. */
export function orgBase(orgIdParam: string | undefined): string {
  return orgIdParam ? `/orgs/${encodeURIComponent(orgIdParam)}` : "/org";
}

export const ORG_ROLE_OPTIONS = [
  { value: "member", label: "Member" },
  { value: "org_admin", label: "Organization admin" },
];

/** Only system admins change an organisation's limits, its model allowlist and whether it is active. */
export const canManageOrgLimits = (me: Me) => hasRole(me, "system_admin");
