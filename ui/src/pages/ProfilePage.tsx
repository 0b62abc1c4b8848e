import { useState, type FormEvent } from "react";
import { useInfiniteQuery, useMutation, useQueryClient } from "@tanstack/react-query";
import { api, isApiError } from "../lib/api";
import { useCurrentUser, useLeaveToLogin, useSignOut } from "../lib/auth";
import { roleLabel } from "../lib/roles";
import type { Page, SessionOut } from "../lib/types";
import {
  Badge,
  Button,
  Card,
  CardContent,
  CardHeader,
  ConfirmDialog,
  DateTime,
  EmptyState,
  ErrorState,
  Field,
  InlineError,
  Input,
  LoadingState,
  PageHeader,
  Table,
  TBody,
  TD,
  TH,
  THead,
  TR,
  useToast,
} from "../components/ui";

const SESSIONS_KEY = ["sessions"] as const;
const MIN_PASSWORD = 8;

function AccountCard() {
  const me = useCurrentUser();
  return (
    <Card>
      <CardHeader title="Account" />
      <CardContent>
        <dl className="grid grid-cols-1 gap-3 text-sm sm:grid-cols-[10rem_1fr]">
          <dt className="text-muted">Name</dt>
          <dd>{me.display_name || "—"}</dd>
          <dt className="text-muted">Email</dt>
          <dd className="break-all">{me.email}</dd>
          <dt className="text-muted">Role</dt>
          <dd>{roleLabel(me.role)}</dd>
        </dl>
      </CardContent>
    </Card>
  );
}

function ChangePasswordCard() {
  const me = useCurrentUser();
  const queryClient = useQueryClient();
  const toast = useToast();
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [confirm, setConfirm] = useState("");
  const [mismatch, setMismatch] = useState(false);
  const [checked, setChecked] = useState(false);

  const change = useMutation({
    mutationFn: () => api.post<void>("me/password", { current_password: current, new_password: next }),
    onSuccess: () => {
      setCurrent("");
      setNext("");
      setConfirm("");
      setChecked(false);
      void queryClient.invalidateQueries({ queryKey: SESSIONS_KEY });
      toast({ title: "Password changed", description: "Your other sessions were signed out.", tone: "success" });
    },
  });

  const apiError = change.error;
  const currentWrong = isApiError(apiError) && /current password/i.test(apiError.message);
  const newInvalid = isApiError(apiError) && !currentWrong && apiError.status === 400;

  const submit = (event: FormEvent) => {
    event.preventDefault();
    setChecked(true);
    setMismatch(next !== confirm);
    if (!current || next.length < MIN_PASSWORD || next !== confirm) return;
    change.mutate();
  };

  return (
    <Card>
      <CardHeader title="Change password" description="Changing it signs out your other sessions." />
      <CardContent>
        <form onSubmit={submit} className="flex max-w-md flex-col gap-4" noValidate>
          {/* Tells password managers whose password this is (hidden: not a field to fill). */}
          <input type="email" name="username" autoComplete="username" value={me.email} readOnly hidden />
          <Field
            label="Current password"
            error={checked && !current ? "Enter your current password." : currentWrong ? apiError.message : undefined}
          >
            <Input type="password" autoComplete="current-password" value={current} onChange={(e) => setCurrent(e.target.value)} required />
          </Field>
          <Field
            label="New password"
            hint={`At least ${MIN_PASSWORD} characters.`}
            error={
              checked && next.length < MIN_PASSWORD
                ? `The new password needs at least ${MIN_PASSWORD} characters.`
                : newInvalid
                  ? apiError.message
                  : undefined
            }
          >
            <Input
              type="password"
              autoComplete="new-password"
              minLength={MIN_PASSWORD}
              value={next}
              onChange={(e) => setNext(e.target.value)}
              required
            />
          </Field>
          <Field label="Confirm new password" error={mismatch ? "The new passwords do not match." : undefined}>
            <Input type="password" autoComplete="new-password" value={confirm} onChange={(e) => setConfirm(e.target.value)} required />
          </Field>
          {change.isError && !currentWrong && !newInvalid ? <InlineError error={change.error} /> : null}
          <div>
            <Button type="submit" loading={change.isPending}>
              Change password
            </Button>
          </div>
        </form>
      </CardContent>
    </Card>
  );
}

function SessionsCard() {
  const queryClient = useQueryClient();
  const leave = useLeaveToLogin();
  const toast = useToast();
  const signOut = useSignOut();
  const [confirmAll, setConfirmAll] = useState(false);

  const sessions = useInfiniteQuery({
    queryKey: SESSIONS_KEY,
    queryFn: ({ pageParam, signal }) =>
      api.get<Page<SessionOut>>("auth/sessions", { query: { limit: 100, cursor: pageParam }, signal }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => (last.has_more && last.next_cursor ? last.next_cursor : undefined),
  });

  const end = useMutation({
    mutationFn: (session: SessionOut) => api.delete(`auth/sessions/${encodeURIComponent(session.id)}`),
    onSuccess: (_, session) => {
      if (session.current) return leave();
      void queryClient.invalidateQueries({ queryKey: SESSIONS_KEY });
      toast({ title: "Session ended", tone: "success" });
    },
    onError: (error) => toast({ title: "Could not end the session", description: error.message, tone: "error" }),
  });

  const everywhere = useMutation({
    mutationFn: () => api.delete("auth/sessions"),
    onSuccess: () => {
      setConfirmAll(false);
      return leave();
    },
  });

  const rows = sessions.data?.pages.flatMap((p) => p.data) ?? [];

  return (
    <Card>
      <CardHeader
        title="Active sessions"
        description="Browsers and clients signed in to your account."
        actions={
          <Button variant="danger" size="sm" onClick={() => setConfirmAll(true)}>
            Sign out everywhere
          </Button>
        }
      />
      <CardContent className="p-0">
        {sessions.isPending ? (
          <LoadingState label="Loading sessions" />
        ) : sessions.isError ? (
          <div className="p-4">
            <ErrorState error={sessions.error} title="Could not load your sessions" onRetry={() => void sessions.refetch()} />
          </div>
        ) : rows.length === 0 ? (
          <EmptyState title="No active sessions" />
        ) : (
          <>
            <Table caption="Active sessions">
              <THead>
                <TR>
                  <TH>Session</TH>
                  <TH>Signed in</TH>
                  <TH>Expires</TH>
                  <TH>
                    <span className="sr-only">Actions</span>
                  </TH>
                </TR>
              </THead>
              <TBody>
                {rows.map((s) => (
                  <TR key={s.id}>
                    <TD>
                      <div className="flex flex-wrap items-center gap-2">
                        <code className="text-xs">{s.key_hint}</code>
                        {s.current ? <Badge tone="primary">This session</Badge> : null}
                      </div>
                    </TD>
                    <TD>
                      <DateTime value={s.created_at} />
                    </TD>
                    <TD>
                      <DateTime value={s.expires_at} relative />
                    </TD>
                    <TD className="text-right">
                      {s.current ? (
                        <Button variant="secondary" size="sm" onClick={signOut}>
                          Sign out
                        </Button>
                      ) : (
                        <Button
                          variant="secondary"
                          size="sm"
                          aria-label={`End session ${s.key_hint}`}
                          loading={end.isPending && end.variables?.id === s.id}
                          onClick={() => end.mutate(s)}
                        >
                          End
                        </Button>
                      )}
                    </TD>
                  </TR>
                ))}
              </TBody>
            </Table>
            {sessions.hasNextPage ? (
              <div className="p-4">
                <Button variant="secondary" size="sm" loading={sessions.isFetchingNextPage} onClick={() => void sessions.fetchNextPage()}>
                  Load more
                </Button>
              </div>
            ) : null}
          </>
        )}
      </CardContent>
      <ConfirmDialog
        open={confirmAll}
        onOpenChange={setConfirmAll}
        title="Sign out everywhere?"
        description="Every session of your account ends, this one included. API keys are not affected."
        confirmLabel="Sign out everywhere"
        destructive
        mutation={everywhere}
        onConfirm={() => everywhere.mutate()}
      />
    </Card>
  );
}

export default function ProfilePage() {
  return (
    <>
      <PageHeader title="Profile" description="Your account, password and sessions." />
      <div className="flex flex-col gap-6">
        <AccountCard />
        <ChangePasswordCard />
        <SessionsCard />
      </div>
    </>
  );
}
