/**
 * The organisation being viewed: the one every org-scoped page (keys, teams, service accounts, MCP servers,
 * usage, cost reports, the audit log's organisation scope, SSO, the Organization page) works on.
 *
 * For everyone but a system admin it is the session's own organisation (`me.org_id`), always. A system admin
 * may switch to any organisation (the switcher in the header, "View" on /orgs, or a link naming one).
 *
 * Where it is kept, and why: in memory (this provider's state, under the auth guard) and in the URL, never in
 * localStorage or sessionStorage.
 * - The URL names it whenever it is not the admin's own: `?org=<id>` on every page, or the path itself under
 *   `/orgs/:orgId/...`. So a bookmark, a reload or a link sent to a colleague opens the same organisation, and
 *   a URL without it always means the admin's own one: there is no hidden state that could make an
 *   unqualified link (or a new tab) act on another organisation.
 * - The memory keeps the choice while moving around the app: the navigation's links do not carry `?org=`, so
 *   following one keeps the organisation and the provider writes `?org=` back into the URL (replacing the
 *   history entry). A URL that names an organisation (a link, a bookmark, the back button) wins over the
 *   memory and switches to it.
 * - A stored choice would outlive the tab and the session: a system admin opening the UI next week would act
 *   on an organisation they no longer remember choosing. Signing out ends the choice with the shell.
 *
 * Switching changes the id that every query key and request path is built from (keys are all under the
 * organisation's id), and the shell remounts the page under a key of that id, so no state of the previous
 * organisation (a form, a filter, an open dialog) survives a switch.
 */
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { useLocation, useNavigate, type Location } from "react-router";
import { useCurrentUser } from "./auth";
import { isSystemAdmin } from "./roles";

/** The query parameter naming the organisation being viewed (absent: the session's own). */
export const ORG_PARAM = "org";

const ORG_PATH = /^\/orgs\/([^/]+)(\/.*)?$/;

export interface ViewedOrg {
  /** The id every org-scoped request and query key uses. */
  orgId: string;
  /** True when it is the session's own organisation. */
  isOwn: boolean;
  /**
   * Switch to `orgId` (`null` or the own id: back to the session's own) and go to `to`, by default the current
   * section's first page (see switchTarget).
   */
  switchTo: (orgId: string | null, to?: string) => void;
}

const ViewedOrgContext = createContext<ViewedOrg | null>(null);

/** The organisation of a path under `/orgs/:orgId/...` (not the list `/orgs` itself). */
function orgInPath(pathname: string): string | null {
  const match = ORG_PATH.exec(pathname);
  if (!match?.[1]) return null;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return match[1];
  }
}

/** The organisation a location names: `/orgs/:orgId/...`, else `?org=`; null when it names none. */
export function orgNamedBy(location: Pick<Location, "pathname" | "search">): string | null {
  const inPath = orgInPath(location.pathname);
  if (inPath) return inPath;
  return new URLSearchParams(location.search).get(ORG_PARAM) || null;
}

/** `search` with `?org=` set to `orgId`, or without it for the own organisation (`null`). */
export function withOrgParam(search: string, orgId: string | null): string {
  const params = new URLSearchParams(search);
  if (orgId) params.set(ORG_PARAM, orgId);
  else params.delete(ORG_PARAM);
  const text = params.toString();
  return text ? `?${text}` : "";
}

/**
 * Where switching to `orgId` leads from `pathname`: the same tab of the other organisation under
 * `/orgs/:orgId/...`, else the first page of the current section (ids in deeper paths and in the query, a
 * team or a key, belong to the organisation left). The URL always names the organisation, the own one too
 * (the provider then drops a redundant `?org=`): the switch is the URL's, so no render can pair the new
 * organisation with the old URL or the other way round.
 */
export function switchTarget(pathname: string, orgId: string): string {
  const match = ORG_PATH.exec(pathname);
  if (match) {
    const tab = (match[2] ?? "").split("/")[1] ?? "";
    return `/orgs/${encodeURIComponent(orgId)}/${tab}`;
  }
  const section = pathname.split("/")[1] ?? "";
  return `/${section}${withOrgParam("", orgId)}`;
}

/** `to` (a path with an optional query) naming `orgId`: unchanged under `/orgs/:orgId/...`, else with `?org=`. */
export function namingOrg(to: string, orgId: string): string {
  const [path = "", query = ""] = to.split("?", 2);
  return orgInPath(path) !== null ? to : `${path}${withOrgParam(query, orgId)}`;
}

/** Holds the organisation being viewed (inside the auth guard and the router). */
export function ViewedOrgProvider({ children }: { children: ReactNode }) {
  const me = useCurrentUser();
  const location = useLocation();
  const navigate = useNavigate();
  const system = isSystemAdmin(me);
  const named = system ? orgNamedBy(location) : null;
  const [chosen, setChosen] = useState<string | null>(named);
  // A URL naming an organisation switches to it (adjusting state while rendering, so no render shows the
  // organisation left together with the new URL).
  if (named !== null && named !== chosen) setChosen(named);
  const current = named ?? chosen;
  const orgId = system && current ? current : me.org_id;
  const isOwn = orgId === me.org_id;

  // Keep the URL naming the organisation: add `?org=` after a link without it, drop a redundant own one.
  const { pathname, search, hash, state } = location;
  const inPath = orgInPath(pathname) !== null;
  const param = new URLSearchParams(search).get(ORG_PARAM);
  const wanted = !system || inPath ? param : isOwn ? null : orgId;
  useEffect(() => {
    if (param === wanted) return;
    void navigate({ pathname, search: withOrgParam(search, wanted), hash }, { replace: true, state });
  }, [param, wanted, pathname, search, hash, state, navigate]);

  const switchTo = useCallback(
    (next: string | null, to?: string) => {
      const target = next ?? me.org_id;
      void navigate(to ? namingOrg(to, target) : switchTarget(pathname, target));
    },
    [me.org_id, navigate, pathname],
  );
  const value = useMemo(() => ({ orgId, isOwn, switchTo }), [orgId, isOwn, switchTo]);
  return <ViewedOrgContext.Provider value={value}>{children}</ViewedOrgContext.Provider>;
}

/**
 * The organisation being viewed. Outside the provider (a page rendered alone in a test) it is the session's
 * own, which is what the provider gives everyone but a system admin.
 */
export function useViewedOrg(): ViewedOrg {
  const me = useCurrentUser();
  const viewed = useContext(ViewedOrgContext);
  return viewed ?? { orgId: me.org_id, isOwn: true, switchTo: () => undefined };
}

/** The id of the organisation being viewed: what org-scoped paths and query keys are built from. */
export function useOrgId(): string {
  return useViewedOrg().orgId;
}
