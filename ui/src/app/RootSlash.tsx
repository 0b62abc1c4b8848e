import { useEffect, type MouseEvent } from "react";
import { useHref, useLocation, useNavigate } from "react-router";

/**
 * Under a sub-path the router writes the root route as `/voidllm` (no slash). A reload there asks the proxy
 * for `/voidllm`, which only some proxies redirect to `/voidllm/`. After every navigation to the root, put
 * the slash back into the address bar (same history entry and state, so the router does not notice).
 */
export function RootSlash() {
  const location = useLocation();
  useEffect(() => {
    if (location.pathname !== "/") return;
    const { pathname, search, hash } = window.location;
    if (pathname.endsWith("/")) return;
    window.history.replaceState(window.history.state, "", `${pathname}/${search}${hash}`);
  }, [location]);
  return null;
}

/** The href of the root route with its trailing slash (`/voidllm/`, or `/` at the top). */
export function useRootHref(): string {
  const href = useHref("/");
  return href.endsWith("/") ? href : `${href}/`;
}

/**
 * A click handler for an `<a href={useRootHref()}>`: a plain left click navigates inside the app; a click
 * with a modifier (new tab, new window) is left to the browser, which then gets the slashed URL.
 */
export function useRootClick(onNavigate?: () => void): (event: MouseEvent<HTMLAnchorElement>) => void {
  const navigate = useNavigate();
  return (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.altKey || event.ctrlKey || event.shiftKey) return;
    event.preventDefault();
    onNavigate?.();
    void navigate("/");
  };
}
