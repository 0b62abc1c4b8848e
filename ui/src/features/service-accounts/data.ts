/** Queries and paths of the Service accounts page. */
import { useQuery } from "@tanstack/react-query";
import { useOrgId } from "../../lib/viewedOrg";
import { fetchAllPages } from "../keys/data";

/** ServiceAccountOut. */
export interface ServiceAccount {
  id: string;
  name: string;
  org_id: string;
  team_id: string | null;
  created_by: string | null;
  key_count: number;
  created_at: string;
  updated_at: string;
}

export const accountsPath = (orgId: string) => `orgs/${encodeURIComponent(orgId)}/service-accounts`;
export const accountPath = (orgId: string, id: string) => `${accountsPath(orgId)}/${encodeURIComponent(id)}`;
export const accountsKey = (orgId: string) => ["service-accounts", orgId] as const;

/** The accounts the caller manages (org admins: all; team admins: their teams') in the organisation viewed. */
export function useAccounts() {
  const orgId = useOrgId();
  return useQuery({
    queryKey: [...accountsKey(orgId), "list"],
    queryFn: ({ signal }) => fetchAllPages<ServiceAccount>(accountsPath(orgId), signal),
  });
}
