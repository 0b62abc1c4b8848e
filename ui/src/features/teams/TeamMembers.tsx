import { useState, type FormEvent } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api } from "../../lib/api";
import { useCurrentUser } from "../../lib/auth";
import { useOrgId } from "../../lib/viewedOrg";
import { roleLabel } from "../../lib/roles";
import {
  Button,
  Card,
  CardContent,
  CardHeader,
  Dialog,
  DialogFormActions,
  EmptyState,
  Field,
  InlineError,
  NativeSelect,
  useToast,
} from "../../components/ui";
import { memberName, MembersTable } from "../access/MembersTable";
import { canManageOrgTeams, teamKey, teamPath, useOrgMembers, useTeamMembers } from "./data";
import type { Member, TeamRole } from "./types";

const ROLE_OPTIONS = [
  { value: "member", label: roleLabel("member") },
  { value: "team_admin", label: roleLabel("team_admin") },
];

/** Team members: add from the organisation, change a member's team role, remove (confirmed). */
export function TeamMembers({ teamId, teamName }: { teamId: string; teamName: string }) {
  const orgId = useOrgId();
  const members = useTeamMembers(teamId);
  const [adding, setAdding] = useState(false);
  const addButton = <Button onClick={() => setAdding(true)}>Add member</Button>;
  return (
    <Card>
      <CardHeader title="Members" description="Team admins manage the team's members, keys and MCP access." actions={addButton} />
      <CardContent className="flex flex-col gap-3">
        <MembersTable
          members={members}
          path={`${teamPath(orgId, teamId)}/members`}
          queryKey={teamKey(orgId, teamId)}
          roleHeader="Team role"
          roleOptions={ROLE_OPTIONS}
          sinceHeader="Added"
          caption={`Members of ${teamName}`}
          empty={<EmptyState title="No members yet" description="Add people of your organization to this team." action={addButton} />}
          removal={{
            title: () => "Remove member",
            description: (m) => `Remove ${memberName(m)} from ${teamName}? Their keys bound to this team stop working at once.`,
            done: (m) => `${memberName(m)} removed from the team`,
          }}
        />
      </CardContent>
      <AddMemberDialog
        open={adding}
        onOpenChange={setAdding}
        teamId={teamId}
        current={new Set((members.data?.items ?? []).map((m) => m.user_id))}
      />
    </Card>
  );
}

function AddMemberDialog({
  open,
  onOpenChange,
  teamId,
  current,
}: {
  open: boolean;
  onOpenChange: (open: boolean) => void;
  teamId: string;
  current: Set<string>;
}) {
  return (
    <Dialog open={open} onOpenChange={onOpenChange} title="Add member" description="Add a member of your organization to this team.">
      {open ? <AddMemberForm teamId={teamId} current={current} onDone={() => onOpenChange(false)} /> : null}
    </Dialog>
  );
}

function AddMemberForm({ teamId, current, onDone }: { teamId: string; current: Set<string>; onDone: () => void }) {
  const me = useCurrentUser();
  const orgId = useOrgId();
  const listable = canManageOrgTeams(me);
  const org = useOrgMembers(listable);
  const queryClient = useQueryClient();
  const toast = useToast();
  const [userId, setUserId] = useState("");
  const [role, setRole] = useState<TeamRole>("member");
  const [error, setError] = useState<string | undefined>();
  const add = useMutation({
    mutationFn: () => api.post<Member>(`${teamPath(orgId, teamId)}/members`, { user_id: userId, role }),
    onSuccess: (member) => {
      void queryClient.invalidateQueries({ queryKey: teamKey(orgId, teamId) });
      toast({ title: `${memberName(member)} added to the team`, tone: "success" });
      onDone();
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!userId) {
      setError("Choose a member of the organization.");
      return;
    }
    setError(undefined);
    add.mutate();
  };
  if (!listable) {
    return (
      <p className="text-sm text-muted">
        Only organization admins can see the organization's members: ask one to add people to this team. You can
        change roles and remove members here.
      </p>
    );
  }
  const options = (org.data?.items ?? [])
    .filter((m) => !current.has(m.user_id))
    .map((m) => ({ value: m.user_id, label: m.display_name ? `${m.display_name} (${m.email})` : m.email }));
  return (
    <form onSubmit={submit} noValidate className="flex flex-col gap-4">
      <Field label="Organization member" required error={error} hint={org.isError ? "Could not load the organization's members." : undefined}>
        <NativeSelect
          value={userId}
          onChange={(e) => setUserId(e.target.value)}
          placeholder={org.isPending ? "Loading…" : options.length === 0 ? "Everyone is already in the team" : "Choose a member"}
          options={options}
        />
      </Field>
      <Field label="Team role">
        <NativeSelect value={role} onChange={(e) => setRole(e.target.value as TeamRole)} options={ROLE_OPTIONS} />
      </Field>
      {add.isError ? <InlineError error={add.error} /> : null}
      <DialogFormActions submitLabel="Add" pending={add.isPending} />
    </form>
  );
}
