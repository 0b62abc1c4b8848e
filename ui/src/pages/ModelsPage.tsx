import { PageHeader } from "../components/ui";

/** Temporary scaffolding: replaced by the Models page helper. */
export default function ModelsPage() {
  return <PageHeader title="Models" />;
}
