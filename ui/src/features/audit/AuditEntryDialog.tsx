/** The detail of one audit log entry: every field, and the request body as the gateway stored it. */
import type { ReactNode } from "react";
import { Badge, Button, CopyButton, DateTime, Dialog, DialogClose } from "../../components/ui";
import { ACTOR_TYPES, humanize, prettyDescription, words } from "./filters";
import type { AuditLogEntry } from "./types";

function Row({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div className="grid grid-cols-1 gap-1 py-2 sm:grid-cols-[10rem_1fr] sm:gap-3">
      <dt className="text-sm text-muted">{label}</dt>
      <dd className="min-w-0 break-words text-sm">{children}</dd>
    </div>
  );
}

const Code = ({ value }: { value: string | null }) =>
  value ? <code className="font-mono text-xs break-all">{value}</code> : <span className="text-muted">—</span>;

export function statusTone(status: number) {
  return status >= 200 && status < 300 ? "success" : status >= 400 ? "danger" : "neutral";
}

export interface AuditEntryDialogProps {
  entry: AuditLogEntry | null;
  onOpenChange: (open: boolean) => void;
  /** Shows a button that filters the log by this entry's actor. */
  onFilterActor?: (actorId: string) => void;
}

export function AuditEntryDialog({ entry, onOpenChange, onFilterActor }: AuditEntryDialogProps) {
  const body = entry ? prettyDescription(entry.description) : null;
  return (
    <Dialog
      open={entry !== null}
      onOpenChange={onOpenChange}
      title="Audit log entry"
      description={entry ? `${humanize(entry.action)} ${words(entry.resource_type)}` : undefined}
      size="lg"
      footer={
        <>
          {entry?.actor_id && onFilterActor ? (
            <Button variant="secondary" onClick={() => onFilterActor(entry.actor_id!)}>
              Show this actor&apos;s entries
            </Button>
          ) : null}
          <DialogClose>
            <Button>Close</Button>
          </DialogClose>
        </>
      }
    >
      {entry ? (
        <>
          <dl className="divide-y divide-border">
            <Row label="Time">
              <DateTime value={entry.timestamp} />
            </Row>
            <Row label="Action">
              {humanize(entry.action)} <Code value={entry.action} />
            </Row>
            <Row label="Resource">
              {humanize(entry.resource_type)} <Code value={entry.resource_type} />
            </Row>
            <Row label="Resource ID">
              <Code value={entry.resource_id} />
            </Row>
            <Row label="Status">
              <Badge tone={statusTone(entry.status_code)}>{entry.status_code}</Badge>
            </Row>
            <Row label="Actor">
              {ACTOR_TYPES[entry.actor_type] ?? entry.actor_type} <Code value={entry.actor_id} />
            </Row>
            <Row label="Actor's key ID">
              <Code value={entry.actor_key_id} />
            </Row>
            <Row label="Organization ID">
              <Code value={entry.org_id} />
            </Row>
            <Row label="IP address">
              <Code value={entry.ip_address} />
            </Row>
            <Row label="Request ID">
              <Code value={entry.request_id} />
            </Row>
            <Row label="Entry ID">
              <Code value={entry.id} />
            </Row>
          </dl>
          <div className="flex flex-col gap-2">
            <div className="flex items-center justify-between gap-2">
              <h3 className="text-sm font-medium">
                Request body
              </h3>
              {body ? <CopyButton value={body} label="Copy request body" /> : null}
            </div>
            <p className="text-xs text-muted">Secrets (keys, passwords, tokens) are redacted by the gateway before they are stored.</p>
            {body ? (
              <pre tabIndex={0} aria-label="Request body" className="max-h-80 overflow-auto rounded-md border border-border bg-surface-2 p-3 font-mono text-xs">
                {body}
              </pre>
            ) : (
              <p className="text-sm text-muted">No request body was recorded.</p>
            )}
          </div>
        </>
      ) : null}
    </Dialog>
  );
}
