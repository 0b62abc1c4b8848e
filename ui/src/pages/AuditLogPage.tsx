import { PageHeader } from "../components/ui";
import { AuditLogView } from "../features/audit/AuditLogView";
import { useCurrentUser } from "../lib/auth";
import { hasRole } from "../lib/roles";

/** `/audit-log` (organisation admins: their organisation's entries; system admins: every organisation's). */
export default function AuditLogPage() {
  const me = useCurrentUser();
  return (
    <>
      <PageHeader
        title="Audit Log"
        description={
          hasRole(me, "system_admin")
            ? "Changes made through the management API in every organization."
            : "Changes made through the management API in your organization."
        }
      />
      <AuditLogView />
    </>
  );
}
