import { useEffect, useRef, useState, type FormEvent } from "react";
import { Navigate, useLocation, useNavigate, useSearchParams } from "react-router";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api, isApiError, type OrgChoice } from "../lib/api";
import { ME_KEY, endSession, isSignOutState, useAuthProviders, useForgetSessionData, useMe } from "../lib/auth";
import { safeNext } from "../lib/base";
import { formatTime, formatWait } from "../lib/format";
import type { SessionSignIn } from "../lib/types";
import { ssoErrorMessage, ssoLoginHref } from "../features/sso/signin";
import { Button, Card, Field, Input, LoadingState, NativeSelect, Spinner, useDocumentTitle, useToast } from "../components/ui";

interface SignInBody {
  email: string;
  password: string;
  org_id?: string;
}

/** A password sign-in refused because the user's organisation has turned local sign-in off. */
function isSsoRequired(error: unknown): boolean {
  return isApiError(error) && error.status === 403 && error.code === "sso_required";
}

/** What to tell the user about a failed sign-in. */
function describe(error: unknown): { message: string; requestId: string | null } {
  if (!isApiError(error)) {
    return { message: "The gateway could not be reached. Check your connection and try again.", requestId: null };
  }
  if (error.status === 429) {
    const wait = error.retryAfter;
    const when = wait ? ` Try again in ${formatWait(wait)} (at ${formatTime(Date.now() + wait * 1000)}).` : " Try again later.";
    return { message: `Too many sign-in attempts.${when}`, requestId: error.requestId };
  }
  if (error.status === 401) return { message: "Invalid email or password.", requestId: error.requestId };
  if (isSsoRequired(error)) {
    return { message: "This organization signs in with SSO. Use Sign in with SSO below.", requestId: error.requestId };
  }
  return { message: error.message, requestId: error.requestId };
}

/**
 * Sign-in: POST /api/v1/auth/session sets the HttpOnly session cookie and the CSRF cookie; nothing of it
 * is kept by the page. A user of several organisations chooses one (409 lists them) and signs in again.
 * When the gateway has an OpenID Connect provider (GET /auth/providers), "Sign in with SSO" leaves for
 * /api/v1/auth/oidc/login, which comes back signed in to `/`, or here with `?sso_error=<code>`.
 */
export default function LoginPage() {
  const [params, setParams] = useSearchParams();
  const next = safeNext(params.get("next"));
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const location = useLocation();
  const toast = useToast();
  const forget = useForgetSessionData();
  // Sent here to sign out: end the session now that no page of the app is mounted, then ask /me.
  const [signingOut, setSigningOut] = useState(() => isSignOutState(location.state));
  const started = useRef(false);
  useEffect(() => {
    if (!signingOut) {
      forget();
      return;
    }
    if (started.current) return;
    started.current = true;
    endSession()
      .catch((error: unknown) =>
        toast({ title: "Sign out failed", description: error instanceof Error ? error.message : undefined, tone: "error" }),
      )
      .finally(() => {
        // The cached answer of /me is of the ended session: drop it, so /me is asked afresh.
        queryClient.removeQueries({ queryKey: ME_KEY });
        void navigate({ pathname: "/login", search: location.search }, { replace: true, state: null });
        setSigningOut(false);
      });
  }, [signingOut, forget, toast, navigate, location.search, queryClient]);
  const me = useMe({ refetchOnMount: "always", enabled: !signingOut });
  const providers = useAuthProviders();
  // A failed SSO sign-in comes back with ?sso_error=<code>: keep its message, drop the code from the URL.
  const [ssoError] = useState(() => params.get("sso_error"));
  useEffect(() => {
    if (!params.has("sso_error")) return;
    setParams(
      (current) => {
        const next = new URLSearchParams(current);
        next.delete("sso_error");
        return next;
      },
      { replace: true },
    );
  }, [params, setParams]);
  useDocumentTitle("Sign in");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [orgs, setOrgs] = useState<OrgChoice[]>([]);
  const [orgId, setOrgId] = useState("");
  const [missing, setMissing] = useState(false);

  const signIn = useMutation({
    mutationFn: (body: SignInBody) => api.post<SessionSignIn>("auth/session", body, { redirectOn401: false }),
    onSuccess: (session) => {
      forget();
      queryClient.setQueryData(ME_KEY, session.user);
      // GET /me also says which teams the user administers (the sign-in answer does not): read it again.
      void queryClient.invalidateQueries({ queryKey: ME_KEY });
      navigate(next, { replace: true });
    },
    onError: (error) => {
      if (isApiError(error) && error.status === 409 && error.organizations.length > 0) {
        setOrgs(error.organizations);
        setOrgId((current) => current || error.organizations[0]!.id);
      }
    },
  });

  // Signed in already (confirmed by this visit's own request, not by a cached answer): go on.
  if (!signingOut && me.isSuccess && !me.isFetching && !signIn.isPending && !signIn.isSuccess) return <Navigate to={next} replace />;

  const choosing = orgs.length > 0;
  const error = signIn.isError && !(isApiError(signIn.error) && signIn.error.status === 409 && choosing) ? describe(signIn.error) : null;
  const ssoRequired = signIn.isError && isSsoRequired(signIn.error);
  const shownError = error ?? (ssoError && !signIn.isPending ? { message: ssoErrorMessage(ssoError), requestId: null } : null);
  const offerSso = providers.data?.oidc === true || ssoRequired;
  const chosenSlug = choosing ? orgs.find((o) => o.id === orgId)?.slug : undefined;

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!email.trim() || !password) {
      setMissing(true);
      return;
    }
    setMissing(false);
    signIn.mutate({ email: email.trim(), password, ...(choosing && orgId ? { org_id: orgId } : {}) });
  };

  return (
    <main className="flex min-h-screen items-center justify-center p-4">
      <Card className="w-full max-w-sm p-6">
        <div className="mb-6 flex items-center gap-2">
          <span aria-hidden="true" className="inline-block h-3 w-3 rounded-full border-2 border-primary" />
          <span className="text-lg font-semibold">VoidLLM</span>
        </div>
        <h1 className="mb-4 text-2xl font-semibold">Sign in</h1>
        {signingOut ? <LoadingState label="Signing out" /> : null}
        {params.get("next") && !signIn.isError ? (
          <p className="mb-4 text-sm text-muted">Sign in to continue where you were.</p>
        ) : null}
        {me.isPending ? (
          <div className="sr-only">
            <Spinner label="Checking your session" />
          </div>
        ) : null}
        <form onSubmit={submit} className="flex flex-col gap-4" noValidate hidden={signingOut}>
          <Field label="Email" error={missing && !email.trim() ? "Enter your email." : undefined}>
            <Input
              type="email"
              name="email"
              autoComplete="username"
              required
              value={email}
              onChange={(e) => {
                setEmail(e.target.value);
                setOrgs([]);
                setOrgId("");
              }}
            />
          </Field>
          <Field label="Password" error={missing && !password ? "Enter your password." : undefined}>
            <Input
              type="password"
              name="password"
              autoComplete="current-password"
              required
              value={password}
              onChange={(e) => setPassword(e.target.value)}
            />
          </Field>
          {choosing ? (
            <Field label="Organization" hint="Your account belongs to several organizations: choose one for this session.">
              <NativeSelect
                value={orgId}
                onChange={(e) => setOrgId(e.target.value)}
                options={orgs.map((o) => ({ value: o.id, label: o.name || o.slug }))}
              />
            </Field>
          ) : null}
          {shownError ? (
            <div role="alert" className="rounded-md border border-danger/40 px-3 py-2 text-sm text-danger">
              {shownError.message}
              {shownError.requestId ? <span className="block text-xs text-muted">Request ID: {shownError.requestId}</span> : null}
            </div>
          ) : null}
          <Button type="submit" variant={ssoRequired ? "secondary" : "primary"} loading={signIn.isPending}>
            Sign in
          </Button>
        </form>
        {offerSso && !signingOut ? (
          <div className="mt-4 flex flex-col gap-4">
            <div className="flex items-center gap-3 text-xs text-muted" aria-hidden="true">
              <span className="h-px flex-1 bg-border" />
              or
              <span className="h-px flex-1 bg-border" />
            </div>
            <Button asChild variant={ssoRequired ? "primary" : "secondary"}>
              <a href={ssoLoginHref(email, chosenSlug)}>Sign in with SSO</a>
            </Button>
          </div>
        ) : null}
      </Card>
    </main>
  );
}
