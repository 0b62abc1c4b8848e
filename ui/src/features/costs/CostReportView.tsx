/**
 * The cost report of the caller's organisation over a chosen range (in the URL, like the usage page):
 * totals and the average per day, cost per day and per model (charts and tables), the top keys and users,
 * each table exportable as the CSV of exactly what it shows.
 */
import type { ReactNode } from "react";
import { Bar, BarChart, CartesianGrid, Tooltip, XAxis, YAxis } from "recharts";
import {
  Button,
  CHART_COLORS,
  Card,
  CardContent,
  CardHeader,
  ChartFrame,
  EmptyState,
  Field,
  NativeSelect,
  QueryView,
  StatCard,
  Table,
  TBody,
  TD,
  TH,
  THead,
  TR,
  chartTheme,
} from "../../components/ui";
import { useOrgId } from "../../lib/viewedOrg";
import { downloadText, toCsv, type CsvColumn } from "../../lib/download";
import { formatCompact, formatCurrency, formatNumber } from "../../lib/format";
import { TopGroups } from "../usage/charts";
import { utcDay, type Range } from "../usage/params";
import { RangeFields, rangeText, readRange, useParamsUpdate } from "../usage/RangeFields";
import { bucketLabel, bucketTick } from "../usage/series";
import { averagePerDay, dailySeries, rangeDays, DAY_CSV, DEFAULT_TOP, MODEL_CSV, spenderCsv, TOP_CHOICES, useCostReport } from "./data";
import type { CostReport, DayCost, Spender } from "./types";

interface Column<T> {
  header: string;
  show: (row: T) => ReactNode;
  numeric?: boolean;
}

function DataTable<T>({ caption, columns, rows, rowKey }: { caption: string; columns: Column<T>[]; rows: T[]; rowKey: (row: T) => string }) {
  return (
    <Table caption={caption}>
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
        {rows.map((row) => (
          <TR key={rowKey(row)}>
            {columns.map((c, i) => (
              <TD key={c.header} className={c.numeric ? "text-right tabular-nums" : i === 0 ? "font-medium" : "font-mono text-xs"}>
                {c.show(row)}
              </TD>
            ))}
          </TR>
        ))}
      </TBody>
    </Table>
  );
}

function ExportButton<T>({ name, rows, columns, what }: { name: string; rows: T[]; columns: CsvColumn<T>[]; what: string }) {
  return (
    <Button
      variant="secondary"
      size="sm"
      disabled={rows.length === 0}
      onClick={() => downloadText(name, toCsv(rows, columns))}
      aria-label={`Export CSV of ${what}`}
    >
      Export CSV
    </Button>
  );
}

const spenderColumns = (what: string): Column<Spender>[] => [
  { header: what, show: (s) => s.name || "(unknown)" },
  { header: `${what} ID`, show: (s) => s.id },
  { header: "Requests", show: (s) => formatNumber(s.requests), numeric: true },
  { header: "Tokens", show: (s) => formatNumber(s.total_tokens), numeric: true },
  { header: "Estimated cost", show: (s) => formatCurrency(s.cost), numeric: true },
];

export function CostReportView() {
  const orgId = useOrgId();
  const [params, update] = useParamsUpdate();
  const current = readRange(params);
  const { range, rangeError } = current;
  const topParam = Number(params.get("top"));
  const top = (TOP_CHOICES as readonly number[]).includes(topParam) ? topParam : DEFAULT_TOP;
  const report = useCostReport(orgId, range, top);

  return (
    <div className="flex flex-col gap-6">
      <Card>
        <CardHeader title="Filters" description={range ? `Your organization · ${rangeText(range)}` : "Your organization"} />
        <CardContent>
          <div className="flex flex-wrap items-start gap-3">
            <RangeFields value={current} update={update} />
            <Field label="Top spenders" className="w-full sm:w-40">
              <NativeSelect
                value={String(top)}
                onChange={(e) => update({ top: e.target.value === String(DEFAULT_TOP) ? null : e.target.value })}
                options={TOP_CHOICES.map((n) => ({ value: String(n), label: `Top ${n}` }))}
              />
            </Field>
          </div>
        </CardContent>
      </Card>
      {rangeError || !range ? (
        <EmptyState title="Choose a valid date range" description={rangeError} />
      ) : (
        <QueryView query={report} loadingLabel="Loading the cost report" errorTitle="Could not load the cost report">
          {(r) => <Report report={r} range={range} top={top} />}
        </QueryView>
      )}
    </div>
  );
}

function Report({ report, range, top }: { report: CostReport; range: Range; top: number }) {
  const days = dailySeries(report, range);
  const span = `${utcDay(Date.parse(range.from))}-to-${utcDay(Date.parse(range.to) - 1)}`;
  const file = (what: string) => `voidllm-cost-${what}-${span}.csv`;
  const topModel = report.by_model[0];
  const noUsage = report.totals.requests === 0;
  const peak = days.reduce<DayCost | undefined>((best, d) => (best === undefined || d.cost > best.cost ? d : best), undefined);
  return (
    <div className="flex flex-col gap-6">
      <div className="grid grid-cols-2 gap-3 sm:gap-4 lg:grid-cols-4">
        <StatCard label="Total cost" value={formatCurrency(report.totals.cost)} hint="Estimated from model pricing" />
        <StatCard label="Average per day" value={formatCurrency(averagePerDay(report, range))} hint={`Over ${formatNumber(rangeDays(range))} ${rangeDays(range) === 1 ? "day" : "days"}`} />
        <StatCard
          label="Requests"
          value={formatNumber(report.totals.requests)}
          hint={`${formatCompact(report.totals.total_tokens)} tokens`}
        />
        <StatCard label="Top model" value={topModel && topModel.cost > 0 ? topModel.model_name : "—"} hint={topModel && topModel.cost > 0 ? formatCurrency(topModel.cost) : undefined} />
      </div>
      {noUsage ? (
        <EmptyState title="No requests in this range" description="Choose a longer range, or come back after some traffic." />
      ) : null}
      <Card>
        <CardHeader
          title="Cost per day"
          description="UTC days."
          actions={<ExportButton name={file("per-day")} rows={days} columns={DAY_CSV} what="the cost per day" />}
        />
        <CardContent className="flex flex-col gap-4">
          <ChartFrame label="Cost per day" summary={`${formatCurrency(report.totals.cost)} in this range; highest ${formatCurrency(peak?.cost)} on ${peak ? bucketLabel(peak.day) : "—"}.`}>
            <BarChart data={days} margin={{ top: 8, right: 8, left: 0, bottom: 0 }}>
              <CartesianGrid stroke={chartTheme.grid} strokeDasharray="3 3" vertical={false} />
              <XAxis dataKey="day" tickFormatter={bucketTick} tick={chartTheme.axisTick} axisLine={chartTheme.axisLine} tickLine={false} minTickGap={24} />
              <YAxis tickFormatter={(v: number) => formatCurrency(v)} tick={chartTheme.axisTick} axisLine={false} tickLine={false} width={64} />
              <Tooltip
                {...chartTheme.tooltip}
                cursor={{ fill: "var(--surface-2)" }}
                labelFormatter={(v: unknown) => bucketLabel(String(v))}
                formatter={(v: unknown) => [formatCurrency(Number(v)), "Estimated cost"] as [string, string]}
              />
              <Bar dataKey="cost" name="Estimated cost" fill={CHART_COLORS[2]} radius={[4, 4, 0, 0]} isAnimationActive={false} />
            </BarChart>
          </ChartFrame>
          <DataTable
            caption="Cost per day"
            rows={days}
            rowKey={(d) => d.day}
            columns={[
              { header: "Day", show: (d) => bucketLabel(d.day) },
              { header: "Requests", show: (d) => formatNumber(d.requests), numeric: true },
              { header: "Tokens", show: (d) => formatNumber(d.total_tokens), numeric: true },
              { header: "Estimated cost", show: (d) => formatCurrency(d.cost), numeric: true },
            ]}
          />
        </CardContent>
      </Card>
      <Card>
        <CardHeader
          title="Cost per model"
          description="Ordered by cost."
          actions={<ExportButton name={file("per-model")} rows={report.by_model} columns={MODEL_CSV} what="the cost per model" />}
        />
        <CardContent className="flex flex-col gap-4">
          {report.by_model.length === 0 ? (
            <EmptyState title="No models used in this range" />
          ) : (
            <>
              <TopGroups
                label="Cost per model"
                items={report.by_model.slice(0, 10).map((m) => ({ name: m.model_name, value: m.cost }))}
                valueName="Estimated cost"
                format={formatCurrency}
              />
              <DataTable
                caption="Cost per model"
                rows={report.by_model}
                rowKey={(m) => m.model_name}
                columns={[
                  { header: "Model", show: (m) => m.model_name },
                  { header: "Requests", show: (m) => formatNumber(m.requests), numeric: true },
                  { header: "Prompt tokens", show: (m) => formatNumber(m.prompt_tokens), numeric: true },
                  { header: "Completion tokens", show: (m) => formatNumber(m.completion_tokens), numeric: true },
                  { header: "Estimated cost", show: (m) => formatCurrency(m.cost), numeric: true },
                ]}
              />
            </>
          )}
        </CardContent>
      </Card>
      <div className="flex flex-col gap-6">
        <SpenderCard title="Top API keys" what="Key" rows={report.top_keys} top={top} file={file("top-keys")} />
        <SpenderCard title="Top users" what="User" rows={report.top_users} top={top} file={file("top-users")} />
      </div>
    </div>
  );
}

function SpenderCard({ title, what, rows, top, file }: { title: string; what: string; rows: Spender[]; top: number; file: string }) {
  return (
    <Card>
      <CardHeader
        title={title}
        description={`The ${formatNumber(top)} highest by cost.`}
        actions={<ExportButton name={file} rows={rows} columns={spenderCsv(what)} what={`the ${title.charAt(0).toLowerCase()}${title.slice(1)}`} />}
      />
      <CardContent>
        {rows.length === 0 ? (
          <EmptyState title="No spending in this range" />
        ) : (
          <DataTable caption={title} rows={rows} rowKey={(s) => s.id} columns={spenderColumns(what)} />
        )}
      </CardContent>
    </Card>
  );
}
