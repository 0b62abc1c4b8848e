import { Button, PageHeader } from "../components/ui";
import { useRootClick, useRootHref } from "../app/RootSlash";

export default function NotFoundPage() {
  const rootHref = useRootHref();
  const rootClick = useRootClick();
  return (
    <>
      <PageHeader title="Page not found" description="There is no page at this address." />
      <Button asChild variant="secondary">
        <a href={rootHref} onClick={rootClick}>
          Go to the dashboard
        </a>
      </Button>
    </>
  );
}
