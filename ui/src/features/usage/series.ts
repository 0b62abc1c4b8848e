/** Time series and totals built from the API's grouped reports (day/hour buckets, missing ones as zero). */
import { formatDate, formatDateTime, formatDay, formatTime } from "../../lib/format";
import type { UsagePoint } from "../../lib/types";
import type { Range } from "./params";
import type { McpUsagePoint } from "./types";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** The API's bucket keys over the range: `YYYY-MM-DDTHH:00:00Z` per hour or `YYYY-MM-DD` per UTC day. */
export function bucketKeys(range: Range): string[] {
  const from = Date.parse(range.from);
  const to = Date.parse(range.to);
  const keys: string[] = [];
  if (range.bucket === "hour") {
    for (let t = Math.floor(from / HOUR) * HOUR; t < to; t += HOUR) keys.push(`${new Date(t).toISOString().slice(0, 13)}:00:00Z`);
  } else {
    for (let t = Math.floor(from / DAY) * DAY; t < to; t += DAY) keys.push(new Date(t).toISOString().slice(0, 10));
  }
  return keys;
}

/** A day key (`YYYY-MM-DD`, a UTC day) as a local date with the same calendar day, for formatting. */
function dayAsLocal(key: string): Date {
  const [y, m, d] = key.split("-").map(Number);
  return new Date(y ?? 1970, (m ?? 1) - 1, d ?? 1);
}

const isDayKey = (key: string) => /^\d{4}-\d{2}-\d{2}$/.test(key);

/** A bucket key for a chart axis: "05:00" for hours, "Dec 6" for days. */
export function bucketTick(key: string): string {
  return isDayKey(key) ? formatDay(key) : formatTime(key);
}

/** A bucket key in full (tooltips, table rows): "Dec 6, 2026, 5:00 AM" or "Dec 6, 2026". */
export function bucketLabel(key: string): string {
  return isDayKey(key) ? formatDate(dayAsLocal(key)) : formatDateTime(key);
}

export interface LlmBucket {
  key: string;
  requests: number;
  promptTokens: number;
  completionTokens: number;
  tokens: number;
  cost: number;
  errors: number;
  avgLatencyMs: number | null;
}

export function llmSeries(points: readonly UsagePoint[], range: Range): LlmBucket[] {
  const byKey = new Map(points.map((p) => [p.group_key ?? "", p]));
  return bucketKeys(range).map((key) => {
    const p = byKey.get(key);
    return {
      key,
      requests: p?.total_requests ?? 0,
      promptTokens: p?.prompt_tokens ?? 0,
      completionTokens: p?.completion_tokens ?? 0,
      tokens: p?.total_tokens ?? 0,
      cost: p?.cost_estimate ?? 0,
      errors: p?.error_count ?? 0,
      avgLatencyMs: p && p.total_requests > 0 ? p.avg_duration_ms : null,
    };
  });
}

export interface McpBucket {
  key: string;
  calls: number;
  success: number;
  errors: number;
  timeouts: number;
  avgDurationMs: number | null;
}

export function mcpSeries(points: readonly McpUsagePoint[], range: Range): McpBucket[] {
  const byKey = new Map(points.map((p) => [p.group_key ?? "", p]));
  return bucketKeys(range).map((key) => {
    const p = byKey.get(key);
    return {
      key,
      calls: p?.total_calls ?? 0,
      success: p?.success_count ?? 0,
      errors: p?.error_count ?? 0,
      timeouts: p?.timeout_count ?? 0,
      avgDurationMs: p && p.total_calls > 0 ? p.avg_duration_ms : null,
    };
  });
}

/** Sums over rows; averages weighted by their request (call) counts. */
export function llmTotals(points: readonly UsagePoint[]) {
  let requests = 0, prompt = 0, completion = 0, tokens = 0, cost = 0, duration = 0;
  for (const p of points) {
    requests += p.total_requests;
    prompt += p.prompt_tokens;
    completion += p.completion_tokens;
    tokens += p.total_tokens;
    cost += p.cost_estimate;
    duration += p.avg_duration_ms * p.total_requests;
  }
  return { requests, prompt, completion, tokens, cost, avgLatencyMs: requests > 0 ? duration / requests : null };
}

export function mcpTotals(points: readonly McpUsagePoint[]) {
  let calls = 0, success = 0, errors = 0, timeouts = 0, codeMode = 0, duration = 0;
  for (const p of points) {
    calls += p.total_calls;
    success += p.success_count;
    errors += p.error_count;
    timeouts += p.timeout_count;
    codeMode += p.code_mode_calls;
    duration += p.avg_duration_ms * p.total_calls;
  }
  return {
    calls,
    success,
    errors,
    timeouts,
    codeMode,
    successRate: calls > 0 ? (success / calls) * 100 : null,
    avgDurationMs: calls > 0 ? duration / calls : null,
  };
}

/** A group row's name: its label, else its key; `null` keys are the rows without that dimension. */
export function rowName(point: { group_key: string | null; group_label: string | null }, groupBy: string): string {
  if (point.group_key === null) return "(none)";
  if (groupBy === "day" || groupBy === "hour") return bucketLabel(point.group_key);
  return point.group_label || point.group_key;
}
