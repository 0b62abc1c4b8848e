import { PageHeader } from "../components/ui";
import { CostReportView } from "../features/costs/CostReportView";

/** `/cost-reports` (organisation admins and up): the estimated cost of the organisation's usage. */
export default function CostReportsPage() {
  return (
    <>
      <PageHeader title="Cost Reports" description="Estimated cost of your organization's requests, from the models' pricing." />
      <CostReportView />
    </>
  );
}
