/** The signed-in user: `useMe()` (query), `useCurrentUser()` (inside the auth guard), sign-out. */
import { createContext, useCallback, useContext, type ReactNode } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useNavigate } from "react-router";
import { api, isApiError } from "./api";
import { loginPath } from "./base";
import type { AuthProviders, Me } from "./types";

export const ME_KEY = ["me"] as const;

/**
 * GET /api/v1/me. `redirectOn401: false` here: the auth guard turns a 401 into a redirect that keeps the
 * router location, and the sign-in page uses this to notice an already signed-in user (asking again on
 * every visit, `refetchOnMount: "always"`, since a cached answer may be of a session that just ended).
 */
export function useMe(options: { refetchOnMount?: "always"; enabled?: boolean } = {}) {
  return useQuery({
    queryKey: ME_KEY,
    queryFn: ({ signal }) => api.get<Me>("me", { signal, redirectOn401: false }),
    staleTime: 60_000,
    retry: (count, error) => !(isApiError(error) && error.status < 500) && count < 2,
    ...options,
  });
}

/** GET /api/v1/auth/providers: which sign-ins the gateway offers (public, kept across sessions). */
export const PROVIDERS_KEY = ["auth-providers"] as const;

export function useAuthProviders() {
  return useQuery({
    queryKey: PROVIDERS_KEY,
    queryFn: ({ signal }) => api.get<AuthProviders>("auth/providers", { signal, redirectOn401: false }),
    staleTime: 60_000,
    retry: false,
  });
}

/** Queries that are not data of a session. */
const KEPT = new Set<unknown>([ME_KEY[0], PROVIDERS_KEY[0]]);

/**
 * Forget the cached data of the previous session: every query but `me` (which the sign-in page asks again)
 * and the public list of sign-in providers.
 * Called by the sign-in page once it is shown, when no page of the app is mounted any more: clearing while
 * a page still shows would make its queries fetch again with a session that is gone.
 */
export function useForgetSessionData(): () => void {
  const queryClient = useQueryClient();
  return useCallback(() => {
    void queryClient.cancelQueries({ predicate: (q) => !KEPT.has(q.queryKey[0]) });
    queryClient.removeQueries({ predicate: (q) => !KEPT.has(q.queryKey[0]) });
  }, [queryClient]);
}

const MeContext = createContext<Me | null>(null);

export function MeProvider({ me, children }: { me: Me; children: ReactNode }) {
  return <MeContext.Provider value={me}>{children}</MeContext.Provider>;
}

/** The signed-in user; only inside routes behind the auth guard (throws elsewhere). */
export function useCurrentUser(): Me {
  const me = useContext(MeContext);
  if (!me) throw new Error("useCurrentUser() outside the auth guard");
  return me;
}

/**
 * Go to the sign-in page (with `next` when given). The sign-in page forgets the old session's cached data
 * once it is shown (see useForgetSessionData).
 */
export function useLeaveToLogin(): (next?: string) => Promise<void> {
  const navigate = useNavigate();
  return useCallback(
    async (next?: string) => {
      await navigate(next ? loginPath(next) : "/login", { replace: true });
    },
    [navigate],
  );
}

/** What the sign-in page is asked to do first when the app sends the user there to sign out. */
export interface SignOutState {
  signOut: true;
}

export function isSignOutState(state: unknown): state is SignOutState {
  return !!state && typeof state === "object" && (state as { signOut?: unknown }).signOut === true;
}

/**
 * Sign out: go to the sign-in page first, which then sends POST /api/v1/auth/logout (revokes the session on
 * the server, clears the cookies). In that order no page of the app is mounted any more when the session
 * ends, so none of its queries (intervals, refetches) can ask again with the ended session.
 */
export function useSignOut(): () => void {
  const navigate = useNavigate();
  return useCallback(() => {
    void navigate("/login", { replace: true, state: { signOut: true } satisfies SignOutState });
  }, [navigate]);
}

/** POST /api/v1/auth/logout; a 401 (the session had already ended) counts as done. */
export async function endSession(): Promise<void> {
  try {
    await api.post<void>("auth/logout", undefined, { redirectOn401: false });
  } catch (error) {
    if (!(isApiError(error) && error.status === 401)) throw error;
  }
}
