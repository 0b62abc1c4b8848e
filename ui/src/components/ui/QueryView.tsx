import type { ReactNode } from "react";
import type { UseQueryResult } from "@tanstack/react-query";
import { LoadingState } from "./Spinner";
import { EmptyState, ErrorState } from "./States";

export interface QueryViewProps<T> {
  query: UseQueryResult<T>;
  /** Renders the data. */
  children: (data: T) => ReactNode;
  /** When true for the data, renders `empty` instead. */
  isEmpty?: (data: T) => boolean;
  empty?: ReactNode;
  loadingLabel?: string;
  errorTitle?: ReactNode;
}

/** The loading / error / empty / data states of one query, the same way on every page. */
export function QueryView<T>({ query, children, isEmpty, empty, loadingLabel, errorTitle }: QueryViewProps<T>) {
  if (query.isPending) return <LoadingState label={loadingLabel} />;
  if (query.isError) return <ErrorState error={query.error} title={errorTitle} onRetry={() => void query.refetch()} />;
  if (isEmpty?.(query.data)) return <>{empty ?? <EmptyState title="Nothing here yet" />}</>;
  return <>{children(query.data)}</>;
}
