/** Shapes of the team routes (`/api/v1/orgs/{org_id}/teams...`): teams, memberships, aliases, MCP access. */
import type { LimitField } from "../keys/types";

/** TeamOut: a team with its four limits (0 = unlimited) and counts. */
export interface Team {
  id: string;
  org_id: string;
  name: string;
  slug: string;
  daily_token_limit: number;
  monthly_token_limit: number;
  requests_per_minute: number;
  requests_per_day: number;
  member_count: number;
  key_count: number;
  created_at: string;
  updated_at: string;
}

/** POST /orgs/{org_id}/teams (org admins); the slug is derived from the name when absent. */
export type TeamCreate = { name: string; slug?: string } & Record<LimitField, number>;

/** PATCH /orgs/{org_id}/teams/{team_id}: team admins change name and slug, org admins also the limits. */
export type TeamUpdate = { name?: string; slug?: string } & Partial<Record<LimitField, number>>;

export type TeamRole = "team_admin" | "member";

/** MemberOut: an org or team membership with the member's email and display name. */
export interface Member {
  id: string;
  org_id: string;
  team_id?: string | null;
  user_id: string;
  role: string;
  email: string;
  display_name: string;
  created_at: string;
  updated_at: string;
}

/** AliasOut: a scoped model alias. */
export interface ModelAlias {
  id: string;
  alias: string;
  model_name: string;
  scope_type: string;
  org_id: string;
  team_id: string | null;
  created_by: string | null;
  created_at: string;
}

/** The fields of McpServerOut the access page shows. */
export interface McpServerBrief {
  id: string;
  name: string;
  alias: string;
  scope: string;
  source: string;
  is_active: boolean;
}

/** GET/PUT .../mcp-access: an empty list adds no restriction at this level. */
export interface McpAccess {
  servers: string[];
}

/** One row of a grouped usage report (GET /orgs/{org_id}/usage?group_by=team). */
export interface UsageRow {
  group_key: string | null;
  total_requests: number;
  total_tokens: number;
}
