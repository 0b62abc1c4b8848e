/** Shapes of the MCP server routes (`/api/v1/mcp-servers`, `/orgs/{id}/mcp-servers`, tools, blocklist, health). */

export const AUTH_TYPES = ["none", "bearer", "header", "oauth"] as const;
export type AuthType = (typeof AUTH_TYPES)[number];

export type McpScope = "global" | "org" | "team";

/** McpServerOut: never its secrets (`has_auth_token`, `has_oauth_client_secret` say whether one is stored). */
export interface McpServerOut {
  id: string;
  name: string;
  alias: string;
  url: string;
  auth_type: AuthType;
  auth_header: string;
  has_auth_token: boolean;
  oauth_token_url: string;
  oauth_client_id: string;
  has_oauth_client_secret: boolean;
  oauth_scopes: string;
  scope: McpScope;
  org_id: string | null;
  team_id: string | null;
  is_active: boolean;
  code_mode_enabled: boolean;
  /** "api" (managed here), "yaml" (voidllm.yaml) or "builtin" (the gateway's own `voidllm` server). */
  source: string;
  created_by: string | null;
  created_at: string;
  updated_at: string;
}

/** POST body; PATCH takes the same fields, each optional (a secret: absent keeps it, "" removes it). */
export interface McpServerWrite {
  name?: string;
  alias?: string;
  url?: string;
  auth_type?: AuthType;
  auth_header?: string;
  auth_token?: string;
  oauth_token_url?: string;
  oauth_client_id?: string;
  oauth_client_secret?: string;
  oauth_scopes?: string;
  code_mode_enabled?: boolean;
}

/** POST /mcp-servers/{id}/test. */
export interface McpTestResult {
  success: boolean;
  tools: string[] | null;
  error: string | null;
  /** The server only speaks the deprecated HTTP+SSE transport. */
  legacy_sse: boolean;
}

/** GET /mcp-servers/{id}/tools: the cached tool list. */
export interface McpTool {
  name: string;
  description: string;
  blocked: boolean;
}

/** GET /mcp-servers/{id}/blocklist. */
export interface BlockedTool {
  tool_name: string;
  reason: string;
  created_by: string | null;
  created_at: string;
}

/** GET /mcp-servers/health. */
export interface McpHealth {
  server_id: string;
  name: string;
  alias: string;
  /** "healthy", "unhealthy" or "unknown" (before the first probe). */
  status: string;
  latency_ms: number | null;
  tool_count: number | null;
  last_error: string | null;
  checked_at: string | null;
}
