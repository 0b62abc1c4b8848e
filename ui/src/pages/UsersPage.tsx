import { useMemo, useState, type FormEvent } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api } from "../lib/api";
import { useCurrentUser } from "../lib/auth";
import { roleLabel } from "../lib/roles";
import { useOrgId } from "../lib/viewedOrg";
import {
  Badge,
  Button,
  Card,
  CardContent,
  ConfirmDialog,
  DateTime,
  Dialog,
  DialogFormActions,
  ItemsTable,
  Field,
  InlineError,
  Input,
  NativeSelect,
  PageHeader,
  TD,
  TR,
  useToast,
} from "../components/ui";
import { apiFieldError, isFieldError } from "../features/keys/form";
import { ORG_ROLE_OPTIONS, useOrgs, useUsers } from "../features/org/data";
import type { OrgRole, UserCreate, UserOut } from "../features/org/types";

const MIN_PASSWORD = 8;
const USERS = ["users"];

type Action = { kind: "admin" | "password" | "deactivate"; user: UserOut };

/** Users (system admins): create, make or unmake system admin, reset a password, deactivate. */
export default function UsersPage() {
  const me = useCurrentUser();
  const users = useUsers();
  const orgs = useOrgs();
  const [creating, setCreating] = useState(false);
  const [action, setAction] = useState<Action | null>(null);
  const orgNames = useMemo(() => new Map((orgs.data?.items ?? []).map((o) => [o.id, o.name])), [orgs.data]);
  const createButton = <Button onClick={() => setCreating(true)}>Create user</Button>;
  return (
    <>
      <PageHeader title="Users" description="Every account of this gateway." actions={createButton} />
      <Card>
        <CardContent>
          <ItemsTable
            query={users}
            noun="users"
            caption="Users"
            headers={["Name", "Email", "Organization", "Role", "Created"]}
            emptyAction={createButton}
          >
            {(user) => {
              const who = user.display_name || user.email;
              const self = user.id === me.id;
              return (
                <TR key={user.id}>
                  <TD className="font-medium">
                    {who}
                    {self ? <span className="text-muted"> (you)</span> : null}
                  </TD>
                  <TD>{user.email}</TD>
                  <TD>{user.org_id ? (orgNames.get(user.org_id) ?? "—") : "—"}</TD>
                  <TD>
                    <div className="flex flex-wrap gap-1">
                      {user.is_system_admin ? <Badge tone="primary">System admin</Badge> : null}
                      {user.role ? <span>{roleLabel(user.role)}</span> : null}
                    </div>
                  </TD>
                  <TD>
                    <DateTime value={user.created_at} />
                  </TD>
                  <TD>
                    <div className="flex justify-end gap-1 whitespace-nowrap">
                      {self ? null : (
                        <Button size="sm" variant="ghost" aria-label={`${user.is_system_admin ? "Remove system admin from" : "Make system admin"} ${who}`} onClick={() => setAction({ kind: "admin", user })}>
                          {user.is_system_admin ? "Remove system admin" : "Make system admin"}
                        </Button>
                      )}
                      {user.auth_provider === "local" ? (
                        <Button size="sm" variant="ghost" aria-label={`Reset password for ${who}`} onClick={() => setAction({ kind: "password", user })}>
                          Reset password
                        </Button>
                      ) : null}
                      {self ? null : (
                        <Button size="sm" variant="ghost" className="text-danger" aria-label={`Deactivate ${who}`} onClick={() => setAction({ kind: "deactivate", user })}>
                          Deactivate
                        </Button>
                      )}
                    </div>
                  </TD>
                </TR>
              );
            }}
          </ItemsTable>
        </CardContent>
      </Card>
      <CreateUserDialog open={creating} onOpenChange={setCreating} />
      <AdminDialog action={action?.kind === "admin" ? action.user : null} onClose={() => setAction(null)} />
      <PasswordDialog user={action?.kind === "password" ? action.user : null} onClose={() => setAction(null)} />
      <DeactivateDialog user={action?.kind === "deactivate" ? action.user : null} onClose={() => setAction(null)} />
    </>
  );
}

function AdminDialog({ action: user, onClose }: { action: UserOut | null; onClose: () => void }) {
  const queryClient = useQueryClient();
  const toast = useToast();
  const change = useMutation({
    mutationFn: (u: UserOut) => api.patch<UserOut>(`users/${encodeURIComponent(u.id)}`, { is_system_admin: !u.is_system_admin }),
    onSuccess: (saved) => {
      void queryClient.invalidateQueries({ queryKey: USERS });
      toast({ title: saved.is_system_admin ? "System admin rights given" : "System admin rights removed", tone: "success" });
      close();
    },
  });
  const close = () => {
    change.reset();
    onClose();
  };
  const who = user ? user.display_name || user.email : "";
  return (
    <ConfirmDialog
      open={user !== null}
      onOpenChange={(open) => (open ? undefined : close())}
      title={user?.is_system_admin ? `Remove system admin rights from ${who}?` : `Make ${who} a system admin?`}
      description={
        user?.is_system_admin
          ? "They keep their organization role but lose access to every organization, user and model."
          : "A system admin manages every organization, user and model of this gateway."
      }
      confirmLabel={user?.is_system_admin ? "Remove rights" : "Make system admin"}
      destructive={user?.is_system_admin ?? false}
      pending={change.isPending}
      onConfirm={() => user && change.mutate(user)}
    >
      {change.isError ? <InlineError error={change.error} /> : null}
    </ConfirmDialog>
  );
}

function PasswordDialog({ user, onClose }: { user: UserOut | null; onClose: () => void }) {
  const toast = useToast();
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | undefined>();
  const reset = useMutation({
    mutationFn: ({ u, pw }: { u: UserOut; pw: string }) => api.patch<UserOut>(`users/${encodeURIComponent(u.id)}`, { password: pw }),
    onSuccess: () => {
      toast({ title: "Password reset", description: "Their other sessions have ended.", tone: "success" });
      close();
    },
  });
  const close = () => {
    setPassword("");
    setError(undefined);
    reset.reset();
    onClose();
  };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const problem = password.length >= MIN_PASSWORD ? undefined : `At least ${MIN_PASSWORD} characters.`;
    setError(problem);
    if (!problem && user) reset.mutate({ u: user, pw: password });
  };
  const apiError = apiFieldError(reset.error, "password");
  return (
    <Dialog
      open={user !== null}
      onOpenChange={(open) => (open ? undefined : close())}
      title={user ? `Reset password for ${user.display_name || user.email}` : "Reset password"}
      description="Their sessions end; tell them the new password through a safe channel."
    >
      <form onSubmit={submit} noValidate className="flex flex-col gap-4">
        <Field label="New password" required hint={`At least ${MIN_PASSWORD} characters.`} error={error ?? apiError}>
          <Input type="password" value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="new-password" />
        </Field>
        {reset.isError && !apiError ? <InlineError error={reset.error} /> : null}
        <DialogFormActions submitLabel="Reset password" pending={reset.isPending} />
      </form>
    </Dialog>
  );
}

function DeactivateDialog({ user, onClose }: { user: UserOut | null; onClose: () => void }) {
  const queryClient = useQueryClient();
  const toast = useToast();
  const remove = useMutation({
    mutationFn: (u: UserOut) => api.delete(`users/${encodeURIComponent(u.id)}`),
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: USERS });
      toast({ title: "User deactivated", tone: "success" });
      close();
    },
  });
  const close = () => {
    remove.reset();
    onClose();
  };
  return (
    <ConfirmDialog
      open={user !== null}
      onOpenChange={(open) => (open ? undefined : close())}
      title={user ? `Deactivate ${user.display_name || user.email}?` : "Deactivate user?"}
      description="They can no longer sign in, and every key of theirs stops working at once. This cannot be undone."
      confirmLabel="Deactivate"
      destructive
      pending={remove.isPending}
      onConfirm={() => user && remove.mutate(user)}
    >
      {remove.isError ? <InlineError error={remove.error} /> : null}
    </ConfirmDialog>
  );
}

function CreateUserDialog({ open, onOpenChange }: { open: boolean; onOpenChange: (open: boolean) => void }) {
  return (
    <Dialog open={open} onOpenChange={onOpenChange} title="Create user" description="An account with a password, in one organization." size="lg">
      {open ? <CreateUserForm onDone={() => onOpenChange(false)} /> : null}
    </Dialog>
  );
}

const FIELDS = ["email", "display_name", "password", "org_id", "role"];

function CreateUserForm({ onDone }: { onDone: () => void }) {
  const orgs = useOrgs();
  const queryClient = useQueryClient();
  const toast = useToast();
  const [email, setEmail] = useState("");
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  // A new user joins the organization being viewed unless another is chosen.
  const viewed = useOrgId();
  const [orgId, setOrgId] = useState(viewed);
  const [role, setRole] = useState<OrgRole>("member");
  const [systemAdmin, setSystemAdmin] = useState(false);
  const [errors, setErrors] = useState<Record<string, string | undefined>>({});
  const create = useMutation({
    mutationFn: (body: UserCreate) => api.post<UserOut>("users", body),
    onSuccess: (user) => {
      void queryClient.invalidateQueries({ queryKey: USERS });
      toast({ title: `User ${user.email} created`, tone: "success" });
      onDone();
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const found = {
      email: /^[^@\s]+@[^@\s]+$/.test(email.trim()) ? undefined : "Enter an email address.",
      password: password.length >= MIN_PASSWORD ? undefined : `At least ${MIN_PASSWORD} characters.`,
      org_id: orgId ? undefined : "Choose an organization.",
    };
    setErrors(found);
    if (found.email || found.password || found.org_id) return;
    create.mutate({ email: email.trim(), display_name: name.trim(), password, org_id: orgId, role, is_system_admin: systemAdmin });
  };
  const fieldError = (field: string) => errors[field] ?? apiFieldError(create.error, field);
  return (
    <form onSubmit={submit} noValidate className="flex flex-col gap-4">
      <div className="grid grid-cols-1 gap-3 sm:grid-cols-2">
        <Field label="Email" required error={fieldError("email")}>
          <Input type="email" value={email} onChange={(e) => setEmail(e.target.value)} maxLength={254} autoComplete="off" />
        </Field>
        <Field label="Display name" error={fieldError("display_name")}>
          <Input value={name} onChange={(e) => setName(e.target.value)} maxLength={256} autoComplete="off" />
        </Field>
        <Field label="Password" required hint={`At least ${MIN_PASSWORD} characters.`} error={fieldError("password")}>
          <Input type="password" value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="new-password" />
        </Field>
        <Field label="Organization" required error={fieldError("org_id")}>
          <NativeSelect
            value={orgId}
            onChange={(e) => setOrgId(e.target.value)}
            placeholder={orgs.isPending ? "Loading…" : "Choose an organization"}
            options={(orgs.data?.items ?? []).filter((o) => o.is_active).map((o) => ({ value: o.id, label: o.name }))}
          />
        </Field>
        <Field label="Organization role" error={fieldError("role")}>
          <NativeSelect value={role} onChange={(e) => setRole(e.target.value as OrgRole)} options={ORG_ROLE_OPTIONS} />
        </Field>
      </div>
      <label className="flex items-center gap-2 text-sm">
        <input type="checkbox" className="h-4 w-4" checked={systemAdmin} onChange={(e) => setSystemAdmin(e.target.checked)} />
        System admin (manages every organization, user and model)
      </label>
      {create.isError && !isFieldError(create.error, FIELDS) ? <InlineError error={create.error} /> : null}
      <DialogFormActions submitLabel="Create" pending={create.isPending} />
    </form>
  );
}
