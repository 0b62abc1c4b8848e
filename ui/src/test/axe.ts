/**
 * Accessibility check of a rendered component with axe-core (the same engine the e2e tests inject).
 * jsdom does no layout or painting, so colour contrast is left to the e2e run in Chromium.
 *
 *   await expectNoSeriousA11yViolations(document.body);
 */
import axe from "axe-core";
import { expect } from "vitest";

export async function expectNoSeriousA11yViolations(root: Element = document.body): Promise<void> {
  const result = await axe.run(root, {
    rules: { "color-contrast": { enabled: false } },
    resultTypes: ["violations"],
  });
  const serious = result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help}\n  ${v.nodes.map((n) => n.target.join(" ")).join("\n  ")}`);
  expect(serious, serious.join("\n")).toEqual([]);
}
