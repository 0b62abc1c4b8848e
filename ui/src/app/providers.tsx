import { useEffect, useRef, type ReactNode } from "react";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { useLocation, useNavigate } from "react-router";
import { isApiError, setUnauthorizedHandler } from "../lib/api";
import { loginPath } from "../lib/base";
import { ToastProvider, TooltipProvider } from "../components/ui";

/** The app's QueryClient defaults: no retry on 4xx, no refetch on window focus storms. */
export function createQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        retry: (count, error) => !(isApiError(error) && error.status < 500) && count < 2,
        refetchOnWindowFocus: false,
        staleTime: 15_000,
      },
      mutations: { retry: false },
    },
  });
}

/** Query client, tooltips and notifications (everything but the router). */
export function AppProviders({ client, children }: { client: QueryClient; children: ReactNode }) {
  return (
    <QueryClientProvider client={client}>
      <TooltipProvider delayDuration={300}>
        <ToastProvider>{children}</ToastProvider>
      </TooltipProvider>
    </QueryClientProvider>
  );
}

/**
 * Inside the router: a 401 from any API call (expired or revoked session) goes to
 * `/login?next=<current route>` (the sign-in page then forgets the cached data).
 */
export function UnauthorizedRedirect({ children }: { children: ReactNode }) {
  const navigate = useNavigate();
  const location = useLocation();
  const here = useRef("");
  here.current = `${location.pathname}${location.search}`;
  useEffect(
    () =>
      setUnauthorizedHandler(() => {
        if (here.current === "/login" || here.current.startsWith("/login?")) return;
        const next = here.current;
        here.current = "/login";
        void navigate(loginPath(next), { replace: true });
      }),
    [navigate, here],
  );
  return <>{children}</>;
}
