import { useRef, useState, type FormEvent, type ReactNode } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, isApiError } from "../lib/api";
import { ME_KEY, useForgetSessionData } from "../lib/auth";
import { roleLabel } from "../lib/roles";
import type { SessionSignIn } from "../lib/types";
import { Button, buttonClass, Card, DateTime, ErrorState, Field, InlineError, Input, LoadingState, useDocumentTitle } from "../components/ui";
import type { InvitePeek, Redeemed } from "../features/org/types";

/** A token that cannot be an invite (not `vl_iv_…`): no need to ask the gateway. */
const INVITE_TOKEN = /^vl_iv_[A-Za-z0-9_-]{8,250}$/;
const MIN_PASSWORD = 8;

function Frame({ title, children }: { title: string; children: ReactNode }) {
  useDocumentTitle(title);
  return (
    <main className="flex min-h-screen items-center justify-center p-4">
      <Card className="flex w-full max-w-md flex-col gap-4 p-6">
        <h1 className="text-2xl font-semibold">{title}</h1>
        {children}
      </Card>
    </main>
  );
}

function SignInLink() {
  return (
    <Link to="/login" className={buttonClass("secondary", "md", "self-start")}>
      Go to sign in
    </Link>
  );
}

type UnusableReason = "invalid" | "expired" | "used" | "gone";

const UNUSABLE: Record<UnusableReason, { title: string; text: string }> = {
  invalid: {
    title: "Invalid invite link",
    text: "This invite link is not valid: it may be incomplete, or the invite was withdrawn or replaced by a newer one. Check that you copied the whole link, or ask your organization admin for a new invite.",
  },
  expired: {
    title: "Invite expired",
    text: "This invite has expired. Ask your organization admin for a new invite.",
  },
  used: {
    title: "Invite already used",
    text: "This invite has already been used. If the account is yours, sign in with it.",
  },
  gone: {
    title: "Invite no longer valid",
    text: "This invite can no longer be used. Ask your organization admin for a new invite.",
  },
};

/** Why the gateway refused a token (the 410's `reason`). */
function reasonOf(error: unknown): UnusableReason | null {
  if (!isApiError(error) || error.status !== 410) return null;
  const reason = error.details.reason;
  return reason === "invalid" || reason === "expired" || reason === "used" ? reason : "gone";
}

/** What an invite page says when the link cannot be used. */
function Unusable({ reason }: { reason: UnusableReason }) {
  const { title, text } = UNUSABLE[reason];
  return (
    <Frame title={title}>
      <p className="text-sm">{text}</p>
      {reason === "used" ? null : <p className="text-sm text-muted">If you already have an account, sign in instead.</p>}
      <SignInLink />
    </Frame>
  );
}

/**
 * The public `/invite/:token` page: what the invite offers (organization, email, role), then a display name
 * and a password create the account; the new user is then signed in. The token stays in the URL it came
 * in; it is sent to the gateway and nowhere else.
 */
export default function InvitePage() {
  const token = useParams().token ?? "";
  const wellFormed = INVITE_TOKEN.test(token);
  const peek = useQuery({
    queryKey: ["invite-peek"],
    queryFn: ({ signal }) => api.get<InvitePeek>("invites/peek", { query: { token }, signal, redirectOn401: false }),
    enabled: wellFormed,
    retry: false,
    gcTime: 0,
  });
  if (!wellFormed) return <Unusable reason="invalid" />;
  if (peek.isPending) return <LoadingState label="Loading your invite" className="min-h-screen" />;
  if (peek.isError) {
    const reason = reasonOf(peek.error);
    if (reason) return <Unusable reason={reason} />;
    return (
      <Frame title="Invite">
        <ErrorState error={peek.error} title="Could not load the invite" onRetry={() => void peek.refetch()} />
      </Frame>
    );
  }
  return <AcceptForm token={token} invite={peek.data} />;
}

function AcceptForm({ token, invite }: { token: string; invite: InvitePeek }) {
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const forget = useForgetSessionData();
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [errors, setErrors] = useState<{ password?: string; confirm?: string }>({});
  // Once the account exists, trying again only signs in (the token is used up).
  const redeemed = useRef(false);
  const accept = useMutation({
    mutationFn: async () => {
      if (!redeemed.current) {
        await api.post<Redeemed>("invites/redeem", { token, password, display_name: name.trim() }, { redirectOn401: false });
        redeemed.current = true;
      }
      return api.post<SessionSignIn>("auth/session", { email: invite.email, password }, { redirectOn401: false });
    },
    onSuccess: (session) => {
      forget();
      queryClient.setQueryData(ME_KEY, session.user);
      // GET /me also says which teams the user administers (the sign-in answer does not): read it again.
      void queryClient.invalidateQueries({ queryKey: ME_KEY });
      void navigate("/", { replace: true });
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const found = {
      password: password.length >= MIN_PASSWORD ? undefined : `At least ${MIN_PASSWORD} characters.`,
      confirm: confirm === password ? undefined : "The passwords do not match.",
    };
    setErrors(found);
    if (!found.password && !found.confirm) accept.mutate();
  };
  const gone = redeemed.current ? null : reasonOf(accept.error);
  if (gone) return <Unusable reason={gone} />;
  const passwordError = errors.password ?? (isApiError(accept.error) && accept.error.status === 400 ? accept.error.message : undefined);
  return (
    <Frame title="Join your organization">
      <dl className="grid grid-cols-[auto_1fr] gap-x-4 gap-y-1 text-sm" aria-label="Invite">
        <dt className="text-muted">Organization</dt>
        <dd className="font-medium">{invite.org_name}</dd>
        <dt className="text-muted">Email</dt>
        <dd className="break-all">{invite.email}</dd>
        <dt className="text-muted">Role</dt>
        <dd>{roleLabel(invite.role)}</dd>
        <dt className="text-muted">Valid until</dt>
        <dd>
          <DateTime value={invite.expires_at} />
        </dd>
      </dl>
      <form onSubmit={submit} noValidate className="flex flex-col gap-4">
        <Field label="Display name" hint="How others see you (optional).">
          <Input value={name} onChange={(e) => setName(e.target.value)} maxLength={256} autoComplete="name" />
        </Field>
        <Field label="Password" required hint={`At least ${MIN_PASSWORD} characters.`} error={passwordError}>
          <Input type="password" value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="new-password" />
        </Field>
        <Field label="Confirm password" required error={errors.confirm}>
          <Input type="password" value={confirm} onChange={(e) => setConfirm(e.target.value)} autoComplete="new-password" />
        </Field>
        {accept.isError && !(isApiError(accept.error) && accept.error.status === 400) ? <InlineError error={accept.error} /> : null}
        <Button type="submit" loading={accept.isPending}>
          Create account and sign in
        </Button>
      </form>
    </Frame>
  );
}
