/**
 * The audit log page's filters, all in the URL (`/audit-log?action=create&resource=api_key&from=...`), and
 * the API query they make. Times are typed in the browser's time zone and sent as RFC 3339 instants.
 */
import { hasRole } from "../../lib/roles";
import type { Me } from "../../lib/types";

export interface AuditFilters {
  action: string;
  resource: string;
  actor: string;
  /** An HTTP status code, or "" for any. */
  status: string;
  /** `YYYY-MM-DDTHH:mm` (a `datetime-local` value, the browser's time zone), or "". */
  from: string;
  to: string;
  /** System admins: every organisation ("all") or the one they are viewing ("org"). */
  scope: "all" | "org";
  limit: number;
}

export const PAGE_SIZES = [25, 50, 100] as const;
export const DEFAULT_LIMIT = 50;

/** What the gateway records (voidllm/web/api: the routes' `audit=(action, resource_type)`), as suggestions. */
export const ACTIONS = [
  "accept", "activate", "change_password", "create", "deactivate", "decline", "delete", "login", "logout",
  "logout_everywhere", "reactivate", "redeem", "refresh_tools", "revoke", "rotate", "test", "test_connection", "update",
];
export const RESOURCE_TYPES = [
  "api_key", "deployment", "invite", "mcp_server", "mcp_tool_blocklist", "model", "model_alias", "org_membership",
  "organization", "service_account", "session", "team", "team_membership", "user",
];

/** Only successful mutations are recorded, so these are the statuses an entry can have. */
export const STATUSES = [
  { value: "200", label: "200 OK" },
  { value: "201", label: "201 Created" },
  { value: "204", label: "204 No Content" },
];

const LOCAL_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/;

export function readFilters(params: URLSearchParams): AuditFilters {
  const limit = Number(params.get("limit"));
  const time = (name: string) => {
    const value = params.get(name) ?? "";
    return LOCAL_TIME.test(value) ? value : "";
  };
  return {
    action: params.get("action") ?? "",
    resource: params.get("resource") ?? "",
    actor: params.get("actor") ?? "",
    status: /^\d{3}$/.test(params.get("status") ?? "") ? params.get("status")! : "",
    from: time("from"),
    to: time("to"),
    scope: params.get("scope") === "org" ? "org" : "all",
    limit: (PAGE_SIZES as readonly number[]).includes(limit) ? limit : DEFAULT_LIMIT,
  };
}

/** The URL parameters of `filters` (defaults left out). */
export function filterParams(filters: AuditFilters): URLSearchParams {
  const out = new URLSearchParams();
  const set = (name: string, value: string) => {
    if (value.trim()) out.set(name, value.trim());
  };
  set("action", filters.action);
  set("resource", filters.resource);
  set("actor", filters.actor);
  set("status", filters.status);
  set("from", filters.from);
  set("to", filters.to);
  if (filters.scope === "org") out.set("scope", "org");
  if (filters.limit !== DEFAULT_LIMIT) out.set("limit", String(filters.limit));
  return out;
}

/** A `datetime-local` value as an RFC 3339 instant (UTC), or undefined. */
export function localToInstant(value: string): string | undefined {
  if (!value) return undefined;
  const t = new Date(value).getTime();
  return Number.isNaN(t) ? undefined : new Date(t).toISOString();
}

/** The range's problem in words, or undefined. */
export function rangeError(filters: AuditFilters): string | undefined {
  const from = localToInstant(filters.from);
  const to = localToInstant(filters.to);
  if (from && to && from > to) return "The start must not be after the end.";
  return undefined;
}

/**
 * `GET /audit-logs` query parameters of `filters` (an org admin's entries are always their organisation's; a
 * system admin's "org" scope is `orgId`, the organisation being viewed).
 */
export function auditQuery(
  me: Me,
  filters: AuditFilters,
  cursor: string | undefined,
  orgId: string = me.org_id,
): Record<string, string | number | undefined> {
  return {
    limit: filters.limit,
    cursor,
    action: filters.action || undefined,
    resource_type: filters.resource || undefined,
    actor_id: filters.actor || undefined,
    status_code: filters.status || undefined,
    from: localToInstant(filters.from),
    to: localToInstant(filters.to),
    org_id: hasRole(me, "system_admin") && filters.scope === "org" ? orgId : undefined,
  };
}

/** "api_key" → "API key", "change_password" → "change password" (for sentences). */
export function words(value: string): string {
  return value
    .split("_")
    .map((w) => (w === "api" || w === "mcp" || w === "ip" ? w.toUpperCase() : w.toLowerCase()))
    .join(" ");
}

/** "api_key" → "API key", "mcp_server" → "MCP server" (the raw value stays visible in the detail). */
export function humanize(value: string): string {
  const text = words(value);
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export const ACTOR_TYPES: Record<string, string> = {
  user: "User",
  service_account: "Service account",
  system: "System",
  unauthenticated: "Unauthenticated",
};

/** The request body an entry recorded, pretty-printed (secrets are redacted by the gateway), or null. */
export function prettyDescription(description: string): string | null {
  if (!description) return null;
  try {
    const parsed: unknown = JSON.parse(description);
    if (parsed === null || (typeof parsed === "object" && Object.keys(parsed).length === 0)) return null;
    return JSON.stringify(parsed, null, 2);
  } catch {
    return description;
  }
}
