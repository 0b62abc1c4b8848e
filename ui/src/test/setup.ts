/** Vitest setup: jest-dom matchers, DOM cleanup, and the browser APIs jsdom lacks that Radix uses. */
import "@testing-library/jest-dom/vitest";
import { cleanup, configure } from "@testing-library/react";
import { afterEach, vi } from "vitest";

// The machine running the suite is shared and slow at times: findBy*/waitFor wait up to 5 s (they return
// as soon as the condition holds, so this costs nothing when things are quick).
configure({ asyncUtilTimeout: 5000 });

afterEach(() => {
  cleanup();
  document.cookie.split(";").forEach((c) => {
    const name = c.split("=")[0]?.trim();
    if (name) document.cookie = `${name}=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/`;
  });
  window.localStorage.clear();
  window.sessionStorage.clear();
  document.documentElement.removeAttribute("data-theme");
});

class ResizeObserverStub {
  observe() {}
  unobserve() {}
  disconnect() {}
}
if (!("ResizeObserver" in globalThis)) {
  (globalThis as unknown as { ResizeObserver: typeof ResizeObserverStub }).ResizeObserver = ResizeObserverStub;
}
if (!window.matchMedia) {
  window.matchMedia = vi.fn().mockImplementation((query: string) => ({
    matches: false,
    media: query,
    onchange: null,
    addListener: vi.fn(),
    removeListener: vi.fn(),
    addEventListener: vi.fn(),
    removeEventListener: vi.fn(),
    dispatchEvent: vi.fn(),
  }));
}
const proto = window.HTMLElement.prototype as unknown as Record<string, unknown>;
proto.hasPointerCapture ??= () => false;
proto.setPointerCapture ??= () => undefined;
proto.releasePointerCapture ??= () => undefined;
proto.scrollIntoView ??= () => undefined;

// jsdom does no layout (every clientWidth is 0), so recharts' ResponsiveContainer would draw nothing and
// warn. Give its container a size: 600 px wide, as high as the ChartFrame around it says (its wrapper's
// style height).
for (const [prop, fallback] of [
  ["clientWidth", 600],
  ["clientHeight", 240],
] as const) {
  const original = Object.getOwnPropertyDescriptor(window.HTMLElement.prototype, prop) ??
    Object.getOwnPropertyDescriptor(window.Element.prototype, prop);
  Object.defineProperty(window.HTMLElement.prototype, prop, {
    configurable: true,
    get(this: HTMLElement) {
      if (this.classList.contains("recharts-responsive-container")) {
        const frame = this.parentElement?.style.height;
        return prop === "clientHeight" && frame?.endsWith("px") ? parseFloat(frame) : fallback;
      }
      return (original?.get?.call(this) as number | undefined) ?? 0;
    },
  });
}
