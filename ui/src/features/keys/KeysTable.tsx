import { useCurrentUser } from "../../lib/auth";
import { formatCompact, formatNumber } from "../../lib/format";
import { Badge, Button, DateTime, Table, TBody, TD, TH, THead, TR } from "../../components/ui";
import { canRotate, KEY_TYPE_LABELS, keyStatus, type KeyStatus } from "./data";
import type { KeyOut } from "./types";

const STATUS: Record<KeyStatus, { label: string; tone: "success" | "warning" | "danger" }> = {
  active: { label: "Active", tone: "success" },
  expiring: { label: "Expiring soon", tone: "warning" },
  expired: { label: "Expired", tone: "danger" },
};

export interface KeysTableProps {
  keys: KeyOut[];
  teamNames: Map<string, string>;
  accountNames: Map<string, string>;
  onEdit: (key: KeyOut) => void;
  onRotate: (key: KeyOut) => void;
  onRevoke: (key: KeyOut) => void;
}

function limit(n: number) {
  return n === 0 ? "∞" : formatCompact(n);
}

export function KeysTable({ keys, teamNames, accountNames, onEdit, onRotate, onRevoke }: KeysTableProps) {
  const me = useCurrentUser();
  const now = new Date();
  const owner = (key: KeyOut) => {
    if (key.service_account_id) return accountNames.get(key.service_account_id) ?? "Service account";
    const team = key.team_id ? teamNames.get(key.team_id) ?? "Team" : null;
    if (key.key_type === "team_key") return team ?? "Team";
    const user = key.user_id === me.id ? "You" : "Another user";
    return team ? `${user} · ${team}` : user;
  };
  return (
    <Table caption="API keys">
      <THead>
        <TR>
          <TH>Name</TH>
          <TH>Key</TH>
          <TH>Type</TH>
          <TH>Owner</TH>
          <TH>Status</TH>
          <TH>Limits</TH>
          <TH>Expires</TH>
          <TH>Last used</TH>
          <TH>
            <span className="sr-only">Actions</span>
          </TH>
        </TR>
      </THead>
      <TBody>
        {keys.map((key) => {
          const status = STATUS[keyStatus(key, now)];
          return (
            <TR key={key.id}>
              <TD className="font-medium">{key.name}</TD>
              <TD>
                <code className="text-xs">{key.key_hint}</code>
              </TD>
              <TD>{KEY_TYPE_LABELS[key.key_type] ?? key.key_type}</TD>
              <TD>{owner(key)}</TD>
              <TD>
                <Badge tone={status.tone}>{status.label}</Badge>
              </TD>
              {/* Each limit stays whole, but a line may break between two, so the row fits beside a long owner name. */}
              <TD className="text-xs">
                <span title={`${formatNumber(key.requests_per_minute)} requests per minute, ${formatNumber(key.requests_per_day)} per day`}>
                  <span className="whitespace-nowrap">{limit(key.requests_per_minute)} RPM</span> ·{" "}
                  <span className="whitespace-nowrap">{limit(key.requests_per_day)} RPD</span>
                </span>
                <br />
                <span>
                  <span className="whitespace-nowrap">{limit(key.daily_token_limit)} / day</span> ·{" "}
                  <span className="whitespace-nowrap">{limit(key.monthly_token_limit)} / month tokens</span>
                </span>
              </TD>
              <TD>{key.expires_at ? <DateTime value={key.expires_at} /> : "Never"}</TD>
              <TD>{key.last_used_at ? <DateTime value={key.last_used_at} relative /> : "Never"}</TD>
              <TD>
                <div className="flex justify-end gap-1 whitespace-nowrap">
                  <Button size="sm" variant="ghost" aria-label={`Edit ${key.name}`} onClick={() => onEdit(key)}>
                    Edit
                  </Button>
                  {canRotate(me, key) && status.label !== "Expired" ? (
                    <Button size="sm" variant="ghost" aria-label={`Rotate ${key.name}`} onClick={() => onRotate(key)}>
                      Rotate
                    </Button>
                  ) : null}
                  <Button size="sm" variant="ghost" className="text-danger" aria-label={`Revoke ${key.name}`} onClick={() => onRevoke(key)}>
                    Revoke
                  </Button>
                </div>
              </TD>
            </TR>
          );
        })}
      </TBody>
    </Table>
  );
}
