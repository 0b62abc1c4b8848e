import type { ReactNode } from "react";
import type { UseQueryResult } from "@tanstack/react-query";
import { QueryView } from "./QueryView";
import { EmptyState } from "./States";
import { Table, TBody, TH, THead, TR } from "./Table";

export interface ItemsTableProps<T> {
  /** A list query answering `{ items }`. */
  query: UseQueryResult<{ items: T[] }>;
  /** The plural noun of the items ("users"): names the loading, error and empty states. */
  noun: string;
  caption: string;
  /** The column headers; an unnamed actions column follows them. */
  headers: string[];
  /** Replaces the default "No {noun} yet" empty state. */
  empty?: ReactNode;
  /** An action offered by the default empty state (usually the page's create button). */
  emptyAction?: ReactNode;
  /** One row (a `TR` with a cell per header and one for the row's actions). */
  children: (item: T) => ReactNode;
}

/** A list page's table with its loading, error and empty states, the columns named once and a last actions column. */
export function ItemsTable<T>({ query, noun, caption, headers, empty, emptyAction, children }: ItemsTableProps<T>) {
  return (
    <QueryView
      query={query}
      loadingLabel={`Loading ${noun}`}
      errorTitle={`Could not load the ${noun}`}
      isEmpty={(data) => data.items.length === 0}
      empty={empty ?? <EmptyState title={`No ${noun} yet`} action={emptyAction} />}
    >
      {(data) => (
        <Table caption={caption}>
          <THead>
            <TR>
              {headers.map((h) => (
                <TH key={h}>{h}</TH>
              ))}
              <TH>
                <span className="sr-only">Actions</span>
              </TH>
            </TR>
          </THead>
          <TBody>{data.items.map((item) => children(item))}</TBody>
        </Table>
      )}
    </QueryView>
  );
}
