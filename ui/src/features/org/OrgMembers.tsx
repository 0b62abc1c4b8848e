import { useState, type FormEvent } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api } from "../../lib/api";
import { useCurrentUser } from "../../lib/auth";
import { roleLabel } from "../../lib/roles";
import {
  Badge,
  Button,
  Card,
  CardContent,
  CardHeader,
  ConfirmDialog,
  CopyButton,
  DateTime,
  Dialog,
  DialogFormActions,
  EmptyState,
  Field,
  InlineError,
  Input,
  NativeSelect,
  QueryView,
  Table,
  TBody,
  TD,
  TH,
  THead,
  TR,
  useToast,
} from "../../components/ui";
import { memberName, MembersTable } from "../access/MembersTable";
import { apiFieldError, isFieldError } from "../keys/form";
import { hasRole } from "../../lib/roles";
import { inviteLink, ORG_ROLE_OPTIONS, orgKey, orgPath, useInvites, useMembers, useUsers } from "./data";
import type { InviteCreated, InviteOut, MemberOut, OrgRole } from "./types";

/** Members with their roles (change, remove) and the invites (create, copy the link once, revoke). */
export function OrgMembers({ orgId }: { orgId: string }) {
  return (
    <div className="flex flex-col gap-6">
      <Members orgId={orgId} />
      <Invites orgId={orgId} />
    </div>
  );
}

function Members({ orgId }: { orgId: string }) {
  const me = useCurrentUser();
  const members = useMembers(orgId);
  const [adding, setAdding] = useState(false);
  return (
    <Card>
      <CardHeader
        title="Members"
        description="Everyone in the organization and their role."
        actions={
          hasRole(me, "system_admin") ? (
            <Button variant="secondary" onClick={() => setAdding(true)}>
              Add existing user
            </Button>
          ) : undefined
        }
      />
      <CardContent className="flex flex-col gap-3">
        <MembersTable
          members={members}
          path={`${orgPath(orgId)}/members`}
          queryKey={orgKey(orgId, "members")}
          roleHeader="Role"
          roleOptions={ORG_ROLE_OPTIONS}
          sinceHeader="Member since"
          caption="Members"
          empty={<EmptyState title="No members yet" description="Invite someone below." />}
          selfId={me.id}
          removal={{
            title: (m) => `Remove ${memberName(m)}?`,
            description: () => "They leave the organization and their keys in it are revoked at once.",
            done: () => "Member removed",
          }}
        />
      </CardContent>
      <Dialog
        open={adding}
        onOpenChange={setAdding}
        title="Add existing user"
        description="Add an account of this gateway to the organization (system admins only; others invite by email)."
      >
        {adding ? (
          <AddMemberForm orgId={orgId} members={members.data?.items ?? []} onDone={() => setAdding(false)} />
        ) : null}
      </Dialog>
    </Card>
  );
}

function AddMemberForm({ orgId, members, onDone }: { orgId: string; members: MemberOut[]; onDone: () => void }) {
  const users = useUsers();
  const queryClient = useQueryClient();
  const toast = useToast();
  const [userId, setUserId] = useState("");
  const [role, setRole] = useState<OrgRole>("member");
  const [error, setError] = useState<string | undefined>();
  const add = useMutation({
    mutationFn: (body: { user_id: string; role: OrgRole }) => api.post<MemberOut>(`${orgPath(orgId)}/members`, body),
    onSuccess: (added) => {
      void queryClient.invalidateQueries({ queryKey: orgKey(orgId, "members") });
      toast({ title: `${memberName(added)} added`, tone: "success" });
      onDone();
    },
  });
  const already = new Set(members.map((m) => m.user_id));
  const options = (users.data?.items ?? [])
    .filter((u) => !already.has(u.id))
    .map((u) => ({ value: u.id, label: u.display_name ? `${u.display_name} (${u.email})` : u.email }));
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setError(userId ? undefined : "Choose a user.");
    if (userId) add.mutate({ user_id: userId, role });
  };
  return (
    <form onSubmit={submit} noValidate className="flex flex-col gap-4">
      <Field label="User" required error={error ?? apiFieldError(add.error, "user_id")} hint={users.isError ? "Could not load the users." : undefined}>
        <NativeSelect
          value={userId}
          onChange={(e) => setUserId(e.target.value)}
          placeholder={users.isPending ? "Loading…" : "Choose a user"}
          options={options}
        />
      </Field>
      <Field label="Role">
        <NativeSelect value={role} onChange={(e) => setRole(e.target.value as OrgRole)} options={ORG_ROLE_OPTIONS} />
      </Field>
      {add.isError && !isFieldError(add.error, ["user_id"]) ? <InlineError error={add.error} /> : null}
      <DialogFormActions submitLabel="Add" pending={add.isPending} />
    </form>
  );
}

const STATUS_TONE: Record<string, "success" | "warning" | "danger" | "neutral"> = {
  pending: "warning",
  redeemed: "success",
  declined: "neutral",
  expired: "danger",
};

function Invites({ orgId }: { orgId: string }) {
  const invites = useInvites(orgId);
  const queryClient = useQueryClient();
  const toast = useToast();
  const [creating, setCreating] = useState(false);
  const [revoking, setRevoking] = useState<InviteOut | null>(null);
  const [showAll, setShowAll] = useState(false);
  const revoke = useMutation({
    mutationFn: (invite: InviteOut) => api.delete(`${orgPath(orgId)}/invites/${encodeURIComponent(invite.id)}`),
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: orgKey(orgId, "invites") });
      toast({ title: "Invite revoked", tone: "success" });
      closeRevoke();
    },
  });
  const closeRevoke = () => {
    setRevoking(null);
    revoke.reset();
  };
  const inviteButton = <Button onClick={() => setCreating(true)}>Invite member</Button>;
  return (
    <Card>
      <CardHeader
        title="Invites"
        description="An invite link lets one person create their account in this organization."
        actions={inviteButton}
      />
      <CardContent className="flex flex-col gap-3">
        <label className="flex items-center gap-2 text-sm">
          <input type="checkbox" className="h-4 w-4" checked={showAll} onChange={(e) => setShowAll(e.target.checked)} />
          Also show used, declined and expired invites
        </label>
        <QueryView query={invites} loadingLabel="Loading invites" errorTitle="Could not load the invites">
          {(data) => {
            const shown = showAll ? data.items : data.items.filter((i) => i.status === "pending");
            if (shown.length === 0) {
              return <EmptyState title={showAll ? "No invites yet" : "No pending invites"} />;
            }
            return (
              <Table caption={showAll ? "Invites" : "Pending invites"}>
                <THead>
                  <TR>
                    <TH>Email</TH>
                    <TH>Role</TH>
                    <TH>Status</TH>
                    <TH>Expires</TH>
                    <TH>
                      <span className="sr-only">Actions</span>
                    </TH>
                  </TR>
                </THead>
                <TBody>
                  {shown.map((invite) => (
                    <TR key={invite.id}>
                      <TD className="font-medium">{invite.email}</TD>
                      <TD>{roleLabel(invite.role)}</TD>
                      <TD>
                        <Badge tone={STATUS_TONE[invite.status] ?? "neutral"}>{invite.status}</Badge>
                      </TD>
                      <TD>
                        <DateTime value={invite.expires_at} />
                      </TD>
                      <TD>
                        <div className="flex justify-end">
                          {invite.status === "pending" ? (
                            <Button
                              size="sm"
                              variant="ghost"
                              className="text-danger"
                              aria-label={`Revoke the invite of ${invite.email}`}
                              onClick={() => setRevoking(invite)}
                            >
                              Revoke
                            </Button>
                          ) : null}
                        </div>
                      </TD>
                    </TR>
                  ))}
                </TBody>
              </Table>
            );
          }}
        </QueryView>
      </CardContent>
      <CreateInviteDialog orgId={orgId} open={creating} onOpenChange={setCreating} />
      <ConfirmDialog
        open={revoking !== null}
        onOpenChange={(open) => (open ? undefined : closeRevoke())}
        title={revoking ? `Revoke the invite of ${revoking.email}?` : "Revoke invite?"}
        description="Its link stops working at once."
        confirmLabel="Revoke"
        destructive
        pending={revoke.isPending}
        onConfirm={() => revoking && revoke.mutate(revoking)}
      >
        {revoke.isError ? <InlineError error={revoke.error} /> : null}
      </ConfirmDialog>
    </Card>
  );
}

const INVITE_EXPIRY = [
  { value: "1", label: "In 1 day" },
  { value: "3", label: "In 3 days" },
  { value: "7", label: "In 7 days" },
  { value: "14", label: "In 14 days" },
  { value: "30", label: "In 30 days" },
];

/** The invite form, then its link shown once (only in this dialog's state; gone when it closes). */
function CreateInviteDialog({ orgId, open, onOpenChange }: { orgId: string; open: boolean; onOpenChange: (open: boolean) => void }) {
  const [created, setCreated] = useState<{ email: string; link: string; expiresAt: string } | null>(null);
  const change = (next: boolean) => {
    if (!next) setCreated(null);
    onOpenChange(next);
  };
  return (
    <Dialog
      open={open}
      onOpenChange={change}
      title={created ? "Invite created" : "Invite member"}
      description={created ? `Send this link to ${created.email}.` : "Invite someone by email, with their role."}
      size="lg"
      footer={created ? <Button onClick={() => change(false)}>Done</Button> : undefined}
    >
      {created ? (
        <div className="flex flex-col gap-3">
          <div role="alert" className="rounded-md border border-warning/50 px-3 py-2 text-sm">
            <strong className="text-warning">Copy this link now.</strong> It is shown only once: after you close this
            dialog it cannot be shown again.
          </div>
          <div className="flex flex-wrap items-end gap-2">
            <Field label="Invite link" className="min-w-0 flex-1">
              <Input readOnly value={created.link} className="font-mono" autoComplete="off" spellCheck={false} onFocus={(e) => e.currentTarget.select()} />
            </Field>
            <CopyButton value={created.link} label="Copy link" size="md" />
          </div>
          <p className="text-sm">
            The link works once, until <DateTime value={created.expiresAt} />.
          </p>
        </div>
      ) : open ? (
        <InviteForm orgId={orgId} onCreated={setCreated} />
      ) : null}
    </Dialog>
  );
}

function InviteForm({ orgId, onCreated }: { orgId: string; onCreated: (created: { email: string; link: string; expiresAt: string }) => void }) {
  const queryClient = useQueryClient();
  const toast = useToast();
  const [email, setEmail] = useState("");
  const [role, setRole] = useState<OrgRole>("member");
  const [days, setDays] = useState("7");
  const [error, setError] = useState<string | undefined>();
  const create = useMutation({
    // The token goes straight into the dialog's state: the mutation (and the query client) keeps only the id.
    mutationFn: async (body: { email: string; role: OrgRole; expires_in_days: number }) => {
      const invite = await api.post<InviteCreated>(`${orgPath(orgId)}/invites`, body);
      onCreated({ email: invite.email, link: inviteLink(invite.token), expiresAt: invite.expires_at });
      return invite.id;
    },
    gcTime: 0,
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: orgKey(orgId, "invites") });
      toast({ title: "Invite created", tone: "success" });
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const value = email.trim();
    const problem = /^[^@\s]+@[^@\s]+$/.test(value) ? undefined : "Enter an email address.";
    setError(problem);
    if (!problem) create.mutate({ email: value, role, expires_in_days: Number(days) });
  };
  return (
    <form onSubmit={submit} noValidate className="flex flex-col gap-4">
      <Field label="Email" required error={error ?? apiFieldError(create.error, "email")}>
        <Input type="email" value={email} onChange={(e) => setEmail(e.target.value)} maxLength={254} autoComplete="off" />
      </Field>
      <Field label="Role" error={apiFieldError(create.error, "role")}>
        <NativeSelect value={role} onChange={(e) => setRole(e.target.value as OrgRole)} options={ORG_ROLE_OPTIONS} />
      </Field>
      <Field label="Expires" hint="Inviting the same email again replaces its open invite." error={apiFieldError(create.error, "expires_in_days")}>
        <NativeSelect value={days} onChange={(e) => setDays(e.target.value)} options={INVITE_EXPIRY} />
      </Field>
      {create.isError && !isFieldError(create.error, ["email", "role", "expires_in_days"]) ? <InlineError error={create.error} /> : null}
      <DialogFormActions submitLabel="Create invite" pending={create.isPending} />
    </form>
  );
}
