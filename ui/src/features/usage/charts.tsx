/** The usage charts (recharts in the kit's ChartFrame): values over time, and the top groups. */
import type { ReactNode } from "react";
import { Area, AreaChart, Bar, BarChart, CartesianGrid, Legend, Line, LineChart, Tooltip, XAxis, YAxis } from "recharts";
import { CHART_COLORS, ChartFrame, chartTheme } from "../../components/ui";
import { formatCompact, formatCurrency, formatDuration, formatNumber } from "../../lib/format";
import { bucketLabel, bucketTick, type LlmBucket, type McpBucket } from "./series";

const MARGIN = { top: 8, right: 8, left: 0, bottom: 0 };

/** A chart with its visible title (the frame's accessible name is the same text). */
function Titled({ label, summary, height, children }: { label: string; summary?: string; height?: number; children: ReactNode }) {
  return (
    <div className="flex min-w-0 flex-col gap-2">
      <h3 className="text-sm font-medium">{label}</h3>
      <ChartFrame label={label} summary={summary} height={height}>
        {children}
      </ChartFrame>
    </div>
  );
}

function TimeAxes({ money = false, duration = false }: { money?: boolean; duration?: boolean }) {
  const format = (v: number) => (money ? formatCurrency(v) : duration ? formatDuration(v) : formatCompact(v));
  return (
    <>
      <CartesianGrid stroke={chartTheme.grid} strokeDasharray="3 3" vertical={false} />
      <XAxis dataKey="key" tickFormatter={bucketTick} tick={chartTheme.axisTick} axisLine={chartTheme.axisLine} tickLine={false} minTickGap={24} />
      <YAxis tickFormatter={format} tick={chartTheme.axisTick} axisLine={false} tickLine={false} width={money || duration ? 64 : 44} allowDecimals={money || duration} />
    </>
  );
}

const tooltip = (format: (v: number) => string) => ({
  ...chartTheme.tooltip,
  labelFormatter: (v: unknown) => bucketLabel(String(v)),
  formatter: (v: unknown, name: unknown) => [format(Number(v)), String(name)] as [string, string],
});

function peak<T>(data: readonly T[], value: (d: T) => number): T | undefined {
  return data.reduce<T | undefined>((best, d) => (best === undefined || value(d) > value(best) ? d : best), undefined);
}

function sum<T>(data: readonly T[], value: (d: T) => number): number {
  return data.reduce((s, d) => s + value(d), 0);
}

export function LlmCharts({ data }: { data: LlmBucket[] }) {
  const top = peak(data, (d) => d.requests);
  const latency = data.filter((d) => d.avgLatencyMs !== null);
  return (
    <div className="grid grid-cols-1 gap-6 xl:grid-cols-2">
      <Titled
        label="Requests over time"
        summary={`${formatNumber(sum(data, (d) => d.requests))} requests; peak ${formatNumber(top?.requests)} at ${top ? bucketLabel(top.key) : "—"}.`}
      >
        <AreaChart data={data} margin={MARGIN}>
          <TimeAxes />
          <Tooltip {...tooltip(formatNumber)} />
          <Area type="monotone" dataKey="requests" name="Requests" stroke={CHART_COLORS[0]} fill={CHART_COLORS[0]} fillOpacity={0.2} strokeWidth={2} isAnimationActive={false} />
        </AreaChart>
      </Titled>
      <Titled
        label="Tokens over time"
        summary={`${formatNumber(sum(data, (d) => d.promptTokens))} prompt and ${formatNumber(sum(data, (d) => d.completionTokens))} completion tokens.`}
      >
        <BarChart data={data} margin={MARGIN}>
          <TimeAxes />
          <Tooltip {...tooltip(formatNumber)} cursor={{ fill: "var(--surface-2)" }} />
          <Legend wrapperStyle={{ fontSize: 12 }} />
          <Bar dataKey="promptTokens" name="Prompt tokens" stackId="t" fill={CHART_COLORS[0]} isAnimationActive={false} />
          <Bar dataKey="completionTokens" name="Completion tokens" stackId="t" fill={CHART_COLORS[1]} isAnimationActive={false} />
        </BarChart>
      </Titled>
      <Titled label="Estimated cost over time" summary={`${formatCurrency(sum(data, (d) => d.cost))} in this range.`}>
        <AreaChart data={data} margin={MARGIN}>
          <TimeAxes money />
          <Tooltip {...tooltip(formatCurrency)} />
          <Area type="monotone" dataKey="cost" name="Estimated cost" stroke={CHART_COLORS[2]} fill={CHART_COLORS[2]} fillOpacity={0.2} strokeWidth={2} isAnimationActive={false} />
        </AreaChart>
      </Titled>
      <Titled label="Errors over time" summary={`${formatNumber(sum(data, (d) => d.errors))} requests that failed or timed out.`}>
        <LineChart data={data} margin={MARGIN}>
          <TimeAxes />
          <Tooltip {...tooltip(formatNumber)} />
          <Line type="monotone" dataKey="errors" name="Errors" stroke={CHART_COLORS[4]} strokeWidth={2} dot={false} isAnimationActive={false} />
        </LineChart>
      </Titled>
      <Titled
        label="Average latency over time"
        summary={latency.length ? `Average latency per ${data[0]?.key.length === 10 ? "day" : "hour"} with requests.` : "No requests."}
      >
        <LineChart data={data} margin={MARGIN}>
          <TimeAxes duration />
          <Tooltip {...tooltip(formatDuration)} />
          <Line type="monotone" dataKey="avgLatencyMs" name="Average latency" stroke={CHART_COLORS[3]} strokeWidth={2} dot={{ r: 2 }} connectNulls isAnimationActive={false} />
        </LineChart>
      </Titled>
    </div>
  );
}

export function McpCharts({ data }: { data: McpBucket[] }) {
  return (
    <div className="grid grid-cols-1 gap-6 xl:grid-cols-2">
      <Titled
        label="Tool calls over time"
        summary={`${formatNumber(sum(data, (d) => d.calls))} calls: ${formatNumber(sum(data, (d) => d.success))} succeeded, ${formatNumber(sum(data, (d) => d.errors))} failed, ${formatNumber(sum(data, (d) => d.timeouts))} timed out.`}
      >
        <BarChart data={data} margin={MARGIN}>
          <TimeAxes />
          <Tooltip {...tooltip(formatNumber)} cursor={{ fill: "var(--surface-2)" }} />
          <Legend wrapperStyle={{ fontSize: 12 }} />
          <Bar dataKey="success" name="Succeeded" stackId="c" fill={CHART_COLORS[0]} isAnimationActive={false} />
          <Bar dataKey="errors" name="Errors" stackId="c" fill={CHART_COLORS[3]} isAnimationActive={false} />
          <Bar dataKey="timeouts" name="Timeouts" stackId="c" fill={CHART_COLORS[4]} isAnimationActive={false} />
        </BarChart>
      </Titled>
      <Titled label="Errors over time" summary={`${formatNumber(sum(data, (d) => d.errors + d.timeouts))} failed or timed-out calls.`}>
        <LineChart data={data} margin={MARGIN}>
          <TimeAxes />
          <Tooltip {...tooltip(formatNumber)} />
          <Legend wrapperStyle={{ fontSize: 12 }} />
          <Line type="monotone" dataKey="errors" name="Errors" stroke={CHART_COLORS[3]} strokeWidth={2} dot={false} isAnimationActive={false} />
          <Line type="monotone" dataKey="timeouts" name="Timeouts" stroke={CHART_COLORS[4]} strokeWidth={2} dot={false} isAnimationActive={false} />
        </LineChart>
      </Titled>
      <Titled label="Average duration over time">
        <LineChart data={data} margin={MARGIN}>
          <TimeAxes duration />
          <Tooltip {...tooltip(formatDuration)} />
          <Line type="monotone" dataKey="avgDurationMs" name="Average duration" stroke={CHART_COLORS[1]} strokeWidth={2} dot={{ r: 2 }} connectNulls isAnimationActive={false} />
        </LineChart>
      </Titled>
    </div>
  );
}

export interface TopItem {
  name: string;
  value: number;
}

/** The largest groups as horizontal bars (the table below has every row). */
export function TopGroups({ label, items, valueName, format }: { label: string; items: TopItem[]; valueName: string; format: (v: number) => string }) {
  return (
    <ChartFrame label={label} height={Math.max(80, items.length * 32 + 16)}>
      <BarChart data={items} layout="vertical" margin={{ top: 0, right: 16, left: 0, bottom: 0 }}>
        <XAxis type="number" hide />
        <YAxis type="category" dataKey="name" width={140} tick={chartTheme.axisTick} axisLine={false} tickLine={false} />
        <Tooltip {...chartTheme.tooltip} cursor={{ fill: "var(--surface-2)" }} formatter={(v) => [format(Number(v)), valueName]} />
        <Bar dataKey="value" name={valueName} fill={CHART_COLORS[0]} radius={[0, 4, 4, 0]} maxBarSize={24} isAnimationActive={false} />
      </BarChart>
    </ChartFrame>
  );
}
