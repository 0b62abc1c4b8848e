import { useEffect, useState } from "react";
import { Button, type ButtonProps } from "./Button";

export interface CopyButtonProps extends Omit<ButtonProps, "onClick" | "value"> {
  /** The text put on the clipboard. */
  value: string;
  /** Button text (and accessible name); default "Copy". */
  label?: string;
}

/** Copies `value` to the clipboard; says "Copied" for two seconds (announced via aria-live). */
export function CopyButton({ value, label = "Copy", variant = "secondary", size = "sm", ...rest }: CopyButtonProps) {
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");
  useEffect(() => {
    if (state === "idle") return;
    const timer = window.setTimeout(() => setState("idle"), 2000);
    return () => window.clearTimeout(timer);
  }, [state]);
  return (
    <Button
      variant={variant}
      size={size}
      onClick={async () => {
        try {
          await navigator.clipboard.writeText(value);
          setState("copied");
        } catch {
          setState("failed");
        }
      }}
      {...rest}
    >
      <span aria-live="polite">{state === "copied" ? "Copied" : state === "failed" ? "Copy failed" : label}</span>
    </Button>
  );
}
