import type { UpstreamHealth } from "../../lib/types";
import { formatCurrency, formatDuration } from "../../lib/format";
import { Badge, Button, DateTime, Table, TBody, TD, TH, THead, TR, type BadgeTone } from "../../components/ui";
import { CONFIG_REASON, isConfigModel, upstreamsOf } from "./data";
import type { ModelOut } from "./types";

const HEALTH_TONES: Record<string, BadgeTone> = {
  healthy: "success",
  degraded: "warning",
  unhealthy: "danger",
};

function HealthBadge({ health }: { health: UpstreamHealth | undefined }) {
  const status = health?.status ?? "unknown";
  return <Badge tone={HEALTH_TONES[status] ?? "neutral"}>{status.charAt(0).toUpperCase() + status.slice(1)}</Badge>;
}

export interface ModelsTableProps {
  models: ModelOut[];
  health: Map<string, UpstreamHealth>;
  /** False while the health view is loading or failed (shown as such, not as "unknown"). */
  healthState: "ready" | "loading" | "error";
  onEdit: (model: ModelOut) => void;
  onToggle: (model: ModelOut) => void;
  onDelete: (model: ModelOut) => void;
  pendingId: string | null;
}

export function ModelsTable({ models, health, healthState, onEdit, onToggle, onDelete, pendingId }: ModelsTableProps) {
  return (
    <Table caption="Models">
      <THead>
        <TR>
          <TH>Name</TH>
          <TH>Provider</TH>
          <TH>Type</TH>
          <TH>Health by deployment</TH>
          <TH>Price in / out per 1M</TH>
          <TH>Status</TH>
          <TH>Source</TH>
          <TH>
            <span className="sr-only">Actions</span>
          </TH>
        </TR>
      </THead>
      <TBody>
        {models.map((model) => {
          const config = isConfigModel(model);
          return (
            <TR key={model.id}>
              <TD>
                <div className="font-medium">{model.name}</div>
                {model.aliases.length > 0 ? (
                  <div className="text-xs text-muted">Aliases: {model.aliases.join(", ")}</div>
                ) : null}
              </TD>
              <TD>{model.provider}</TD>
              <TD>{model.type.replace("_", " ")}</TD>
              <TD>
                {healthState === "loading" ? (
                  <span className="text-xs text-muted">Loading health…</span>
                ) : healthState === "error" ? (
                  <span className="text-xs text-muted">Health unavailable</span>
                ) : !model.is_active ? (
                  <span className="text-xs text-muted">Not served while inactive</span>
                ) : (
                  <ul aria-label={`Health of ${model.name}`} className="flex flex-col gap-1">
                    {upstreamsOf(model).map((u) => {
                      const h = health.get(u.name);
                      return (
                        <li key={u.name} className="flex flex-wrap items-center gap-2 text-xs">
                          <span>{u.label}</span>
                          <HealthBadge health={h} />
                          {h?.latency_ms !== null && h?.latency_ms !== undefined ? (
                            <span className="text-muted">{formatDuration(h.latency_ms)}</span>
                          ) : null}
                          {h?.last_check ? (
                            <span className="text-muted">
                              checked <DateTime value={h.last_check} relative />
                            </span>
                          ) : null}
                          {h?.last_error ? <span className="text-danger">{h.last_error}</span> : null}
                        </li>
                      );
                    })}
                  </ul>
                )}
              </TD>
              <TD className="whitespace-nowrap">
                {formatCurrency(model.input_price_per_1m)} / {formatCurrency(model.output_price_per_1m)}
              </TD>
              <TD>
                <Badge tone={model.is_active ? "success" : "neutral"}>{model.is_active ? "Active" : "Inactive"}</Badge>
              </TD>
              <TD>
                {config ? (
                  <div className="flex flex-col gap-1">
                    <Badge tone="primary" className="self-start">voidllm.yaml</Badge>
                    <span className="text-xs text-muted">{CONFIG_REASON}</span>
                  </div>
                ) : (
                  <Badge>API</Badge>
                )}
              </TD>
              <TD>
                <div className="flex justify-end gap-1 whitespace-nowrap">
                  <Button size="sm" variant="ghost" aria-label={`${config ? "View" : "Edit"} ${model.name}`} onClick={() => onEdit(model)}>
                    {config ? "View" : "Edit"}
                  </Button>
                  {!config ? (
                    <>
                      <Button
                        size="sm"
                        variant="ghost"
                        aria-label={`${model.is_active ? "Deactivate" : "Activate"} ${model.name}`}
                        loading={pendingId === model.id}
                        onClick={() => onToggle(model)}
                      >
                        {model.is_active ? "Deactivate" : "Activate"}
                      </Button>
                      <Button
                        size="sm"
                        variant="ghost"
                        className="text-danger"
                        aria-label={`Delete ${model.name}`}
                        onClick={() => onDelete(model)}
                      >
                        Delete
                      </Button>
                    </>
                  ) : null}
                </div>
              </TD>
            </TR>
          );
        })}
      </TBody>
    </Table>
  );
}
