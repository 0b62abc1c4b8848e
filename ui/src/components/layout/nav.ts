/** The navigation: link names are part of the product's contract (tests and docs use them). */
import { isOrgAdmin, isSystemAdmin } from "../../lib/roles";
import { canAdministerTeams } from "../../features/teams/access";
import type { Me } from "../../lib/types";

export interface NavItem {
  /** The link's text and accessible name. */
  label: string;
  /** Router path (inside the basename). */
  to: string;
  /** Who sees it; absent = every signed-in user. A member never sees a link to what they cannot do. */
  visible?: (me: Me) => boolean;
  /** Active also on sub-routes (`/usage/llm`), except for `/`. */
  end?: boolean;
}

export const NAV_ITEMS: NavItem[] = [
  { label: "Dashboard", to: "/", end: true },
  { label: "Playground", to: "/playground" },
  { label: "API Keys", to: "/keys" },
  { label: "Teams", to: "/teams", visible: canAdministerTeams },
  { label: "Service Accounts", to: "/service-accounts", visible: canAdministerTeams },
  { label: "MCP Servers", to: "/mcp-servers" },
  { label: "Models", to: "/models", visible: isSystemAdmin },
  { label: "Usage", to: "/usage" },
  { label: "Cost Reports", to: "/cost-reports", visible: isOrgAdmin },
  { label: "Audit Log", to: "/audit-log", visible: isOrgAdmin },
  { label: "SSO", to: "/sso", visible: isOrgAdmin },
  { label: "Organization", to: "/org", visible: isOrgAdmin },
  { label: "Organizations", to: "/orgs", visible: isSystemAdmin },
  { label: "Users", to: "/users", visible: isSystemAdmin },
  { label: "License", to: "/license", visible: isSystemAdmin },
  { label: "Profile", to: "/profile" },
];

export function navItemsFor(me: Me): NavItem[] {
  return NAV_ITEMS.filter((item) => !item.visible || item.visible(me));
}
