import { useEffect, type HTMLAttributes, type ReactNode } from "react";
import { cn } from "./cn";
import { Spinner } from "./Spinner";

export function Card({ className, ...rest }: HTMLAttributes<HTMLElement>) {
  return <section className={cn("rounded-lg border border-border bg-surface text-fg shadow-sm", className)} {...rest} />;
}

export interface CardHeaderProps {
  /** Rendered as an <h2> (pages have the <h1>). */
  title: ReactNode;
  description?: ReactNode;
  /** Buttons on the right. */
  actions?: ReactNode;
  className?: string;
}

export function CardHeader({ title, description, actions, className }: CardHeaderProps) {
  return (
    <div className={cn("flex flex-wrap items-start justify-between gap-3 border-b border-border px-4 py-3", className)}>
      <div>
        <h2 className="text-base font-semibold">{title}</h2>
        {description ? <p className="text-sm text-muted">{description}</p> : null}
      </div>
      {actions ? <div className="flex flex-wrap gap-2">{actions}</div> : null}
    </div>
  );
}

export function CardContent({ className, ...rest }: HTMLAttributes<HTMLDivElement>) {
  return <div className={cn("p-4", className)} {...rest} />;
}

export interface StatCardProps {
  label: string;
  /** Already formatted (see lib/format). */
  value: ReactNode;
  hint?: ReactNode;
  loading?: boolean;
  className?: string;
}

/** A labelled number: the label names it (`<dt>`/`<dd>` semantics via aria). */
export function StatCard({ label, value, hint, loading = false, className }: StatCardProps) {
  return (
    <Card className={cn("p-4", className)}>
      <dl className="flex flex-col gap-1">
        <dt className="text-sm text-muted">{label}</dt>
        <dd className="text-2xl font-semibold tabular-nums">{loading ? <Spinner size="sm" label={`Loading ${label}`} /> : value}</dd>
        {hint ? <dd className="text-xs text-muted">{hint}</dd> : null}
      </dl>
    </Card>
  );
}

export interface PageHeaderProps {
  /** The page's <h1>. */
  title: ReactNode;
  description?: ReactNode;
  actions?: ReactNode;
}

/** The page's <h1>; a text title also becomes the document title ("API Keys · VoidLLM"). */
export function PageHeader({ title, description, actions }: PageHeaderProps) {
  useDocumentTitle(typeof title === "string" ? title : null);
  return (
    <div className="mb-6 flex flex-wrap items-end justify-between gap-3">
      <div>
        <h1 className="text-2xl font-semibold">{title}</h1>
        {description ? <p className="mt-1 text-sm text-muted">{description}</p> : null}
      </div>
      {actions ? <div className="flex flex-wrap gap-2">{actions}</div> : null}
    </div>
  );
}

/** Sets `document.title` to "<title> · VoidLLM" while the calling component is shown. */
export function useDocumentTitle(title: string | null): void {
  useEffect(() => {
    if (title) document.title = `${title} · VoidLLM`;
  }, [title]);
}
