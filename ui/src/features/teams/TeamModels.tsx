import { useCurrentUser } from "../../lib/auth";
import { useOrgId } from "../../lib/viewedOrg";
import { Card, CardContent, CardHeader, InlineError, QueryView } from "../../components/ui";
import { AccessForm } from "../access/AccessForm";
import { ModelAliases } from "../access/ModelAliases";
import { useAvailableModels } from "../keys/data";
import { ModelChoice } from "../keys/form";
import type { ModelAccess } from "../keys/types";
import { canManageOrgTeams, teamKey, teamPath, useTeamAliases, useTeamModelAccess } from "./data";

/** A team's model allowlist (org admins change it, team admins read it) and its model aliases (org admins). */
export function TeamModels({ teamId, teamName }: { teamId: string; teamName: string }) {
  const me = useCurrentUser();
  const orgAdmin = canManageOrgTeams(me);
  return (
    <div className="flex flex-col gap-6">
      <ModelAllowlist teamId={teamId} editable={orgAdmin} />
      {orgAdmin ? (
        <TeamAliases teamId={teamId} teamName={teamName} />
      ) : (
        <Card>
          <CardHeader title="Model aliases" description="Team model aliases are managed by organization admins." />
        </Card>
      )}
    </div>
  );
}

function ModelAllowlist({ teamId, editable }: { teamId: string; editable: boolean }) {
  const orgId = useOrgId();
  const access = useTeamModelAccess(teamId);
  const available = useAvailableModels(editable);
  return (
    <Card>
      <CardHeader
        title="Model access"
        description="The models the team's keys may use, within what the organization allows. None checked: every model the organization allows."
      />
      <CardContent>
        <QueryView query={access} loadingLabel="Loading model access" errorTitle="Could not load the model access">
          {(data) =>
            editable ? (
              <AccessForm<ModelAccess>
                key={data.models.join("\n")}
                saved={data.models}
                path={`${teamPath(orgId, teamId)}/model-access`}
                body={(models) => ({ models })}
                queryKey={[...teamKey(orgId, teamId), "model-access"]}
                what="Model access"
                submitLabel="Save model access"
              >
                {(selected, setSelected) => (
                  <>
                    {available.isError ? <InlineError error={available.error} /> : null}
                    <ModelChoice
                      models={[...new Set([...(available.data?.models ?? []).map((m) => m.name), ...data.models])]}
                      selected={selected}
                      onChange={setSelected}
                    />
                  </>
                )}
              </AccessForm>
            ) : data.models.length === 0 ? (
              <p className="text-sm">Every model the organization allows.</p>
            ) : (
              <ul aria-label="Allowed models" className="list-inside list-disc text-sm">
                {data.models.map((m) => (
                  <li key={m}>{m}</li>
                ))}
              </ul>
            )
          }
        </QueryView>
      </CardContent>
    </Card>
  );
}

function TeamAliases({ teamId, teamName }: { teamId: string; teamName: string }) {
  const orgId = useOrgId();
  const aliases = useTeamAliases(teamId, true);
  const available = useAvailableModels(true);
  return (
    <ModelAliases
      path={`${teamPath(orgId, teamId)}/model-aliases`}
      aliases={aliases}
      queryKey={[...teamKey(orgId, teamId), "aliases"]}
      modelNames={available.data?.models.map((m) => m.name)}
      description="Names the team's keys can use for a model (they take precedence over the organization's)."
      caption={`Model aliases of ${teamName}`}
    />
  );
}
