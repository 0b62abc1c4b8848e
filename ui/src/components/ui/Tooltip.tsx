import type { ReactNode } from "react";
import * as TooltipPrimitive from "@radix-ui/react-tooltip";

/** Wraps the app once (in AppProviders). */
export const TooltipProvider = TooltipPrimitive.Provider;

/** A hover/focus hint; never the only place information lives (the trigger needs its own name). */
export function Tooltip({ content, children }: { content: ReactNode; children: ReactNode }) {
  return (
    <TooltipPrimitive.Root>
      <TooltipPrimitive.Trigger asChild>{children}</TooltipPrimitive.Trigger>
      <TooltipPrimitive.Portal>
        <TooltipPrimitive.Content
          sideOffset={4}
          className="z-50 max-w-xs rounded-md border border-border bg-surface px-2 py-1 text-xs text-fg shadow"
        >
          {content}
        </TooltipPrimitive.Content>
      </TooltipPrimitive.Portal>
    </TooltipPrimitive.Root>
  );
}
