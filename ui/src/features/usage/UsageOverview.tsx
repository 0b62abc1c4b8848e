/**
 * The usage overview (`/usage`): the last 24 hours at a glance, LLM requests (requests, tokens, estimated
 * cost, success rate, average duration) and, for organisation admins and up, MCP tool calls (calls, success
 * rate, errors, average duration), each with a link to its tab for the details.
 *
 * Both figures come from the same grouped reports the tabs read, asked without `group_by` (one totals row),
 * over the tabs' "Last 24 hours" range, so the overview and `/usage/llm?range=24h` show the same numbers.
 */
import { Link } from "react-router";
import { Button, Card, CardContent, CardHeader, EmptyState, QueryView, StatCard } from "../../components/ui";
import { useCurrentUser } from "../../lib/auth";
import { useOrgId } from "../../lib/viewedOrg";
import { formatCompact, formatCurrency, formatDuration, formatNumber, formatPercent } from "../../lib/format";
import type { UsageReport } from "../../lib/types";
import { canSeeMcp, resolveRange, usageSource, type Range, type UsageSource } from "./params";
import { useUsageReport } from "./queries";
import { llmTotals, mcpTotals } from "./series";
import type { McpUsageReport } from "./types";

/** The tabs' preset this overview matches (its links open the tabs on it). */
const PRESET = "24h";

/** No `group_by`: the API answers with one row of totals. */
const TOTALS = "";

function TabLink({ to, children }: { to: string; children: string }) {
  return (
    <Button asChild size="sm" variant="secondary">
      <Link to={`${to}?range=${PRESET}`}>{children}</Link>
    </Button>
  );
}

function LlmOverview({ source, range, tab }: { source: UsageSource; range: Range; tab: string }) {
  const report = useUsageReport("llm", source, TOTALS, range);
  return (
    <Card>
      <CardHeader title="LLM requests" description={`${source.label}, last 24 hours`} actions={<TabLink to={tab}>LLM usage</TabLink>} />
      <CardContent>
        <QueryView
          query={report}
          loadingLabel="Loading LLM usage"
          errorTitle="Could not load LLM usage"
          isEmpty={(data: UsageReport) => llmTotals(data.data).requests === 0}
          empty={
            <EmptyState
              title="No requests in the last 24 hours"
              description="Send one from the playground, or call the gateway with an API key."
              action={
                <Button asChild size="sm">
                  <Link to="/playground">Open the playground</Link>
                </Button>
              }
            />
          }
        >
          {(data) => {
            const t = llmTotals(data.data);
            const errors = data.data.reduce((sum, p) => sum + p.error_count, 0);
            return (
              <div className="grid grid-cols-2 gap-3 sm:gap-4 lg:grid-cols-5">
                <StatCard label="Requests (24h)" value={formatNumber(t.requests)} />
                <StatCard
                  label="Tokens (24h)"
                  value={formatCompact(t.tokens)}
                  hint={`${formatNumber(t.prompt)} prompt · ${formatNumber(t.completion)} completion`}
                />
                <StatCard label="Estimated cost (24h)" value={formatCurrency(t.cost)} hint="From model pricing" />
                <StatCard
                  label="Success rate"
                  value={formatPercent(((t.requests - errors) / t.requests) * 100)}
                  hint={`${formatNumber(errors)} failed`}
                />
                <StatCard label="Average duration" value={formatDuration(t.avgLatencyMs)} />
              </div>
            );
          }}
        </QueryView>
      </CardContent>
    </Card>
  );
}

function McpOverview({ source, range, tab }: { source: UsageSource; range: Range; tab: string }) {
  const report = useUsageReport("mcp", source, TOTALS, range);
  return (
    <Card>
      <CardHeader title="MCP tool calls" description={`${source.label}, last 24 hours`} actions={<TabLink to={tab}>MCP usage</TabLink>} />
      <CardContent>
        <QueryView
          query={report}
          loadingLabel="Loading MCP usage"
          errorTitle="Could not load MCP usage"
          isEmpty={(data: McpUsageReport) => mcpTotals(data.data).calls === 0}
          empty={<EmptyState title="No tool calls in the last 24 hours" description="Calls through the MCP gateway show here." />}
        >
          {(data) => {
            const t = mcpTotals(data.data);
            return (
              <div className="grid grid-cols-2 gap-3 sm:gap-4 lg:grid-cols-4">
                <StatCard label="Tool calls (24h)" value={formatNumber(t.calls)} hint={`${formatNumber(t.codeMode)} through Code Mode`} />
                <StatCard label="Success rate" value={formatPercent(t.successRate)} />
                <StatCard
                  label="Errors"
                  value={formatNumber(t.errors + t.timeouts)}
                  hint={`${formatNumber(t.errors)} failed · ${formatNumber(t.timeouts)} timed out`}
                />
                <StatCard label="Average duration" value={formatDuration(t.avgDurationMs)} />
              </div>
            );
          }}
        </QueryView>
      </CardContent>
    </Card>
  );
}

/** `base`: where the usage page is mounted (`/usage`); the tabs are `${base}/llm` and `${base}/mcp`. */
export function UsageOverview({ base }: { base: string }) {
  const me = useCurrentUser();
  const orgId = useOrgId();
  // A preset always resolves; it ends at the next whole hour, so the query keys stay for an hour.
  const range = resolveRange(PRESET, "", "").range!;
  const llm = usageSource(me, orgId, "llm", "all")!;
  const mcp = canSeeMcp(me) ? usageSource(me, orgId, "mcp", "all") : null;
  return (
    <div className="flex flex-col gap-6">
      <LlmOverview source={llm} range={range} tab={`${base}/llm`} />
      {mcp ? <McpOverview source={mcp} range={range} tab={`${base}/mcp`} /> : null}
    </div>
  );
}
