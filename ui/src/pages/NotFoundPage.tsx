import { Link } from "react-router";
import { Button, PageHeader } from "../components/ui";

export default function NotFoundPage() {
  return (
    <>
      <PageHeader title="Page not found" description="There is no page at this address." />
      <Button asChild variant="secondary">
        <Link to="/">Go to the dashboard</Link>
      </Button>
    </>
  );
}
