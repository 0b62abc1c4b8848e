import { it, expect } from "vitest";
import { render } from "@testing-library/react";
import { expectNoSeriousA11yViolations } from "./axe";

it("fails on a nameless button", async () => {
  render(<button type="button" />);
  await expect(expectNoSeriousA11yViolations()).rejects.toThrow(/button-name/);
});
