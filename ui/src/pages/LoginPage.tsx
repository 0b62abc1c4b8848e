import { PageHeader } from "../components/ui";

export default function LoginPage() {
  return <PageHeader title="Login" />;
}
