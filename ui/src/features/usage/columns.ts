/** The grouped table's columns: formatted for the page, raw for the CSV export (the same rows and order). */
import type { CsvColumn } from "../../lib/download";
import { formatCurrency, formatDuration, formatNumber, formatPercent } from "../../lib/format";
import type { UsagePoint } from "../../lib/types";
import { groupLabel } from "./params";
import { rowName } from "./series";
import type { McpUsagePoint, UsageKind } from "./types";

export interface UsageColumn<T> {
  header: string;
  /** The CSV's header when it differs (units of raw values). */
  csvHeader?: string;
  /** What the table shows (locale-formatted). */
  show: (row: T) => string;
  /** What the CSV holds (raw). */
  raw: CsvColumn<T>["value"];
  numeric?: boolean;
}

function groupColumns<T extends { group_key: string | null; group_label: string | null }>(kind: UsageKind, groupBy: string): UsageColumn<T>[] {
  const label = groupLabel(kind, groupBy);
  return [
    { header: label, show: (r) => rowName(r, groupBy), raw: (r) => (r.group_key === null ? "" : (r.group_label ?? r.group_key)) },
    ...(["model", "source", "project", "server", "tool", "status", "day", "hour"].includes(groupBy)
      ? []
      : [{ header: `${label} ID`, show: (r: T) => r.group_key ?? "—", raw: (r: T) => r.group_key ?? "" }]),
  ];
}

export function llmColumns(groupBy: string): UsageColumn<UsagePoint>[] {
  return [
    ...groupColumns<UsagePoint>("llm", groupBy),
    { header: "Requests", show: (r) => formatNumber(r.total_requests), raw: (r) => r.total_requests, numeric: true },
    { header: "Prompt tokens", show: (r) => formatNumber(r.prompt_tokens), raw: (r) => r.prompt_tokens, numeric: true },
    { header: "Completion tokens", show: (r) => formatNumber(r.completion_tokens), raw: (r) => r.completion_tokens, numeric: true },
    { header: "Total tokens", show: (r) => formatNumber(r.total_tokens), raw: (r) => r.total_tokens, numeric: true },
    { header: "Estimated cost", show: (r) => formatCurrency(r.cost_estimate), raw: (r) => r.cost_estimate, numeric: true },
    { header: "Errors", show: (r) => formatNumber(r.error_count), raw: (r) => r.error_count, numeric: true },
    { header: "Average latency", csvHeader: "Average latency (ms)", show: (r) => formatDuration(r.avg_duration_ms), raw: (r) => Math.round(r.avg_duration_ms * 10) / 10, numeric: true },
  ];
}

export function mcpColumns(groupBy: string): UsageColumn<McpUsagePoint>[] {
  const rate = (r: McpUsagePoint) => (r.total_calls > 0 ? (r.success_count / r.total_calls) * 100 : null);
  return [
    ...groupColumns<McpUsagePoint>("mcp", groupBy),
    { header: "Calls", show: (r) => formatNumber(r.total_calls), raw: (r) => r.total_calls, numeric: true },
    { header: "Succeeded", show: (r) => formatNumber(r.success_count), raw: (r) => r.success_count, numeric: true },
    { header: "Errors", show: (r) => formatNumber(r.error_count), raw: (r) => r.error_count, numeric: true },
    { header: "Timeouts", show: (r) => formatNumber(r.timeout_count), raw: (r) => r.timeout_count, numeric: true },
    { header: "Success rate", csvHeader: "Success rate (%)", show: (r) => formatPercent(rate(r)), raw: (r) => { const v = rate(r); return v === null ? "" : Math.round(v * 10) / 10; }, numeric: true },
    { header: "Average duration", csvHeader: "Average duration (ms)", show: (r) => formatDuration(r.avg_duration_ms), raw: (r) => Math.round(r.avg_duration_ms * 10) / 10, numeric: true },
    { header: "Code Mode calls", show: (r) => formatNumber(r.code_mode_calls), raw: (r) => r.code_mode_calls, numeric: true },
  ];
}

/** CSV columns of table columns. */
export function csvColumns<T>(columns: readonly UsageColumn<T>[]): CsvColumn<T>[] {
  return columns.map((c) => ({ header: c.csvHeader ?? c.header, value: c.raw }));
}
