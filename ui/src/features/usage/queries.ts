import { useQuery } from "@tanstack/react-query";
import { api } from "../../lib/api";
import type { UsageReport } from "../../lib/types";
import type { Range, UsageSource } from "./params";
import type { McpUsageReport, UsageKind } from "./types";

export type ReportOf<K extends UsageKind> = K extends "llm" ? UsageReport : McpUsageReport;

/**
 * One grouped report (the API aggregates; the page never reads raw rows). Disabled without a valid range.
 */
export function useUsageReport<K extends UsageKind>(kind: K, source: UsageSource, groupBy: string, range: Range | undefined) {
  return useQuery({
    queryKey: ["usage", kind, source.path, groupBy, range?.from, range?.to],
    queryFn: ({ signal }) =>
      api.get<ReportOf<K>>(source.path, { query: { from: range!.from, to: range!.to, group_by: groupBy }, signal }),
    enabled: range !== undefined,
  });
}
