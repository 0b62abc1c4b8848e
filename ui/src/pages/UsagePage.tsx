import { Link, Navigate, useLocation, useNavigate, useParams } from "react-router";
import { Button, EmptyState, PageHeader, Tabs, TabsContent, TabsList, TabsTrigger } from "../components/ui";
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

/**
 * Usage: `/usage` or `/usage/llm` (requests, tokens, cost) and `/usage/mcp` (tool calls; organisation admins
 * and up).
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

  // `/usage` itself shows the LLM tab (no redirect: a remembered `next=/usage` lands where it asked).
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
              <Link to={`${base}/llm`}>LLM usage</Link>
            </Button>
          }
        />
      </>
    );
  }
  const tab: UsageKind = sub === "mcp" ? "mcp" : "llm";
  if (!mcp) {
    return (
      <>
        {header}
        <UsageView kind="llm" />
      </>
    );
  }
  return (
    <>
      {header}
      <Tabs value={tab} onValueChange={(value) => navigate(`${base}/${value}${sharedSearch(location.search)}`)}>
        <TabsList aria-label="Usage type">
          <TabsTrigger value="llm">LLM</TabsTrigger>
          <TabsTrigger value="mcp">MCP</TabsTrigger>
        </TabsList>
        <TabsContent value="llm" className="mt-6">
          <UsageView kind="llm" />
        </TabsContent>
        <TabsContent value="mcp" className="mt-6">
          <UsageView kind="mcp" />
        </TabsContent>
      </Tabs>
    </>
  );
}
