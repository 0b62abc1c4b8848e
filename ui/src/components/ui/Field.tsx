import { cloneElement, isValidElement, useId, type ReactElement, type ReactNode } from "react";
import * as LabelPrimitive from "@radix-ui/react-label";
import { cn } from "./cn";

export function Label({ className, ...rest }: LabelPrimitive.LabelProps) {
  return <LabelPrimitive.Root className={cn("text-sm font-medium text-fg", className)} {...rest} />;
}

export interface FieldProps {
  /** The visible label (its text is the control's accessible name). */
  label: ReactNode;
  /** One control (Input, Textarea, NativeSelect, ...); gets id, aria-invalid and aria-describedby. */
  children: ReactElement<Record<string, unknown>>;
  /** Error text under the control (also marks it aria-invalid). */
  error?: ReactNode;
  /** Help text under the control, e.g. "0 = unlimited". */
  hint?: ReactNode;
  /** Use a given id instead of a generated one. */
  id?: string;
  required?: boolean;
  className?: string;
}

/** Label + control + hint + error, wired for screen readers. */
export function Field({ label, children, error, hint, id, required, className }: FieldProps) {
  const generated = useId();
  const controlId = id ?? (children.props.id as string | undefined) ?? generated;
  const hintId = hint ? `${controlId}-hint` : undefined;
  const errorId = error ? `${controlId}-error` : undefined;
  const describedBy = [children.props["aria-describedby"], hintId, errorId].filter(Boolean).join(" ") || undefined;
  const control = isValidElement(children)
    ? cloneElement(children, {
        id: controlId,
        "aria-invalid": error ? true : children.props["aria-invalid"],
        "aria-describedby": describedBy,
        required: required ?? children.props.required,
      })
    : children;
  return (
    <div className={cn("flex flex-col gap-1.5", className)}>
      <Label htmlFor={controlId}>
        {label}
        {required ? (
          <span aria-hidden="true" className="text-danger">
            {" "}
            *
          </span>
        ) : null}
      </Label>
      {control}
      {hint ? (
        <p id={hintId} className="text-xs text-muted">
          {hint}
        </p>
      ) : null}
      {error ? (
        <p id={errorId} className="text-xs text-danger">
          {error}
        </p>
      ) : null}
    </div>
  );
}
