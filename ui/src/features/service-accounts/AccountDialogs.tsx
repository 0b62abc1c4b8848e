import { useState, type FormEvent } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api } from "../../lib/api";
import { useCurrentUser } from "../../lib/auth";
import { useOrgId } from "../../lib/viewedOrg";
import { hasRole } from "../../lib/roles";
import { ConfirmDialog, Dialog, DialogFormActions, Field, InlineError, Input, NativeSelect, useToast } from "../../components/ui";
import { apiFieldError } from "../keys/form";
import type { Team } from "../teams/types";
import { accountPath, accountsKey, accountsPath, type ServiceAccount } from "./data";

/** Create (no account given) or rename a service account. Org admins may leave the team empty (an org-scoped
 * account); team admins create accounts of the teams they administer. */
export function AccountDialog({
  open,
  account,
  teams,
  onOpenChange,
}: {
  open: boolean;
  account: ServiceAccount | null;
  teams: Team[];
  onOpenChange: (open: boolean) => void;
}) {
  return (
    <Dialog
      open={open}
      onOpenChange={onOpenChange}
      title={account ? "Rename service account" : "Create service account"}
      description={account ? undefined : "An identity for automation: give it keys from the API Keys page."}
    >
      {open ? <AccountForm account={account} teams={teams} onDone={() => onOpenChange(false)} /> : null}
    </Dialog>
  );
}

function AccountForm({ account, teams, onDone }: { account: ServiceAccount | null; teams: Team[]; onDone: () => void }) {
  const me = useCurrentUser();
  const orgId = useOrgId();
  const orgAdmin = hasRole(me, "org_admin");
  const queryClient = useQueryClient();
  const toast = useToast();
  const [name, setName] = useState(account?.name ?? "");
  const [teamId, setTeamId] = useState("");
  const [errors, setErrors] = useState<{ name?: string; team_id?: string }>({});
  const save = useMutation({
    mutationFn: () =>
      account
        ? api.patch<ServiceAccount>(accountPath(orgId, account.id), { name: name.trim() })
        : api.post<ServiceAccount>(accountsPath(orgId), { name: name.trim(), team_id: teamId || null }),
    onSuccess: (saved) => {
      void queryClient.invalidateQueries({ queryKey: accountsKey(orgId) });
      void queryClient.invalidateQueries({ queryKey: ["keys", orgId, "service-accounts"] });
      toast({ title: account ? "Service account renamed" : `Service account “${saved.name}” created`, tone: "success" });
      onDone();
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const found: typeof errors = {};
    if (!name.trim()) found.name = "Enter a name.";
    if (!account && !orgAdmin && !teamId) found.team_id = "Choose a team.";
    setErrors(found);
    if (Object.keys(found).length === 0) save.mutate();
  };
  const fieldError = (field: "name" | "team_id") => errors[field] ?? apiFieldError(save.error, field);
  return (
    <form onSubmit={submit} noValidate className="flex flex-col gap-4">
      <Field label="Name" required error={fieldError("name")}>
        <Input value={name} onChange={(e) => setName(e.target.value)} maxLength={256} autoComplete="off" />
      </Field>
      {account ? null : (
        <Field
          label="Team"
          required={!orgAdmin}
          error={fieldError("team_id")}
          hint={orgAdmin ? "Empty: an organization-wide account." : "A team you administer."}
        >
          <NativeSelect
            value={teamId}
            onChange={(e) => setTeamId(e.target.value)}
            placeholder={orgAdmin ? "No team (organization)" : "Choose a team"}
            options={teams.map((t) => ({ value: t.id, label: t.name }))}
          />
        </Field>
      )}
      {save.isError && !apiFieldError(save.error, "name") && !apiFieldError(save.error, "team_id") ? (
        <InlineError error={save.error} />
      ) : null}
      <DialogFormActions submitLabel={account ? "Save" : "Create"} pending={save.isPending} />
    </form>
  );
}

/** Delete (confirmed): the account's keys are revoked at once. */
export function DeleteAccountDialog({ account, onClose }: { account: ServiceAccount | null; onClose: () => void }) {
  const orgId = useOrgId();
  const queryClient = useQueryClient();
  const toast = useToast();
  const remove = useMutation({
    mutationFn: (a: ServiceAccount) => api.delete(accountPath(orgId, a.id)),
    onSuccess: (_, a) => {
      onClose();
      void queryClient.invalidateQueries({ queryKey: accountsKey(orgId) });
      void queryClient.invalidateQueries({ queryKey: ["keys", orgId] });
      toast({ title: `Service account “${a.name}” deleted`, tone: "success" });
    },
  });
  return (
    <ConfirmDialog
      open={account !== null}
      onOpenChange={(open) => {
        if (!open) {
          onClose();
          remove.reset();
        }
      }}
      title="Delete service account"
      description={account ? `Delete ${account.name}? Its ${account.key_count} keys stop working at once.` : ""}
      confirmLabel="Delete"
      destructive
      pending={remove.isPending}
      onConfirm={() => account && remove.mutate(account)}
    >
      {remove.isError ? <InlineError error={remove.error} /> : null}
    </ConfirmDialog>
  );
}
