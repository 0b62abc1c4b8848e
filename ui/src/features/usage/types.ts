/** MCP usage shapes (GET /api/v1/mcp-usage, /api/v1/orgs/{org_id}/mcp-usage); LLM ones are in lib/types. */

export type McpGroupBy = "server" | "tool" | "team" | "key" | "user" | "org" | "day" | "hour" | "status";

/** Totals of one group of MCP tool calls; `error_count`: every call neither successful nor timed out. */
export interface McpUsagePoint {
  group_key: string | null;
  group_label: string | null;
  total_calls: number;
  success_count: number;
  error_count: number;
  timeout_count: number;
  avg_duration_ms: number;
  code_mode_calls: number;
}

export interface McpUsageReport {
  org_id: string | null;
  from: string;
  to: string;
  group_by: McpGroupBy | null;
  data: McpUsagePoint[];
}

export type UsageKind = "llm" | "mcp";
