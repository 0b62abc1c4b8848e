import type { ReactNode } from "react";
import { ApiError, errorMessage } from "../../lib/api";
import { cn } from "./cn";
import { Button } from "./Button";

export interface EmptyStateProps {
  title: ReactNode;
  description?: ReactNode;
  /** E.g. a "Create key" button. */
  action?: ReactNode;
  className?: string;
}

export function EmptyState({ title, description, action, className }: EmptyStateProps) {
  return (
    <div className={cn("flex flex-col items-center gap-2 p-8 text-center", className)}>
      <p className="font-medium">{title}</p>
      {description ? <p className="max-w-md text-sm text-muted">{description}</p> : null}
      {action ? <div className="mt-2">{action}</div> : null}
    </div>
  );
}

export interface ErrorStateProps {
  error: unknown;
  title?: ReactNode;
  /** Shows a "Try again" button. */
  onRetry?: () => void;
  className?: string;
}

/** A failed load: the API's message and its request id (for the operator's logs), role=alert. */
export function ErrorState({ error, title = "Could not load this", onRetry, className }: ErrorStateProps) {
  const requestId = error instanceof ApiError ? error.requestId : null;
  return (
    <div role="alert" className={cn("flex flex-col items-start gap-2 rounded-md border border-danger/40 p-4", className)}>
      <p className="font-medium text-danger">{title}</p>
      <p className="text-sm">{errorMessage(error)}</p>
      {requestId ? (
        <p className="text-xs text-muted">
          Request ID: <code className="select-all">{requestId}</code>
        </p>
      ) : null}
      {onRetry ? (
        <Button variant="secondary" size="sm" onClick={onRetry}>
          Try again
        </Button>
      ) : null}
    </div>
  );
}

/** An inline error for forms and dialogs (mutation errors): message + request id, role=alert. */
export function InlineError({ error }: { error: unknown }) {
  if (!error) return null;
  const requestId = error instanceof ApiError ? error.requestId : null;
  return (
    <div role="alert" className="rounded-md border border-danger/40 px-3 py-2 text-sm text-danger">
      {errorMessage(error)}
      {requestId ? <span className="block text-xs text-muted">Request ID: {requestId}</span> : null}
    </div>
  );
}
