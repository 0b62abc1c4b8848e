/**
 * Where the app is mounted. The gateway serves index.html with a `<base href>` pointing at the mount
 * root (`./` at the top, one `../` per directory level of a deep route), so `document.baseURI` is the
 * root: `/` directly, `/voidllm/` behind a proxy that strips that prefix. Everything else (router
 * basename, API URLs) derives from it; never hard-code `/` or `/api`.
 */

/** The router basename: the mount root's path without its trailing slash (`""` at the top). */
export function routerBasename(): string {
  return new URL(".", document.baseURI).pathname.replace(/\/+$/, "");
}

/** An absolute URL for a path relative to the mount root, e.g. `appUrl("api/v1/me")`. */
export function appUrl(relative: string): URL {
  return new URL(relative.replace(/^\/+/, ""), new URL(".", document.baseURI));
}

/**
 * The browser's current location inside the app (path below the basename, plus query), e.g. `/keys?q=a`.
 * Used as the `next` of a sign-in redirect when no router location is at hand.
 */
export function currentAppPath(): string {
  const base = routerBasename();
  let path = window.location.pathname;
  if (base && (path === base || path.startsWith(`${base}/`))) path = path.slice(base.length);
  return `${path || "/"}${window.location.search}`;
}

/**
 * A `next` value that is safe to navigate to after sign-in: an app-internal path (starts with one `/`),
 * never another origin (`//evil`, `https://...`), never the sign-in page itself.
 */
export function safeNext(next: string | null | undefined): string {
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.startsWith("/\\")) return "/";
  if (next === "/login" || next.startsWith("/login?") || next.startsWith("/login/")) return "/";
  return next;
}

/** The sign-in route (inside the router) that comes back to `next` afterwards. */
export function loginPath(next: string): string {
  const target = safeNext(next);
  return target === "/" ? "/login" : `/login?next=${encodeURIComponent(target)}`;
}
