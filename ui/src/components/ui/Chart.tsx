import type { ReactNode } from "react";
import { ResponsiveContainer } from "recharts";
import { cn } from "./cn";

/** Theme-aware series colours (CSS variables; switch with the theme). */
export const CHART_COLORS = ["var(--chart-1)", "var(--chart-2)", "var(--chart-3)", "var(--chart-4)", "var(--chart-5)"];

/** Axis/grid/tooltip styling for recharts that follows the theme. */
export const chartTheme = {
  axisTick: { fill: "var(--muted)", fontSize: 12 },
  axisLine: { stroke: "var(--border)" },
  grid: "var(--border)",
  tooltip: {
    contentStyle: { background: "var(--surface)", border: "1px solid var(--border)", borderRadius: 6, color: "var(--fg)" },
    labelStyle: { color: "var(--fg)" },
    itemStyle: { color: "var(--fg)" },
  },
} as const;

export interface ChartFrameProps {
  /** What the chart shows, e.g. "Requests over time" (the figure's accessible name). */
  label: string;
  /** Height in px (the chart fills the width). */
  height?: number;
  /** One recharts chart (<AreaChart>, <BarChart>, <PieChart>...) without its own size. */
  children: ReactNode;
  /** A short text summary for screen readers (e.g. "Peak 120 requests at 14:00"). */
  summary?: string;
  className?: string;
}

/**
 * A responsive recharts container in a labelled <figure>. It renders at a fixed initial size where nothing
 * can be measured (jsdom in tests), so chart contents are testable.
 */
export function ChartFrame({ label, height = 240, children, summary, className }: ChartFrameProps) {
  return (
    <figure aria-label={label} className={cn("relative w-full min-w-0", className)} style={{ height }}>
      {/* Absolutely placed: the chart takes the figure's width and never widens a grid or flex parent. */}
      <div className="absolute inset-0" style={{ height }}>
        <ResponsiveContainer width="100%" height="100%" initialDimension={{ width: 600, height }}>
          {children}
        </ResponsiveContainer>
      </div>
      {summary ? <figcaption className="sr-only">{summary}</figcaption> : null}
    </figure>
  );
}
