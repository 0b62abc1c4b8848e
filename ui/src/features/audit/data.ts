/** The audit log query: one cursor page of `GET /api/v1/audit-logs` for the filters. */
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { api } from "../../lib/api";
import type { Me, Page } from "../../lib/types";
import { useOrgId } from "../../lib/viewedOrg";
import { auditQuery, type AuditFilters } from "./filters";
import type { AuditLogEntry } from "./types";

export function useAuditPage(me: Me, filters: AuditFilters, cursor: string | undefined, enabled: boolean) {
  const query = auditQuery(me, filters, cursor, useOrgId());
  return useQuery({
    queryKey: ["audit-logs", query],
    queryFn: ({ signal }) => api.get<Page<AuditLogEntry>>("audit-logs", { query, signal }),
    placeholderData: keepPreviousData,
    enabled,
  });
}
