import type { ReactNode } from "react";
import { Link } from "react-router";
import { Table, TBody, TD, TH, THead, TR } from "../../components/ui";
import { formatCompact, formatNumber } from "../../lib/format";
import type { Team } from "./types";

const limit = (n: number) => (n === 0 ? "∞" : formatCompact(n));

/**
 * The teams of one organization with their counts and limits (0 shown as ∞): the Teams page's list and an
 * organization's Teams tab. `link` gives the page a team's name opens, or null where the viewer cannot open
 * it; `badge` adds a mark after the name.
 */
export function TeamsTable({
  teams,
  link,
  badge,
}: {
  teams: Team[];
  link: (team: Team) => string | null;
  badge?: (team: Team) => ReactNode;
}) {
  return (
    <Table caption="Teams">
      <THead>
        <TR>
          <TH>Name</TH>
          <TH>Slug</TH>
          <TH>Members</TH>
          <TH>Keys</TH>
          <TH>RPM / RPD</TH>
          <TH>Tokens day / month</TH>
        </TR>
      </THead>
      <TBody>
        {teams.map((team) => {
          const to = link(team);
          return (
            <TR key={team.id}>
              <TD className="font-medium">
                {to ? (
                  <Link className="text-primary underline-offset-2 hover:underline" to={to}>
                    {team.name}
                  </Link>
                ) : (
                  team.name
                )}
                {badge?.(team)}
              </TD>
              <TD>
                <code className="text-xs">{team.slug}</code>
              </TD>
              <TD>{formatNumber(team.member_count)}</TD>
              <TD>{formatNumber(team.key_count)}</TD>
              <TD>
                {limit(team.requests_per_minute)} / {limit(team.requests_per_day)}
              </TD>
              <TD>
                {limit(team.daily_token_limit)} / {limit(team.monthly_token_limit)}
              </TD>
            </TR>
          );
        })}
      </TBody>
    </Table>
  );
}
