import { Area, AreaChart, Bar, BarChart, CartesianGrid, Cell, Pie, PieChart, Tooltip, XAxis, YAxis } from "recharts";
import { CHART_COLORS, ChartFrame, chartTheme } from "../../components/ui";
import { formatCompact, formatNumber, formatTime } from "../../lib/format";
import type { UsagePoint } from "../../lib/types";
import { hourKeys } from "./queries";

export interface HourPoint {
  hour: string;
  requests: number;
  tokens: number;
}

/** 24 hourly points (missing hours are zero) from a group_by=hour report. */
export function hourlySeries(points: UsagePoint[], from: string, to: string): HourPoint[] {
  const byHour = new Map(points.map((p) => [p.group_key ?? "", p]));
  return hourKeys(from, to).map((hour) => {
    const p = byHour.get(hour);
    return { hour, requests: p?.total_requests ?? 0, tokens: p?.total_tokens ?? 0 };
  });
}

export function RequestsOverTime({ data }: { data: HourPoint[] }) {
  const total = data.reduce((sum, p) => sum + p.requests, 0);
  const peak = data.reduce((best, p) => (p.requests > best.requests ? p : best), data[0] ?? { hour: "", requests: 0, tokens: 0 });
  return (
    <ChartFrame
      label="Requests over time"
      summary={`${formatNumber(total)} requests in the last 24 hours; peak ${formatNumber(peak.requests)} at ${formatTime(peak.hour)}.`}
    >
      <AreaChart data={data} margin={{ top: 8, right: 8, left: 0, bottom: 0 }}>
        <CartesianGrid stroke={chartTheme.grid} strokeDasharray="3 3" vertical={false} />
        <XAxis dataKey="hour" tickFormatter={(v: string) => formatTime(v)} tick={chartTheme.axisTick} axisLine={chartTheme.axisLine} tickLine={false} minTickGap={24} />
        <YAxis tickFormatter={(v: number) => formatCompact(v)} tick={chartTheme.axisTick} axisLine={false} tickLine={false} width={40} allowDecimals={false} />
        <Tooltip
          {...chartTheme.tooltip}
          labelFormatter={(v) => formatTime(String(v))}
          formatter={(v) => [formatNumber(Number(v)), "Requests"]}
        />
        <Area isAnimationActive={false} type="monotone" dataKey="requests" name="Requests" stroke={CHART_COLORS[0]} fill={CHART_COLORS[0]} fillOpacity={0.2} strokeWidth={2} />
      </AreaChart>
    </ChartFrame>
  );
}

export function TopModels({ points }: { points: UsagePoint[] }) {
  const top = [...points]
    .sort((a, b) => b.total_requests - a.total_requests)
    .slice(0, 5)
    .map((p) => ({ model: p.group_label || p.group_key || "(unknown)", requests: p.total_requests, tokens: p.total_tokens }));
  return (
    <div className="flex flex-col gap-3">
      <ChartFrame label="Top models by requests" height={Math.max(120, top.length * 40)}>
        <BarChart data={top} layout="vertical" margin={{ top: 0, right: 16, left: 0, bottom: 0 }}>
          <XAxis type="number" hide allowDecimals={false} />
          <YAxis type="category" dataKey="model" width={110} tick={chartTheme.axisTick} axisLine={false} tickLine={false} />
          <Tooltip {...chartTheme.tooltip} cursor={{ fill: "var(--surface-2)" }} formatter={(v) => [formatNumber(Number(v)), "Requests"]} />
          <Bar isAnimationActive={false} maxBarSize={28} dataKey="requests" name="Requests" fill={CHART_COLORS[0]} radius={[0, 4, 4, 0]} />
        </BarChart>
      </ChartFrame>
      <ol aria-label="Top models" className="flex flex-col gap-1 text-sm">
        {top.map((m) => (
          <li key={m.model} className="flex justify-between gap-3">
            <span className="truncate">{m.model}</span>
            <span className="tabular-nums text-muted">
              {formatNumber(m.requests)} requests · {formatCompact(m.tokens)} tokens
            </span>
          </li>
        ))}
      </ol>
    </div>
  );
}

export function TokenSplit({ points }: { points: UsagePoint[] }) {
  const prompt = points.reduce((s, p) => s + p.prompt_tokens, 0);
  const completion = points.reduce((s, p) => s + p.completion_tokens, 0);
  const total = prompt + completion;
  const slices = [
    { name: "Prompt", value: prompt },
    { name: "Completion", value: completion },
  ];
  const share = (v: number) => (total > 0 ? Math.round((v / total) * 100) : 0);
  return (
    <div className="flex flex-col items-center gap-3 sm:flex-row">
      <ChartFrame label="Token split" height={180} className="max-w-[220px]">
        <PieChart>
          <Pie data={slices} dataKey="value" nameKey="name" innerRadius="55%" outerRadius="85%" paddingAngle={2} isAnimationActive={false}>
            {slices.map((s, i) => (
              <Cell key={s.name} fill={CHART_COLORS[i] ?? CHART_COLORS[0]} stroke="var(--surface)" />
            ))}
          </Pie>
          <Tooltip {...chartTheme.tooltip} formatter={(v, name) => [formatNumber(Number(v)), String(name)]} />
        </PieChart>
      </ChartFrame>
      <ul aria-label="Token split" className="flex flex-col gap-2 text-sm">
        {slices.map((s, i) => (
          <li key={s.name} className="flex items-center gap-2">
            <span aria-hidden="true" className="inline-block h-3 w-3 rounded-sm" style={{ background: CHART_COLORS[i] }} />
            <span>
              {s.name} tokens: <span className="tabular-nums font-medium">{formatNumber(s.value)}</span>{" "}
              <span className="text-muted">({share(s.value)}%)</span>
            </span>
          </li>
        ))}
      </ul>
    </div>
  );
}
