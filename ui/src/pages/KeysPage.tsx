import { PageHeader } from "../components/ui";

/** Temporary scaffolding: replaced by the API Keys page helper. */
export default function KeysPage() {
  return <PageHeader title="API Keys" />;
}
