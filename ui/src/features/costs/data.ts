/**
 * The cost report query and what the page derives from it: the days of the range (a day without usage is
 * a zero), the average per day over the range's length, and the CSV columns of each table.
 */
import { useQuery } from "@tanstack/react-query";
import { api } from "../../lib/api";
import type { CsvColumn } from "../../lib/download";
import type { Range } from "../usage/params";
import { bucketKeys } from "../usage/series";
import type { CostReport, DayCost, ModelCost, Spender } from "./types";

export const TOP_CHOICES = [5, 10, 25, 50] as const;
export const DEFAULT_TOP = 10;

export const costReportPath = (orgId: string) => `orgs/${encodeURIComponent(orgId)}/usage/cost-report`;

export function useCostReport(orgId: string, range: Range | undefined, top: number) {
  return useQuery({
    queryKey: ["cost-report", orgId, range?.from, range?.to, top],
    queryFn: ({ signal }) => api.get<CostReport>(costReportPath(orgId), { query: { from: range!.from, to: range!.to, top }, signal }),
    enabled: range !== undefined,
  });
}

/** Every UTC day the range touches, with the report's numbers or zeros. */
export function dailySeries(report: CostReport, range: Range): DayCost[] {
  const byDay = new Map(report.by_day.map((d) => [d.day, d]));
  return bucketKeys({ ...range, bucket: "day" }).map((day) => byDay.get(day) ?? { day, requests: 0, total_tokens: 0, cost: 0 });
}

/** The range's length in days (7 for "Last 7 days", 3 for three whole UTC days), at least 1. */
export function rangeDays(range: Range): number {
  return Math.max(1, Math.round((Date.parse(range.to) - Date.parse(range.from)) / 86_400_000));
}

/** Total cost over the range's length in days. */
export function averagePerDay(report: CostReport, range: Range): number {
  return report.totals.cost / rangeDays(range);
}

export const DAY_CSV: CsvColumn<DayCost>[] = [
  { header: "Day (UTC)", value: (d) => d.day },
  { header: "Requests", value: (d) => d.requests },
  { header: "Total tokens", value: (d) => d.total_tokens },
  { header: "Estimated cost", value: (d) => d.cost },
];

export const MODEL_CSV: CsvColumn<ModelCost>[] = [
  { header: "Model", value: (m) => m.model_name },
  { header: "Requests", value: (m) => m.requests },
  { header: "Prompt tokens", value: (m) => m.prompt_tokens },
  { header: "Completion tokens", value: (m) => m.completion_tokens },
  { header: "Total tokens", value: (m) => m.total_tokens },
  { header: "Estimated cost", value: (m) => m.cost },
];

export const spenderCsv = (what: string): CsvColumn<Spender>[] => [
  { header: what, value: (s) => s.name },
  { header: `${what} ID`, value: (s) => s.id },
  { header: "Requests", value: (s) => s.requests },
  { header: "Total tokens", value: (s) => s.total_tokens },
  { header: "Estimated cost", value: (s) => s.cost },
];
