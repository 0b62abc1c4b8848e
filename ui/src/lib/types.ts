/** Shapes of the management API used across pages (see /api/docs/openapi.json). */

export type Role = "member" | "team_admin" | "org_admin" | "system_admin";

/** GET /api/v1/me: the signed-in user, with the role and organisation of this session. */
export interface Me {
  id: string;
  email: string;
  display_name: string;
  role: Role;
  org_id: string;
  is_system_admin: boolean;
  /** Ids of the teams where this user's team role is `team_admin` (absent from older gateways). */
  team_admin_of?: string[];
}

/** GET /api/v1/auth/providers (public): the sign-ins the gateway offers. */
export interface AuthProviders {
  local: boolean;
  oidc: boolean;
}

/** A cursor page: `GET ...?limit=&cursor=`. */
export interface Page<T> {
  data: T[];
  has_more: boolean;
  next_cursor?: string | null;
}

/** POST /api/v1/auth/session. */
export interface SessionSignIn {
  user: Me;
  expires_at: string;
  csrf_token: string;
}

/** GET /api/v1/auth/sessions items. */
export interface SessionOut {
  id: string;
  key_hint: string;
  created_at: string;
  expires_at: string;
  current: boolean;
}

export interface BudgetWarning {
  window: string;
  scope: string;
  scope_id: string;
  name: string;
  limit: number;
  usage: number;
  percent_used: number;
}

/** GET /api/v1/dashboard/stats. */
export interface DashboardStats {
  scope: string;
  active_keys: number;
  total_teams: number | null;
  total_members: number | null;
  requests_24h: number;
  tokens_24h: number;
  cost_estimate_24h: number;
  budget_warnings: BudgetWarning[];
  models_healthy: number;
  models_unhealthy: number;
  models_degraded: number;
}

export interface UpstreamHealth {
  name: string;
  status: string;
  last_check: string | null;
  last_error: string | null;
  latency_ms: number | null;
  health_ok: boolean | null;
  models_ok: boolean | null;
  functional_ok: boolean | null;
}

/** GET /api/v1/models/health. */
export interface HealthList {
  models: UpstreamHealth[];
}

export type UsageGroupBy = "model" | "team" | "key" | "user" | "org" | "day" | "hour" | "source" | "project";

export interface UsagePoint {
  group_key: string | null;
  group_label: string | null;
  total_requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cost_estimate: number;
  avg_duration_ms: number;
  /** Requests whose outcome was not ok (error answers, timeouts, broken streams). */
  error_count: number;
}

/** GET /api/v1/usage, /api/v1/orgs/{org_id}/usage, /api/v1/usage/me. */
export interface UsageReport {
  org_id: string | null;
  from: string;
  to: string;
  group_by: UsageGroupBy | null;
  data: UsagePoint[];
}
