import * as ProgressPrimitive from "@radix-ui/react-progress";
import { cn } from "./cn";

export interface ProgressProps {
  /** Current amount (clamped to 0..max). */
  value: number;
  max?: number;
  /** Accessible name, e.g. "Monthly tokens of Team A". */
  label: string;
  /** Screen-reader value text; default "n%". */
  valueText?: string;
  className?: string;
}

/** A progress bar (role=progressbar); turns amber at 80 % and red at 100 %. */
export function Progress({ value, max = 100, label, valueText, className }: ProgressProps) {
  const safeMax = max > 0 ? max : 1;
  const clamped = Math.min(Math.max(value, 0), safeMax);
  const percent = (clamped / safeMax) * 100;
  const tone = value >= safeMax ? "bg-danger" : percent >= 80 ? "bg-warning" : "bg-primary";
  return (
    <ProgressPrimitive.Root
      value={clamped}
      max={safeMax}
      aria-label={label}
      getValueLabel={(v, m) => valueText ?? `${Math.round((v / m) * 100)}%`}
      className={cn("relative h-2 w-full overflow-hidden rounded-full bg-surface-2", className)}
    >
      <ProgressPrimitive.Indicator className={cn("h-full transition-all", tone)} style={{ width: `${percent}%` }} />
    </ProgressPrimitive.Root>
  );
}
