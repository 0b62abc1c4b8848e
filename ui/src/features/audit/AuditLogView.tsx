/**
 * The audit log: a filter form (applied to the URL on submit, so a filtered view can be bookmarked), one
 * cursor page of entries at a time (newest first, "Newer"/"Older"), and the detail of an entry in a dialog.
 */
import { useState, type FormEvent } from "react";
import { useSearchParams } from "react-router";
import {
  Badge,
  Button,
  Card,
  CardContent,
  CardHeader,
  DateTime,
  EmptyState,
  ErrorState,
  Field,
  Input,
  LoadingState,
  NativeSelect,
  Table,
  TBody,
  TD,
  TH,
  THead,
  TR,
} from "../../components/ui";
import { useCurrentUser } from "../../lib/auth";
import { hasRole } from "../../lib/roles";
import { AuditEntryDialog, statusTone } from "./AuditEntryDialog";
import { useAuditPage } from "./data";
import {
  ACTIONS,
  ACTOR_TYPES,
  PAGE_SIZES,
  RESOURCE_TYPES,
  STATUSES,
  filterParams,
  humanize,
  rangeError,
  readFilters,
  words,
  type AuditFilters,
} from "./filters";
import type { AuditLogEntry } from "./types";

export function AuditLogView() {
  const [params, setParams] = useSearchParams();
  const filters = readFilters(params);
  const key = filterParams(filters).toString();
  const apply = (next: AuditFilters) => setParams(filterParams(next));
  return (
    <div className="flex flex-col gap-6">
      <FilterForm key={`form:${key}`} initial={filters} onApply={apply} />
      <Entries key={`entries:${key}`} filters={filters} onFilterActor={(actor) => apply({ ...filters, actor })} />
    </div>
  );
}

function FilterForm({ initial, onApply }: { initial: AuditFilters; onApply: (filters: AuditFilters) => void }) {
  const me = useCurrentUser();
  const [draft, setDraft] = useState(initial);
  const set = <K extends keyof AuditFilters>(name: K, value: AuditFilters[K]) => setDraft((d) => ({ ...d, [name]: value }));
  const error = rangeError(draft);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!error) onApply(draft);
  };
  const empty: AuditFilters = { action: "", resource: "", actor: "", status: "", from: "", to: "", scope: draft.scope, limit: draft.limit };
  return (
    <Card>
      <CardHeader title="Filters" description="Only successful changes are recorded: who did what to which resource, and when." />
      <CardContent>
        <form onSubmit={submit} aria-label="Audit log filters" className="flex flex-col gap-4">
          <div className="grid grid-cols-1 gap-3 sm:grid-cols-2 lg:grid-cols-4">
            {hasRole(me, "system_admin") ? (
              <Field label="Organizations">
                <NativeSelect
                  value={draft.scope}
                  onChange={(e) => set("scope", e.target.value === "org" ? "org" : "all")}
                  options={[
                    { value: "all", label: "All organizations" },
                    { value: "org", label: "This organization" },
                  ]}
                />
              </Field>
            ) : null}
            <Field label="Action" hint="E.g. create, update, delete">
              <Input value={draft.action} onChange={(e) => set("action", e.target.value)} list="audit-actions" autoComplete="off" />
            </Field>
            <Field label="Resource type" hint="E.g. api_key, team, user">
              <Input value={draft.resource} onChange={(e) => set("resource", e.target.value)} list="audit-resources" autoComplete="off" />
            </Field>
            <Field label="Actor ID" hint="The user or service account">
              <Input value={draft.actor} onChange={(e) => set("actor", e.target.value)} autoComplete="off" spellCheck={false} />
            </Field>
            <Field label="Status">
              <NativeSelect value={draft.status} onChange={(e) => set("status", e.target.value)} placeholder="Any status" options={STATUSES} />
            </Field>
            <Field label="From" hint="Your local time" error={error}>
              <Input type="datetime-local" value={draft.from} max={draft.to || undefined} onChange={(e) => set("from", e.target.value)} />
            </Field>
            <Field label="To" hint="Your local time, included">
              <Input type="datetime-local" value={draft.to} min={draft.from || undefined} onChange={(e) => set("to", e.target.value)} />
            </Field>
            <Field label="Entries per page">
              <NativeSelect
                value={String(draft.limit)}
                onChange={(e) => set("limit", Number(e.target.value))}
                options={PAGE_SIZES.map((n) => ({ value: String(n), label: String(n) }))}
              />
            </Field>
          </div>
          <datalist id="audit-actions">
            {ACTIONS.map((a) => (
              <option key={a} value={a} />
            ))}
          </datalist>
          <datalist id="audit-resources">
            {RESOURCE_TYPES.map((r) => (
              <option key={r} value={r} />
            ))}
          </datalist>
          <div className="flex flex-wrap gap-2">
            <Button type="submit" disabled={Boolean(error)}>
              Apply filters
            </Button>
            <Button
              type="button"
              variant="secondary"
              onClick={() => {
                setDraft(empty);
                onApply(empty);
              }}
            >
              Clear filters
            </Button>
          </div>
        </form>
      </CardContent>
    </Card>
  );
}

function Entries({ filters, onFilterActor }: { filters: AuditFilters; onFilterActor: (actor: string) => void }) {
  const me = useCurrentUser();
  // The cursors of the pages before the current one (the first page has none): "Newer" goes back one.
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const cursor = cursors[cursors.length - 1];
  const invalid = rangeError(filters);
  const query = useAuditPage(me, filters, cursor, !invalid);
  const [open, setOpen] = useState<AuditLogEntry | null>(null);
  const pageNumber = cursors.length;
  const page = query.data;

  let content;
  if (invalid) content = <EmptyState title="Choose a valid time range" description={invalid} />;
  else if (query.isPending) content = <LoadingState label="Loading the audit log" />;
  else if (query.isError) content = <ErrorState error={query.error} title="Could not load the audit log" onRetry={() => void query.refetch()} />;
  else if (page && page.data.length === 0)
    content = <EmptyState title="No entries" description={pageNumber > 1 ? "There are no older entries." : "Nothing matches these filters."} />;
  else if (page)
    content = (
      <Table caption="Audit log entries" aria-busy={query.isFetching ? true : undefined}>
        <THead>
          <TR>
            <TH>Time</TH>
            <TH>Actor</TH>
            <TH>Action</TH>
            <TH>Resource</TH>
            <TH>Status</TH>
            <TH>
              <span className="sr-only">Details</span>
            </TH>
          </TR>
        </THead>
        <TBody>
          {page.data.map((entry) => (
            <TR key={entry.id}>
              <TD className="whitespace-nowrap">
                <DateTime value={entry.timestamp} />
              </TD>
              <TD>
                <div className="flex flex-col">
                  <span>{ACTOR_TYPES[entry.actor_type] ?? entry.actor_type}</span>
                  {entry.actor_id ? <code className="font-mono text-xs text-muted">{entry.actor_id}</code> : null}
                </div>
              </TD>
              <TD>{humanize(entry.action)}</TD>
              <TD>
                <div className="flex flex-col">
                  <span>{humanize(entry.resource_type)}</span>
                  {entry.resource_id ? <code className="font-mono text-xs text-muted">{entry.resource_id}</code> : null}
                </div>
              </TD>
              <TD>
                <Badge tone={statusTone(entry.status_code)}>{entry.status_code}</Badge>
              </TD>
              <TD className="text-right">
                <Button
                  variant="secondary"
                  size="sm"
                  onClick={() => setOpen(entry)}
                  aria-label={`Details of ${words(entry.action)} ${words(entry.resource_type)}${entry.resource_id ? ` ${entry.resource_id}` : ""}`}
                >
                  Details
                </Button>
              </TD>
            </TR>
          ))}
        </TBody>
      </Table>
    );

  return (
    <Card>
      <CardHeader title="Entries" description={`Newest first · page ${pageNumber}`} />
      <CardContent className="flex flex-col gap-4">
        {content}
        <nav aria-label="Audit log pages" className="flex flex-wrap items-center justify-between gap-2">
          <Button variant="secondary" size="sm" disabled={pageNumber === 1} onClick={() => setCursors((c) => c.slice(0, -1))}>
            Newer entries
          </Button>
          <Button
            variant="secondary"
            size="sm"
            disabled={!page?.has_more || !page.next_cursor || query.isPlaceholderData}
            onClick={() => page?.next_cursor && setCursors((c) => [...c, page.next_cursor!])}
          >
            Older entries
          </Button>
        </nav>
      </CardContent>
      <AuditEntryDialog
        entry={open}
        onOpenChange={(value) => !value && setOpen(null)}
        onFilterActor={(actor) => {
          setOpen(null);
          onFilterActor(actor);
        }}
      />
    </Card>
  );
}
