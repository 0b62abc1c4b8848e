import { forwardRef } from "react";
import * as SwitchPrimitive from "@radix-ui/react-switch";
import { cn } from "./cn";

export interface SwitchProps {
  checked?: boolean;
  defaultChecked?: boolean;
  onCheckedChange?: (checked: boolean) => void;
  disabled?: boolean;
  /** Set by <Field> (its label then names the switch); or give `aria-label`. */
  id?: string;
  "aria-label"?: string;
  "aria-describedby"?: string;
  name?: string;
  className?: string;
}

/** An on/off switch (Radix, role `switch`): `<Field label="Stream"><Switch checked={s} onCheckedChange={setS} /></Field>`. */
export const Switch = forwardRef<HTMLButtonElement, SwitchProps>(function Switch({ className, ...rest }, ref) {
  return (
    <SwitchPrimitive.Root
      ref={ref}
      className={cn(
        "relative inline-flex h-6 w-11 shrink-0 items-center rounded-full border border-border bg-surface-2 transition-colors",
        "data-[state=checked]:border-primary data-[state=checked]:bg-primary disabled:cursor-not-allowed disabled:opacity-50",
        className,
      )}
      {...rest}
    >
      <SwitchPrimitive.Thumb
        className={cn(
          "block h-4 w-4 translate-x-1 rounded-full bg-fg shadow transition-transform",
          "data-[state=checked]:translate-x-6 data-[state=checked]:bg-primary-fg",
        )}
      />
    </SwitchPrimitive.Root>
  );
});
