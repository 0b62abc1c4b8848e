import { useEffect, useRef, useState } from "react";
import { NavLink, Outlet, useLocation } from "react-router";
import * as DropdownMenu from "@radix-ui/react-dropdown-menu";
import { useCurrentUser, useSignOut } from "../../lib/auth";
import { roleLabel } from "../../lib/roles";
import { useTheme, type ThemeChoice } from "../../lib/theme";
import { Button, cn } from "../ui";
import { navItemsFor } from "./nav";
import { useRootClick, useRootHref } from "../../app/RootSlash";
import { useOrgId } from "../../lib/viewedOrg";
import { OrgBar } from "./OrgSwitcher";

const MENU = "z-50 min-w-48 rounded-md border border-border bg-surface p-1 text-fg shadow-lg";
const MENU_ITEM =
  "flex cursor-pointer select-none items-center gap-2 rounded px-2 py-1.5 text-sm outline-none data-[highlighted]:bg-surface-2";

const THEMES: { value: ThemeChoice; label: string }[] = [
  { value: "system", label: "System" },
  { value: "light", label: "Light" },
  { value: "dark", label: "Dark" },
];

function ThemeMenu() {
  const { theme, setTheme } = useTheme();
  return (
    <DropdownMenu.Root modal={false}>
      <DropdownMenu.Trigger asChild>
        <Button variant="ghost" size="sm" aria-label={`Theme: ${theme}`}>
          <span aria-hidden="true">{theme === "dark" ? "☾" : theme === "light" ? "☀" : "◐"}</span>
          <span className="hidden sm:inline">Theme</span>
        </Button>
      </DropdownMenu.Trigger>
      <DropdownMenu.Portal>
        <DropdownMenu.Content align="end" sideOffset={4} className={MENU}>
          <DropdownMenu.Label className="px-2 py-1 text-xs text-muted">Theme</DropdownMenu.Label>
          <DropdownMenu.RadioGroup value={theme} onValueChange={(v) => setTheme(v as ThemeChoice)}>
            {THEMES.map((t) => (
              <DropdownMenu.RadioItem key={t.value} value={t.value} className={MENU_ITEM}>
                <span aria-hidden="true" className="w-3">
                  <DropdownMenu.ItemIndicator>✓</DropdownMenu.ItemIndicator>
                </span>
                {t.label}
              </DropdownMenu.RadioItem>
            ))}
          </DropdownMenu.RadioGroup>
        </DropdownMenu.Content>
      </DropdownMenu.Portal>
    </DropdownMenu.Root>
  );
}

function AccountMenu() {
  const me = useCurrentUser();
  const signOut = useSignOut();
  return (
    <DropdownMenu.Root modal={false}>
      <DropdownMenu.Trigger asChild>
        <Button variant="secondary" size="sm">
          Account
        </Button>
      </DropdownMenu.Trigger>
      <DropdownMenu.Portal>
        <DropdownMenu.Content align="end" sideOffset={4} className={MENU}>
          <div className="px-2 py-1.5">
            <p className="truncate text-sm font-medium">{me.display_name || me.email}</p>
            <p className="truncate text-xs text-muted">{me.email}</p>
            <p className="text-xs text-muted">{roleLabel(me.role)}</p>
          </div>
          <DropdownMenu.Separator className="my-1 h-px bg-border" />
          <DropdownMenu.Item asChild className={MENU_ITEM}>
            <NavLink to="/profile">Profile</NavLink>
          </DropdownMenu.Item>
          <DropdownMenu.Item className={MENU_ITEM} onSelect={signOut}>
            Sign out
          </DropdownMenu.Item>
        </DropdownMenu.Content>
      </DropdownMenu.Portal>
    </DropdownMenu.Root>
  );
}

const linkClass = (isActive: boolean) =>
  cn("block rounded-md px-3 py-2 text-sm font-medium", isActive ? "bg-primary text-primary-fg" : "text-fg hover:bg-surface-2");

function Navigation({ onNavigate }: { onNavigate?: () => void }) {
  const me = useCurrentUser();
  const location = useLocation();
  const rootHref = useRootHref();
  const rootClick = useRootClick(onNavigate);
  return (
    <ul className="flex flex-col gap-1">
      {navItemsFor(me).map((item) => (
        <li key={item.to}>
          {item.to === "/" ? (
            // The root route's href keeps its trailing slash under a sub-path (see RootSlash).
            <a
              href={rootHref}
              onClick={rootClick}
              aria-current={location.pathname === "/" ? "page" : undefined}
              className={linkClass(location.pathname === "/")}
            >
              {item.label}
            </a>
          ) : (
            <NavLink to={item.to} end={item.end} onClick={onNavigate} className={({ isActive }) => linkClass(isActive)}>
              {item.label}
            </NavLink>
          )}
        </li>
      ))}
    </ul>
  );
}

/**
 * Header (product name, theme, Account menu), a system admin's organisation bar, and navigation (sidebar; a
 * toggled panel on small screens). The page is keyed by the organisation being viewed: switching remounts it,
 * so nothing of the previous organisation's page (a form, a filter, a dialog) carries over.
 */
export function AppShell() {
  const orgId = useOrgId();
  const [menuOpen, setMenuOpen] = useState(false);
  const location = useLocation();
  const rootHref = useRootHref();
  const rootClick = useRootClick();
  const main = useRef<HTMLElement>(null);
  const section = `/${location.pathname.split("/")[1] ?? ""}`;
  const shownSection = useRef(section);
  useEffect(() => setMenuOpen(false), [location.pathname]);
  useEffect(() => {
    // After moving to another page (not within one, e.g. its tabs), start reading and tabbing from its
    // content rather than from the link that was clicked.
    if (section === shownSection.current) return;
    shownSection.current = section;
    main.current?.focus({ preventScroll: true });
  }, [section]);
  return (
    <div className="flex min-h-screen flex-col">
      <a
        href="#main"
        onClick={(event) => {
          // With the gateway's <base href>, "#main" would resolve against the mount root and leave the page.
          event.preventDefault();
          main.current?.focus();
        }}
        className="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:z-50 focus:rounded focus:bg-surface focus:px-3 focus:py-2"
      >
        Skip to content
      </a>
      <header className="sticky top-0 z-30 flex h-14 items-center gap-2 border-b border-border bg-surface px-3 md:px-4">
        <Button
          variant="ghost"
          size="icon"
          className="md:hidden"
          aria-label="Menu"
          aria-expanded={menuOpen}
          aria-controls="app-nav"
          onClick={() => setMenuOpen((open) => !open)}
        >
          <span aria-hidden="true">☰</span>
        </Button>
        <a href={rootHref} onClick={rootClick} className="flex items-center gap-2 text-lg font-semibold">
          <span aria-hidden="true" className="inline-block h-3 w-3 rounded-full border-2 border-primary" />
          VoidLLM
        </a>
        <div className="ml-auto flex items-center gap-2">
          <ThemeMenu />
          <AccountMenu />
        </div>
      </header>
      <OrgBar />
      <div className="flex flex-1">
        <nav
          id="app-nav"
          aria-label="Main"
          className={cn(
            "w-full border-r border-border bg-surface p-3 md:block md:w-56 md:shrink-0",
            menuOpen
              ? "fixed inset-x-0 top-14 z-20 block max-h-[calc(100vh-3.5rem)] overflow-y-auto border-b shadow-lg md:static md:max-h-none md:shadow-none"
              : "hidden",
          )}
        >
          <Navigation onNavigate={() => setMenuOpen(false)} />
        </nav>
        <main id="main" ref={main} tabIndex={-1} className="min-w-0 flex-1 p-4 outline-none md:p-6">
          <Outlet key={orgId} />
        </main>
      </div>
    </div>
  );
}
