/**
 * The usage page's state, all of it in the URL (`/usage/llm?range=7d&group=model&q=gpt`): range preset or
 * custom UTC days, group-by dimension, scope (system admins), and a text filter over the grouped rows.
 * Also which API route the caller's role reads.
 */
import { hasRole } from "../../lib/roles";
import type { Me } from "../../lib/types";
import type { UsageKind } from "./types";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** The API's longest range (voidllm.admin.usage.MAX_RANGE). */
export const MAX_DAYS = 90;

export const PRESETS = [
  { value: "24h", label: "Last 24 hours", hours: 24 },
  { value: "7d", label: "Last 7 days", hours: 7 * 24 },
  { value: "30d", label: "Last 30 days", hours: 30 * 24 },
  { value: "90d", label: "Last 90 days", hours: 90 * 24 },
] as const;

export type Preset = (typeof PRESETS)[number]["value"];
export const DEFAULT_PRESET: Preset = "7d";

export interface Range {
  /** RFC 3339, inclusive. */
  from: string;
  /** RFC 3339, exclusive. */
  to: string;
  /** The time buckets of the charts: hours for up to two days, else days. */
  bucket: "hour" | "day";
}

export type RangeResult = { range: Range; error?: undefined } | { range?: undefined; error: string };

const DAY_RE = /^\d{4}-\d{2}-\d{2}$/;

function parseDay(value: string): number | null {
  if (!DAY_RE.test(value)) return null;
  const t = Date.parse(`${value}T00:00:00Z`);
  return Number.isNaN(t) ? null : t;
}

/** `YYYY-MM-DD` of a UTC instant. */
export function utcDay(t: number): string {
  return new Date(t).toISOString().slice(0, 10);
}

function withBucket(from: number, to: number): Range {
  return { from: new Date(from).toISOString(), to: new Date(to).toISOString(), bucket: to - from <= 2 * DAY ? "hour" : "day" };
}

/**
 * The range of a preset (ending at the next whole hour, so the key stays the same for an hour) or of custom
 * UTC days `from`..`to` (both inclusive).
 */
export function resolveRange(preset: string, fromDay: string, toDay: string, now: number = Date.now()): RangeResult {
  if (preset === "custom") {
    const from = parseDay(fromDay);
    const to = parseDay(toDay);
    if (from === null || to === null) return { error: "Choose a start and an end day." };
    if (from > to) return { error: "The start day must not be after the end day." };
    if (to + DAY - from > MAX_DAYS * DAY) return { error: `Choose at most ${MAX_DAYS} days.` };
    return { range: withBucket(from, to + DAY) };
  }
  const hours = PRESETS.find((p) => p.value === preset)?.hours ?? PRESETS.find((p) => p.value === DEFAULT_PRESET)!.hours;
  const end = Math.floor(now / HOUR) * HOUR + HOUR;
  return { range: withBucket(end - hours * HOUR, end) };
}

export interface GroupOption {
  value: string;
  label: string;
}

const LLM_GROUPS: GroupOption[] = [
  { value: "model", label: "Model" },
  { value: "key", label: "API key" },
  { value: "team", label: "Team" },
  { value: "user", label: "User" },
  { value: "source", label: "Source" },
  { value: "project", label: "Project" },
  { value: "day", label: "Day" },
  { value: "hour", label: "Hour" },
];

const MCP_GROUPS: GroupOption[] = [
  { value: "server", label: "Server" },
  { value: "tool", label: "Tool" },
  { value: "status", label: "Status" },
  { value: "key", label: "API key" },
  { value: "team", label: "Team" },
  { value: "user", label: "User" },
  { value: "day", label: "Day" },
  { value: "hour", label: "Hour" },
];

const ORG_GROUP: GroupOption = { value: "org", label: "Organization" };

export type Scope = "all" | "org";

/** Where the caller's usage comes from (by role; system admins choose all organisations or their own). */
export interface UsageSource {
  path: string;
  /** What the numbers cover, in words. */
  label: string;
  /** Only the system-wide routes group by organisation. */
  systemWide: boolean;
  /** For file names: "all-orgs", "org" or "mine". */
  slug: string;
}

/** `orgId`: the organisation being viewed (lib/viewedOrg.tsx; another than the session's only for system admins). */
export function usageSource(me: Me, orgId: string, kind: UsageKind, scope: Scope): UsageSource | null {
  const org = encodeURIComponent(orgId);
  if (hasRole(me, "system_admin") && scope === "all") {
    return { path: kind === "llm" ? "usage" : "mcp-usage", label: "All organizations", systemWide: true, slug: "all-orgs" };
  }
  if (hasRole(me, "org_admin")) {
    return { path: `orgs/${org}/${kind === "llm" ? "usage" : "mcp-usage"}`, label: orgId === me.org_id ? "Your organization" : "The organization being viewed", systemWide: false, slug: "org" };
  }
  // Members and team admins read their own LLM usage; MCP usage has no per-user route.
  return kind === "llm" ? { path: "usage/me", label: "Your requests", systemWide: false, slug: "mine" } : null;
}

/** Whether the caller may see the MCP tab at all. */
export const canSeeMcp = (me: Me) => hasRole(me, "org_admin");

export function groupOptions(kind: UsageKind, source: UsageSource): GroupOption[] {
  const base = kind === "llm" ? LLM_GROUPS : MCP_GROUPS;
  return source.systemWide ? [...base.slice(0, -2), ORG_GROUP, ...base.slice(-2)] : base;
}

export const DEFAULT_GROUP: Record<UsageKind, string> = { llm: "model", mcp: "server" };

/** The label of a group-by value ("API key"), or the value. */
export function groupLabel(kind: UsageKind, value: string): string {
  return [...(kind === "llm" ? LLM_GROUPS : MCP_GROUPS), ORG_GROUP].find((g) => g.value === value)?.label ?? value;
}

/** Hour grouping is offered for up to a week (a row per hour). */
export const HOUR_GROUP_MAX = 7 * DAY;
export const rangeMs = (range: Range) => Date.parse(range.to) - Date.parse(range.from);
