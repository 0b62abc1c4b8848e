/** The sign-in page's part of single sign-on: where the SSO button goes, what a failed SSO sign-in says. */
import { apiUrl } from "../../lib/api";

/**
 * Where "Sign in with SSO" goes (a full-page navigation, the gateway answers with a redirect to the
 * provider): `email` lets the gateway pick the organisation's provider, `org` (a slug) names one.
 */
export function ssoLoginHref(email: string, orgSlug?: string): string {
  return apiUrl("auth/oidc/login", { email: email.trim(), org: orgSlug }).href;
}

/** What a failed SSO sign-in (`/login?sso_error=<code>`) tells the user. */
export const SSO_ERROR_MESSAGES: Record<string, string> = {
  state_mismatch:
    "The sign-in could not be matched to this browser (it took too long, or was started in another tab). Try again.",
  provider_error:
    "The identity provider did not complete the sign-in. Try again; if it keeps failing, ask an administrator to check the SSO settings.",
  token_invalid:
    "The identity provider's answer could not be verified. Try again; if it keeps failing, ask an administrator.",
  email_unverified:
    "Your email address is not verified at the identity provider. Verify it there, then sign in again.",
  domain_not_allowed:
    "Your email domain is not allowed to sign in to this organization. Ask an administrator.",
  no_provider:
    "Single sign-on is not set up for your organization. Sign in with your password, or ask an administrator.",
  not_provisioned:
    "You have no account here yet, and accounts are not created at sign-in for your organization. Ask an administrator to invite you.",
  local_only:
    "This provider may not sign in your account (it signs in with its password, or belongs to another organization). Sign in with your password, or ask an administrator.",
  account_disabled: "Your account or its organization is deactivated. Ask an administrator.",
};

export function ssoErrorMessage(code: string): string {
  return (
    SSO_ERROR_MESSAGES[code] ??
    "Single sign-on did not succeed. Try again, or ask an administrator if it keeps failing."
  );
}

