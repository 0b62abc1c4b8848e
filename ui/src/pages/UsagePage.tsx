import { PageHeader } from "../components/ui";

/** Temporary scaffolding: replaced by the Usage page helper. */
export default function UsagePage() {
  return <PageHeader title="Usage" />;
}
