import { cn } from "./cn";

export interface SpinnerProps {
  size?: "sm" | "md" | "lg";
  /** Accessible name (role=status); ignored when `decorative`. */
  label?: string;
  /** Purely visual (inside a busy button). */
  decorative?: boolean;
  className?: string;
}

const SIZES = { sm: "h-4 w-4 border-2", md: "h-6 w-6 border-2", lg: "h-10 w-10 border-4" };

export function Spinner({ size = "md", label = "Loading", decorative = false, className }: SpinnerProps) {
  const circle = (
    <span
      aria-hidden="true"
      className={cn("inline-block animate-spin rounded-full border-current border-t-transparent", SIZES[size], className)}
    />
  );
  if (decorative) return circle;
  return (
    <span role="status" aria-label={label} className="inline-flex">
      {circle}
    </span>
  );
}

/** A block-level loading indicator for a page or card body. */
export function LoadingState({ label = "Loading", className }: { label?: string; className?: string }) {
  return (
    <div className={cn("flex items-center justify-center gap-3 p-8 text-muted", className)}>
      <Spinner label={label} />
      <span aria-hidden="true">{label}…</span>
    </div>
  );
}
