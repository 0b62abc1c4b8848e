import { Link } from "react-router";
import { Card, CardContent, CardHeader, ErrorState, PageHeader, Spinner } from "../components/ui";
import { useGatewayHealth } from "../features/license/queries";

/**
 * What the Go original sold in paid editions, each a plain feature here (README names every one). `to`: the
 * page that manages it, when it has one.
 */
const FEATURES: { name: string; text: string; to?: string }[] = [
  { name: "Single sign-on", text: "OpenID Connect sign-in, globally or per organization.", to: "/sso" },
  { name: "Audit log", text: "Every change with its actor, action, resource and address.", to: "/audit-log" },
  { name: "Cost reports", text: "Estimated cost of the usage, from the models' pricing.", to: "/cost-reports" },
  { name: "Fallback chains", text: "A model moves on to its fallback model when every upstream failed." },
  { name: "OpenTelemetry tracing", text: "Spans of every request and upstream attempt, exported over OTLP." },
  { name: "Multiple organizations", text: "As many organizations, teams and users as you create.", to: "/orgs" },
  { name: "PII filtering", text: "The prompt guard flags, redacts or blocks personal data and credentials." },
];

/** The licence this project is published under, as `pyproject.toml` declares it. */
const PROJECT_LICENSE = "Apache-2.0";

function Version() {
  const health = useGatewayHealth();
  if (health.isPending) return <Spinner size="sm" label="Loading the version" />;
  if (health.isError) {
    return <ErrorState error={health.error} title="Could not load the version" onRetry={() => void health.refetch()} />;
  }
  return <span className="font-mono">{health.data.version}</span>;
}

/** `/license` (system admins): this gateway needs no licence key; every feature is included. */
export default function LicensePage() {
  return (
    <>
      <PageHeader title="License" description="What this gateway needs to unlock its features: nothing." />
      <div className="flex flex-col gap-6">
        <Card>
          <CardHeader title="No license key needed" />
          <CardContent className="flex flex-col gap-2 text-sm">
            <p>
              This gateway has no editions, no license key and no expiry date. Every feature is included, those
              the original Go VoidLLM reserved for its paid editions too; some, such as tracing, are switched on
              in the configuration file.
            </p>
          </CardContent>
        </Card>
        <Card>
          <CardHeader title="Included features" description="Each a plain feature of this gateway." />
          <CardContent>
            <ul className="flex flex-col gap-3" aria-label="Included features">
              {FEATURES.map((f) => (
                <li key={f.name} className="flex flex-col gap-0.5 text-sm">
                  <span className="font-medium">{f.to ? <Link to={f.to} className="text-primary underline underline-offset-2">{f.name}</Link> : f.name}</span>
                  <span className="text-muted">{f.text}</span>
                </li>
              ))}
            </ul>
          </CardContent>
        </Card>
        <Card>
          <CardHeader title="This gateway" />
          <CardContent>
            <dl className="grid grid-cols-1 gap-3 text-sm sm:grid-cols-[max-content_1fr] sm:gap-x-6">
              <dt className="text-muted">Version</dt>
              <dd>
                <Version />
              </dd>
              <dt className="text-muted">Project license</dt>
              <dd>
                <span className="font-mono">{PROJECT_LICENSE}</span> (open source)
              </dd>
            </dl>
          </CardContent>
        </Card>
      </div>
    </>
  );
}
