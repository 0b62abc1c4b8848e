import { Link } from "react-router";
import { formatDuration, formatNumber } from "../../lib/format";
import { Badge, Table, TBody, TD, TH, THead, TR, type BadgeTone } from "../../components/ui";
import { scopeText } from "./data";
import type { McpHealth, McpServerOut } from "./types";

const HEALTH_TONES: Record<string, BadgeTone> = { healthy: "success", unhealthy: "danger" };
const capital = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

export function HealthBadge({ health }: { health: McpHealth | undefined }) {
  const status = health?.status ?? "unknown";
  return <Badge tone={HEALTH_TONES[status] ?? "neutral"}>{capital(status)}</Badge>;
}

export function SourceBadge({ source }: { source: string }) {
  if (source === "yaml") return <Badge tone="primary">voidllm.yaml</Badge>;
  if (source === "builtin") return <Badge tone="primary">Built-in</Badge>;
  return <Badge>API</Badge>;
}

export interface McpServersTableProps {
  servers: McpServerOut[];
  health: Map<string, McpHealth>;
  healthState: "ready" | "loading" | "error";
  teams: Map<string, string>;
}

/** Every visible server: scope, health, tool count, Code Mode, status; the name opens its page. */
export function McpServersTable({ servers, health, healthState, teams }: McpServersTableProps) {
  return (
    <Table caption="MCP servers">
      <THead>
        <TR>
          <TH>Name</TH>
          <TH>Scope</TH>
          <TH>Health</TH>
          <TH>Tools</TH>
          <TH>Code Mode</TH>
          <TH>Status</TH>
          <TH>Source</TH>
        </TR>
      </THead>
      <TBody>
        {servers.map((server) => {
          const h = health.get(server.id);
          return (
            <TR key={server.id}>
              <TD>
                <Link to={`/mcp-servers/${encodeURIComponent(server.id)}`} className="font-medium text-primary underline-offset-2 hover:underline">
                  {server.name}
                </Link>
                <div className="text-xs text-muted">{server.alias}</div>
              </TD>
              <TD>{scopeText(server, teams)}</TD>
              <TD>
                {!server.is_active ? (
                  <span className="text-xs text-muted">Not probed while inactive</span>
                ) : healthState === "loading" ? (
                  <span className="text-xs text-muted">Loading health…</span>
                ) : healthState === "error" ? (
                  <span className="text-xs text-muted">Health unavailable</span>
                ) : (
                  <div className="flex flex-wrap items-center gap-2 text-xs">
                    <HealthBadge health={h} />
                    {h?.latency_ms !== null && h?.latency_ms !== undefined ? (
                      <span className="text-muted">{formatDuration(h.latency_ms)}</span>
                    ) : null}
                    {h?.last_error ? <span className="text-danger">{h.last_error}</span> : null}
                  </div>
                )}
              </TD>
              <TD className="tabular-nums">
                {h?.tool_count !== null && h?.tool_count !== undefined ? formatNumber(h.tool_count) : "—"}
              </TD>
              <TD>
                <Badge tone={server.code_mode_enabled ? "success" : "neutral"}>{server.code_mode_enabled ? "On" : "Off"}</Badge>
              </TD>
              <TD>
                <Badge tone={server.is_active ? "success" : "neutral"}>{server.is_active ? "Active" : "Inactive"}</Badge>
              </TD>
              <TD>
                <SourceBadge source={server.source} />
              </TD>
            </TR>
          );
        })}
      </TBody>
    </Table>
  );
}
