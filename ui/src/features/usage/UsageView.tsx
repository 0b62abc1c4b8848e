/** One usage tab (LLM or MCP): filters in the URL, totals, charts over time, the grouped table, CSV export. */
import { useMemo, useState, type ReactNode } from "react";
import {
  Button,
  Card,
  CardContent,
  CardHeader,
  EmptyState,
  Field,
  Input,
  NativeSelect,
  QueryView,
  StatCard,
  Table,
  TBody,
  TD,
  TH,
  THead,
  TR,
} from "../../components/ui";
import { useCurrentUser } from "../../lib/auth";
import { useOrgId } from "../../lib/viewedOrg";
import { toCsv, downloadText } from "../../lib/download";
import { formatCompact, formatCurrency, formatDuration, formatNumber, formatPercent } from "../../lib/format";
import { hasRole } from "../../lib/roles";
import type { UsagePoint, UsageReport } from "../../lib/types";
import { LlmCharts, McpCharts, TopGroups } from "./charts";
import { csvColumns, llmColumns, mcpColumns, type UsageColumn } from "./columns";
import {
  DEFAULT_GROUP,
  HOUR_GROUP_MAX,
  groupLabel,
  groupOptions,
  rangeMs,
  usageSource,
  utcDay,
  type Range,
  type Scope,
} from "./params";
import { useUsageReport } from "./queries";
import { RangeFields, rangeText, readRange, useParamsUpdate } from "./RangeFields";
import { llmSeries, llmTotals, mcpSeries, mcpTotals, rowName } from "./series";
import type { McpUsagePoint, McpUsageReport, UsageKind } from "./types";

type Row = UsagePoint | McpUsagePoint;

/** Rows the table shows at first (a grouping by key or user can have thousands; the CSV has them all). */
const TABLE_ROWS = 200;

function matches(row: Row, groupBy: string, filter: string): boolean {
  if (!filter) return true;
  const needle = filter.toLowerCase();
  return [rowName(row, groupBy), row.group_key ?? ""].some((v) => v.toLowerCase().includes(needle));
}

export function UsageView({ kind }: { kind: UsageKind }) {
  const me = useCurrentUser();
  const orgId = useOrgId();
  const [params, update] = useParamsUpdate();

  const isSystem = hasRole(me, "system_admin");
  const scope: Scope = isSystem && params.get("scope") === "org" ? "org" : "all";
  const source = usageSource(me, orgId, kind, scope);
  const current = readRange(params);
  const { range, rangeError } = current;
  const filter = params.get("q") ?? "";

  const allGroups = source ? groupOptions(kind, source) : [];
  const options = allGroups.map((g) =>
    g.value === "hour" && range && rangeMs(range) > HOUR_GROUP_MAX ? { ...g, label: `${g.label} (up to 7 days)`, disabled: true } : g,
  );
  const requested = params.get("group") ?? DEFAULT_GROUP[kind];
  const group = options.some((o) => o.value === requested && !("disabled" in o && o.disabled)) ? requested : DEFAULT_GROUP[kind];

  if (!source) return null; // the page does not offer this tab to the caller
  return (
    <UsageContent
      kind={kind}
      source={source}
      range={range}
      rangeError={rangeError}
      group={group}
      filter={filter}
      controls={
        <div className="flex flex-wrap items-start gap-3">
          {isSystem ? (
            <Field label="Scope" className="w-full sm:w-48">
              <NativeSelect
                value={scope}
                onChange={(e) => update({ scope: e.target.value === "org" ? "org" : null, group: e.target.value === "org" && group === "org" ? null : params.get("group") })}
                options={[
                  { value: "all", label: "All organizations" },
                  { value: "org", label: "This organization" },
                ]}
              />
            </Field>
          ) : null}
          <RangeFields value={current} update={update} />
          <Field label="Group by" className="w-full sm:w-48">
            <NativeSelect value={group} onChange={(e) => update({ group: e.target.value === DEFAULT_GROUP[kind] ? null : e.target.value, q: null })} options={options} />
          </Field>
        </div>
      }
      onFilter={(q) => update({ q }, true)}
    />
  );
}

interface ContentProps {
  kind: UsageKind;
  source: NonNullable<ReturnType<typeof usageSource>>;
  range: Range | undefined;
  rangeError: string | undefined;
  group: string;
  filter: string;
  controls: ReactNode;
  onFilter: (q: string) => void;
}

function UsageContent({ kind, source, range, rangeError, group, filter, controls, onFilter }: ContentProps) {
  const series = useUsageReport(kind, source, range?.bucket ?? "day", range);
  const grouped = useUsageReport(kind, source, group, range);
  const noun = kind === "llm" ? "requests" : "tool calls";
  const what = range ? `${source.label} · ${rangeText(range)}` : source.label;
  return (
    <div className="flex flex-col gap-6">
      <Card>
        <CardHeader title="Filters" description={what} />
        <CardContent>{controls}</CardContent>
      </Card>
      {rangeError ? (
        <EmptyState title="Choose a valid date range" description={rangeError} />
      ) : (
        <>
          <Totals kind={kind} report={series.data} loading={series.isPending} />
          <Card>
            <CardHeader title="Over time" description={range?.bucket === "hour" ? "Per hour." : "Per day (UTC days)."} />
            <CardContent>
              <QueryView
                query={series}
                loadingLabel="Loading usage"
                errorTitle="Could not load the usage"
                isEmpty={(r) => r.data.length === 0}
                empty={<EmptyState title={`No ${noun} in this range`} description="Choose a longer range, or come back after some traffic." />}
              >
                {(r) => <SeriesCharts kind={kind} report={r} range={range!} />}
              </QueryView>
            </CardContent>
          </Card>
          <GroupedCard key={`${kind}:${group}`} kind={kind} query={grouped} group={group} filter={filter} onFilter={onFilter} range={range!} scope={source.slug} />
        </>
      )}
    </div>
  );
}

/** The charts over time; memoised so typing in the row filter does not redraw them. */
function SeriesCharts({ kind, report, range }: { kind: UsageKind; report: UsageReport | McpUsageReport; range: Range }) {
  const { from, to, bucket } = range;
  const charts = useMemo(
    () =>
      kind === "llm" ? (
        <LlmCharts data={llmSeries((report as UsageReport).data, { from, to, bucket })} />
      ) : (
        <McpCharts data={mcpSeries((report as McpUsageReport).data, { from, to, bucket })} />
      ),
    [kind, report, from, to, bucket],
  );
  return charts;
}

function Totals({ kind, report, loading }: { kind: UsageKind; report: UsageReport | McpUsageReport | undefined; loading: boolean }) {
  if (kind === "llm") {
    const t = report ? llmTotals((report as UsageReport).data) : null;
    return (
      <div className="grid grid-cols-2 gap-3 sm:gap-4 lg:grid-cols-4">
        <StatCard label="Requests" value={formatNumber(t?.requests)} loading={loading} />
        <StatCard
          label="Tokens"
          value={formatCompact(t?.tokens)}
          hint={t ? `${formatNumber(t.prompt)} prompt · ${formatNumber(t.completion)} completion` : undefined}
          loading={loading}
        />
        <StatCard label="Estimated cost" value={formatCurrency(t?.cost)} hint="From model pricing" loading={loading} />
        <StatCard label="Average latency" value={formatDuration(t?.avgLatencyMs)} loading={loading} />
      </div>
    );
  }
  const t = report ? mcpTotals((report as McpUsageReport).data) : null;
  return (
    <div className="grid grid-cols-2 gap-3 sm:gap-4 lg:grid-cols-4">
      <StatCard label="Tool calls" value={formatNumber(t?.calls)} hint={t ? `${formatNumber(t.codeMode)} through Code Mode` : undefined} loading={loading} />
      <StatCard label="Success rate" value={formatPercent(t?.successRate)} loading={loading} />
      <StatCard
        label="Errors"
        value={formatNumber(t ? t.errors + t.timeouts : null)}
        hint={t ? `${formatNumber(t.errors)} failed · ${formatNumber(t.timeouts)} timed out` : undefined}
        loading={loading}
      />
      <StatCard label="Average duration" value={formatDuration(t?.avgDurationMs)} loading={loading} />
    </div>
  );
}

function GroupedCard({
  kind,
  query,
  group,
  filter,
  onFilter,
  range,
  scope,
}: {
  kind: UsageKind;
  query: ReturnType<typeof useUsageReport>;
  group: string;
  filter: string;
  onFilter: (q: string) => void;
  range: Range;
  scope: string;
}) {
  const label = groupLabel(kind, group);
  const columns = (kind === "llm" ? llmColumns(group) : mcpColumns(group)) as UsageColumn<Row>[];
  const rows = ((query.data?.data ?? []) as Row[]).filter((r) => matches(r, group, filter));
  const [showAll, setShowAll] = useState(false);
  const shown = showAll ? rows : rows.slice(0, TABLE_ROWS);
  const exportCsv = () => {
    const name = `voidllm-${kind}-usage-${scope}-by-${group}-${utcDay(Date.parse(range.from))}-to-${utcDay(Date.parse(range.to) - 1)}.csv`;
    downloadText(name, toCsv(rows, csvColumns(columns)));
  };
  const time = group === "day" || group === "hour";
  const value = (r: Row) => ("total_tokens" in r ? r.total_tokens : r.total_calls);
  return (
    <Card>
      <CardHeader
        title={`By ${label.toLowerCase()}`}
        description={kind === "llm" ? "Ordered by tokens." : "Ordered by calls."}
        actions={
          <Button variant="secondary" size="sm" onClick={exportCsv} disabled={rows.length === 0}>
            Export CSV
          </Button>
        }
      />
      <CardContent className="flex flex-col gap-4">
        {query.data && query.data.data.length > 0 ? (
          <Field label="Filter rows" className="max-w-sm">
            <Input type="search" value={filter} onChange={(e) => onFilter(e.target.value)} placeholder={`Filter by ${label.toLowerCase()}`} />
          </Field>
        ) : null}
        <QueryView
          query={query}
          loadingLabel="Loading usage"
          errorTitle="Could not load the usage"
          isEmpty={(r) => r.data.length === 0}
          empty={<EmptyState title={`No ${kind === "llm" ? "requests" : "tool calls"} in this range`} />}
        >
          {() =>
            rows.length === 0 ? (
              <EmptyState title="No rows match the filter" />
            ) : (
              <>
                {!time ? (
                  <TopGroups
                    label={`Top ${label.toLowerCase()} by ${kind === "llm" ? "tokens" : "calls"}`}
                    items={rows.slice(0, 10).map((r) => ({ name: rowName(r, group), value: value(r) }))}
                    valueName={kind === "llm" ? "Tokens" : "Calls"}
                    format={formatNumber}
                  />
                ) : null}
                <Table caption={`${kind === "llm" ? "LLM" : "MCP"} usage by ${label.toLowerCase()}`}>
                  <THead>
                    <TR>
                      {columns.map((c) => (
                        <TH key={c.header} className={c.numeric ? "text-right" : undefined}>
                          {c.header}
                        </TH>
                      ))}
                    </TR>
                  </THead>
                  <TBody>
                    {shown.map((r) => (
                      <TR key={r.group_key ?? "(none)"}>
                        {columns.map((c, i) => (
                          <TD key={c.header} className={c.numeric ? "text-right tabular-nums" : i === 0 ? "font-medium" : "font-mono text-xs"}>
                            {c.show(r)}
                          </TD>
                        ))}
                      </TR>
                    ))}
                  </TBody>
                </Table>
                {shown.length < rows.length ? (
                  <div className="flex flex-wrap items-center gap-3 text-sm text-muted">
                    <span>
                      Showing the first {formatNumber(shown.length)} of {formatNumber(rows.length)} rows. Filter them, or export
                      all as CSV.
                    </span>
                    <Button variant="secondary" size="sm" onClick={() => setShowAll(true)}>
                      Show all {formatNumber(rows.length)} rows
                    </Button>
                  </div>
                ) : null}
              </>
            )
          }
        </QueryView>
      </CardContent>
    </Card>
  );
}
