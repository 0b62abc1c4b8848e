import { Link } from "react-router";
import { useCurrentUser } from "../lib/auth";
import { isSystemAdmin } from "../lib/roles";
import { formatCompact, formatCurrency, formatDuration, formatNumber, formatPercent } from "../lib/format";
import type { BudgetWarning, DashboardStats, UpstreamHealth } from "../lib/types";
import {
  Badge,
  Button,
  Card,
  CardContent,
  CardHeader,
  DateTime,
  EmptyState,
  ErrorState,
  LoadingState,
  PageHeader,
  Progress,
  StatCard,
  Table,
  TBody,
  TD,
  TH,
  THead,
  TR,
  type BadgeTone,
} from "../components/ui";
import { RequestsOverTime, TokenSplit, TopModels, hourlySeries } from "../features/dashboard/charts";
import { last24Hours, useDashboardStats, useDashboardUsage, useModelHealth, usageScope } from "../features/dashboard/queries";

const SCOPE_TEXT: Record<string, string> = {
  system: "All organizations",
  org: "Your organization",
  team: "The teams you administer",
  user: "Your keys and requests",
};

function StatCards({ stats, loading }: { stats: DashboardStats | undefined; loading: boolean }) {
  const teamsHint =
    stats && stats.total_teams !== null
      ? `${formatNumber(stats.total_teams)} teams${stats.total_members !== null ? ` · ${formatNumber(stats.total_members)} members` : ""}`
      : undefined;
  return (
    <div className="grid grid-cols-1 gap-4 sm:grid-cols-2 xl:grid-cols-4">
      <StatCard label="Requests (24h)" value={formatNumber(stats?.requests_24h)} loading={loading} />
      <StatCard
        label="Tokens (24h)"
        value={formatCompact(stats?.tokens_24h)}
        hint={stats ? `${formatNumber(stats.tokens_24h)} tokens` : undefined}
        loading={loading}
      />
      <StatCard label="Estimated cost (24h)" value={formatCurrency(stats?.cost_estimate_24h)} hint="From model pricing" loading={loading} />
      <StatCard label="Active keys" value={formatNumber(stats?.active_keys)} hint={teamsHint} loading={loading} />
    </div>
  );
}

const WINDOW_TEXT: Record<string, string> = { daily: "Daily", monthly: "Monthly" };
const SCOPE_NAME: Record<string, string> = { org: "Organization", team: "Team", key: "Key" };

function BudgetWarnings({ warnings }: { warnings: BudgetWarning[] }) {
  return (
    <Card>
      <CardHeader title="Budget warnings" description="Token budgets at 80 % or more of their limit in the current window." />
      <CardContent>
        {warnings.length === 0 ? (
          <p className="text-sm text-muted">No token budget is near its limit.</p>
        ) : (
          <ul className="flex flex-col gap-4">
            {warnings.map((w) => {
              const label = `${WINDOW_TEXT[w.window] ?? w.window} tokens of ${SCOPE_NAME[w.scope] ?? w.scope} ${w.name}`;
              const over = w.usage >= w.limit;
              return (
                <li key={`${w.scope}:${w.scope_id}:${w.window}`} className="flex flex-col gap-1.5">
                  <div className="flex flex-wrap items-center justify-between gap-2 text-sm">
                    <span className="flex items-center gap-2">
                      <Badge tone={over ? "danger" : "warning"}>{over ? "Exhausted" : "Warning"}</Badge>
                      <span className="font-medium">{w.name}</span>
                      <span className="text-muted">
                        {SCOPE_NAME[w.scope] ?? w.scope} · {WINDOW_TEXT[w.window] ?? w.window}
                      </span>
                    </span>
                    <span className="tabular-nums text-muted">
                      {formatNumber(w.usage)} / {formatNumber(w.limit)} tokens ({formatPercent(w.percent_used)})
                    </span>
                  </div>
                  <Progress value={w.usage} max={w.limit} label={label} valueText={formatPercent(w.percent_used)} />
                </li>
              );
            })}
          </ul>
        )}
      </CardContent>
    </Card>
  );
}

const HEALTH_TONE: Record<string, BadgeTone> = { healthy: "success", degraded: "warning", unhealthy: "danger" };

function HealthTable({ models }: { models: UpstreamHealth[] }) {
  if (models.length === 0) return <p className="text-sm text-muted">No upstream has been probed yet.</p>;
  return (
    <Table caption="Upstream health">
      <THead>
        <TR>
          <TH>Upstream</TH>
          <TH>Status</TH>
          <TH>Latency</TH>
          <TH>Last check</TH>
        </TR>
      </THead>
      <TBody>
        {models.map((m) => (
          <TR key={m.name}>
            <TD className="font-medium">{m.name}</TD>
            <TD>
              <Badge tone={HEALTH_TONE[m.status] ?? "neutral"}>{m.status}</Badge>
            </TD>
            <TD className="tabular-nums">{formatDuration(m.latency_ms)}</TD>
            <TD>
              <DateTime value={m.last_check} relative />
            </TD>
          </TR>
        ))}
      </TBody>
    </Table>
  );
}

function ModelHealth({ stats, showUpstreams }: { stats: DashboardStats; showUpstreams: boolean }) {
  const health = useModelHealth(showUpstreams);
  const counts: [string, number, BadgeTone][] = [
    ["Healthy", stats.models_healthy, "success"],
    ["Degraded", stats.models_degraded, "warning"],
    ["Unhealthy", stats.models_unhealthy, "danger"],
  ];
  return (
    <Card>
      <CardHeader title="Model health" description="From the latest health probes of the models you may use." />
      <CardContent className="flex flex-col gap-4">
        <dl className="grid grid-cols-3 gap-3">
          {counts.map(([label, value, tone]) => (
            <div key={label} className="rounded-md border border-border p-3">
              <dt>
                <Badge tone={tone}>{label}</Badge>
              </dt>
              <dd className="mt-2 text-2xl font-semibold tabular-nums">{formatNumber(value)}</dd>
            </div>
          ))}
        </dl>
        {showUpstreams ? (
          health.isPending ? (
            <LoadingState label="Loading upstream health" />
          ) : health.isError ? (
            <ErrorState error={health.error} title="Could not load upstream health" onRetry={() => void health.refetch()} />
          ) : (
            <HealthTable models={health.data.models} />
          )
        ) : null}
      </CardContent>
    </Card>
  );
}

function UsageCharts({ requests24h }: { requests24h: number }) {
  const me = useCurrentUser();
  // Whole hours: the same range (and query key) until the next hour begins.
  const range = last24Hours();
  const hourly = useDashboardUsage(me, "hour", range);
  const byModel = useDashboardUsage(me, "model", range);
  const scope = usageScope(me);

  const empty = (
    <EmptyState
      title="No requests in the last 24 hours"
      description="Send one from the playground, or create an API key and call the gateway."
      action={
        <div className="flex flex-wrap justify-center gap-2">
          <Button asChild size="sm">
            <Link to="/playground">Open the playground</Link>
          </Button>
          <Button asChild size="sm" variant="secondary">
            <Link to="/keys">Manage API keys</Link>
          </Button>
        </div>
      }
    />
  );

  return (
    <div className="grid grid-cols-1 gap-6 xl:grid-cols-3">
      <Card className="xl:col-span-3">
        <CardHeader title="Requests over time" description={`${scope.label}, last 24 hours, per hour`} />
        <CardContent>
          {hourly.isPending ? (
            <LoadingState label="Loading requests over time" />
          ) : hourly.isError ? (
            <ErrorState error={hourly.error} title="Could not load requests over time" onRetry={() => void hourly.refetch()} />
          ) : hourly.data.data.length === 0 && requests24h === 0 ? (
            empty
          ) : (
            <RequestsOverTime data={hourlySeries(hourly.data.data, range.from, range.to)} />
          )}
        </CardContent>
      </Card>
      <Card className="xl:col-span-2">
        <CardHeader title="Top models" description={`${scope.label}, last 24 hours`} />
        <CardContent>
          {byModel.isPending ? (
            <LoadingState label="Loading top models" />
          ) : byModel.isError ? (
            <ErrorState error={byModel.error} title="Could not load top models" onRetry={() => void byModel.refetch()} />
          ) : byModel.data.data.length === 0 ? (
            <p className="text-sm text-muted">No model was used in the last 24 hours.</p>
          ) : (
            <TopModels points={byModel.data.data} />
          )}
        </CardContent>
      </Card>
      <Card>
        <CardHeader title="Token split" description="Prompt and completion tokens, last 24 hours" />
        <CardContent>
          {byModel.isPending ? (
            <LoadingState label="Loading token split" />
          ) : byModel.isError ? (
            <ErrorState error={byModel.error} title="Could not load the token split" onRetry={() => void byModel.refetch()} />
          ) : byModel.data.data.length === 0 ? (
            <p className="text-sm text-muted">No tokens in the last 24 hours.</p>
          ) : (
            <TokenSplit points={byModel.data.data} />
          )}
        </CardContent>
      </Card>
    </div>
  );
}

export default function DashboardPage() {
  const me = useCurrentUser();
  const stats = useDashboardStats();
  const scopeText = stats.data ? (SCOPE_TEXT[stats.data.scope] ?? stats.data.scope) : undefined;
  return (
    <>
      <PageHeader title="Dashboard" description={scopeText ? `${scopeText} · last 24 hours` : "Last 24 hours"} />
      <div className="flex flex-col gap-6">
        {stats.isError ? (
          <ErrorState error={stats.error} title="Could not load the dashboard" onRetry={() => void stats.refetch()} />
        ) : (
          <StatCards stats={stats.data} loading={stats.isPending} />
        )}
        {stats.data ? (
          <>
            {stats.data.budget_warnings.length > 0 ? <BudgetWarnings warnings={stats.data.budget_warnings} /> : null}
            <UsageCharts requests24h={stats.data.requests_24h} />
            <div className="grid grid-cols-1 gap-6 xl:grid-cols-2">
              <ModelHealth stats={stats.data} showUpstreams={isSystemAdmin(me)} />
              {stats.data.budget_warnings.length === 0 ? <BudgetWarnings warnings={[]} /> : null}
            </div>
          </>
        ) : null}
      </div>
    </>
  );
}
