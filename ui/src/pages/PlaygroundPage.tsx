import { PageHeader } from "../components/ui";

/** Temporary scaffolding: replaced by the Playground page helper. */
export default function PlaygroundPage() {
  return <PageHeader title="Playground" />;
}
