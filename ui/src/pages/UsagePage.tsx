import { Link, Navigate, useLocation, useNavigate, useParams } from "react-router";
import { Button, EmptyState, PageHeader, Tabs, TabsContent, TabsList, TabsTrigger } from "../components/ui";
import { UsageOverview } from "../features/usage/UsageOverview";
import { UsageView } from "../features/usage/UsageView";
import { canSeeMcp } from "../features/usage/params";
import type { UsageKind } from "../features/usage/types";
import { useCurrentUser } from "../lib/auth";
import { hasRole } from "../lib/roles";

/** Query parameters that mean the same on both tabs (the group-by dimensions and row filter differ). */
const SHARED = ["range", "from", "to", "scope"];

function sharedSearch(search: string): string {
  const from = new URLSearchParams(search);
  const next = new URLSearchParams();
  for (const key of SHARED) {
    const value = from.get(key);
    if (value) next.set(key, value);
  }
  const text = next.toString();
  return text ? `?${text}` : "";
}

type Tab = "overview" | UsageKind;

/**
 * Usage: `/usage` the overview (the last 24 hours at a glance), `/usage/llm` (requests, tokens, cost) and
 * `/usage/mcp` (tool calls; organisation admins and up).
 * Every filter is in the URL; the numbers come from the API's grouped reports only.
 */
export default function UsagePage() {
  const me = useCurrentUser();
  const location = useLocation();
  const navigate = useNavigate();
  const sub = (useParams()["*"] ?? "").replace(/\/+$/, "");
  const path = location.pathname.replace(/\/+$/, "");
  const base = sub ? path.slice(0, -(sub.length + 1)) : path;
  const mcp = canSeeMcp(me);

  // `/usage` itself is the overview (no redirect: a remembered `next=/usage` lands where it asked). It has no
  // filters: a `/usage?...` link is one from before the overview existed, when `/usage` was the LLM tab.
  if (sub === "" && location.search) return <Navigate to={`${base}/llm${location.search}`} replace />;
  if (sub === "mcp" && !mcp) return <Navigate to={`${base}/llm${sharedSearch(location.search)}`} replace />;
  const description = hasRole(me, "system_admin")
    ? "Requests, tokens, estimated cost and MCP tool calls of every organization, or of yours."
    : hasRole(me, "org_admin")
      ? "Requests, tokens, estimated cost and MCP tool calls of your organization."
      : "Your own requests, tokens and estimated cost.";
  const header = <PageHeader title="Usage" description={description} />;
  if (sub !== "" && sub !== "llm" && sub !== "mcp") {
    return (
      <>
        {header}
        <EmptyState
          title="There is no such usage page"
          action={
            <Button asChild variant="secondary">
              <Link to={base}>Usage overview</Link>
            </Button>
          }
        />
      </>
    );
  }
  const tab: Tab = sub === "" ? "overview" : sub === "mcp" ? "mcp" : "llm";
  const open = (value: string) =>
    navigate(value === "overview" ? base : `${base}/${value}${sharedSearch(location.search)}`);
  return (
    <>
      {header}
      <Tabs value={tab} onValueChange={open}>
        <TabsList aria-label="Usage view">
          <TabsTrigger value="overview">Overview</TabsTrigger>
          <TabsTrigger value="llm">LLM</TabsTrigger>
          {mcp ? <TabsTrigger value="mcp">MCP</TabsTrigger> : null}
        </TabsList>
        <TabsContent value="overview" className="mt-6">
          <UsageOverview base={base} />
        </TabsContent>
        <TabsContent value="llm" className="mt-6">
          <UsageView kind="llm" />
        </TabsContent>
        {mcp ? (
          <TabsContent value="mcp" className="mt-6">
            <UsageView kind="mcp" />
          </TabsContent>
        ) : null}
      </Tabs>
    </>
  );
}
