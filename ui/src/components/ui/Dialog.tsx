import { useRef, type ReactNode } from "react";
import * as DialogPrimitive from "@radix-ui/react-dialog";
import * as AlertDialogPrimitive from "@radix-ui/react-alert-dialog";
import { cn } from "./cn";
import { Button } from "./Button";
import { InlineError } from "./States";

const OVERLAY = "fixed inset-0 z-40 bg-black/50";
const CONTENT =
  "fixed left-1/2 top-1/2 z-50 flex max-h-[90vh] w-[calc(100vw-2rem)] -translate-x-1/2 -translate-y-1/2 " +
  "flex-col gap-4 overflow-y-auto rounded-lg border border-border bg-surface p-5 text-fg shadow-xl";

const WIDTHS = { sm: "max-w-sm", md: "max-w-lg", lg: "max-w-2xl", xl: "max-w-4xl" };

/**
 * Focus goes back to whatever had it when the dialog opened (the button that opened it), also for dialogs
 * opened by state rather than by a Radix trigger, for which Radix alone would leave the focus on <body>.
 * When that element is gone (e.g. the row of a revoked key), Radix's default applies.
 */
function useReturnFocus() {
  const opener = useRef<HTMLElement | null>(null);
  return {
    onOpenAutoFocus: () => {
      opener.current = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    },
    onCloseAutoFocus: (event: Event) => {
      const target = opener.current;
      opener.current = null;
      if (target && target.isConnected && target !== document.body) {
        event.preventDefault();
        target.focus();
      }
    },
  };
}

export interface DialogProps {
  open?: boolean;
  onOpenChange?: (open: boolean) => void;
  /** The dialog's accessible name (rendered as its heading). */
  title: ReactNode;
  description?: ReactNode;
  /** An element that opens the dialog (e.g. <Button>Create key</Button>); optional when controlled. */
  trigger?: ReactNode;
  /** Buttons row at the bottom (e.g. Cancel + submit). */
  footer?: ReactNode;
  size?: keyof typeof WIDTHS;
  children?: ReactNode;
}

/** A modal dialog (Radix): focus trapped, Escape closes, focus returns to the trigger. */
export function Dialog({ open, onOpenChange, title, description, trigger, footer, size = "md", children }: DialogProps) {
  const returnFocus = useReturnFocus();
  return (
    <DialogPrimitive.Root open={open} onOpenChange={onOpenChange}>
      {trigger ? <DialogPrimitive.Trigger asChild>{trigger}</DialogPrimitive.Trigger> : null}
      <DialogPrimitive.Portal>
        <DialogPrimitive.Overlay className={OVERLAY} />
        <DialogPrimitive.Content
          {...returnFocus}
          className={cn(CONTENT, WIDTHS[size])}
          {...(description ? {} : { "aria-describedby": undefined })}
        >
          <div className="flex items-start justify-between gap-4">
            <div className="flex flex-col gap-1">
              <DialogPrimitive.Title className="text-lg font-semibold">{title}</DialogPrimitive.Title>
              {description ? (
                <DialogPrimitive.Description className="text-sm text-muted">{description}</DialogPrimitive.Description>
              ) : null}
            </div>
            <DialogPrimitive.Close asChild>
              <Button variant="ghost" size="icon" aria-label="Close">
                <span aria-hidden="true">✕</span>
              </Button>
            </DialogPrimitive.Close>
          </div>
          {children}
          {footer ? <div className="flex flex-wrap justify-end gap-2">{footer}</div> : null}
        </DialogPrimitive.Content>
      </DialogPrimitive.Portal>
    </DialogPrimitive.Root>
  );
}

/** The end of a form in a Dialog: Cancel (closes it) and the submit button, busy while the form is sent. */
export function DialogFormActions({ submitLabel, pending }: { submitLabel: ReactNode; pending: boolean }) {
  return (
    <div className="flex flex-wrap justify-end gap-2">
      <DialogClose>
        <Button variant="secondary">Cancel</Button>
      </DialogClose>
      <Button type="submit" loading={pending}>
        {submitLabel}
      </Button>
    </div>
  );
}

/** A button that closes the surrounding Dialog (e.g. `Cancel`). */
export function DialogClose({ children }: { children: ReactNode }) {
  return <DialogPrimitive.Close asChild>{children}</DialogPrimitive.Close>;
}

export interface ConfirmDialogProps {
  open: boolean;
  onOpenChange: (open: boolean) => void;
  title: ReactNode;
  description: ReactNode;
  /** The confirming button's label, e.g. "Revoke". */
  confirmLabel: string;
  cancelLabel?: string;
  /** Red confirm button. */
  destructive?: boolean;
  /** Called on confirm; the dialog stays open while `pending` (close it yourself on success). */
  onConfirm: () => void;
  pending?: boolean;
  /** Keeps the confirm button disabled (e.g. until a typed confirmation matches). */
  confirmDisabled?: boolean;
  /** The mutation confirmed: `pending` while it runs, its error shown inside the dialog, reset when the dialog
   * closes. */
  mutation?: ConfirmedMutation;
  /** Shown inside the dialog (e.g. the mutation's error). */
  children?: ReactNode;
}

/** What {@link ConfirmDialog} reads of a TanStack Query mutation. */
export interface ConfirmedMutation {
  isPending: boolean;
  isError: boolean;
  error: unknown;
  reset: () => void;
}

/** A confirmation (Radix AlertDialog): Cancel has the initial focus, Escape cancels. */
export function ConfirmDialog({
  open,
  onOpenChange,
  title,
  description,
  confirmLabel,
  cancelLabel = "Cancel",
  destructive = false,
  onConfirm,
  pending = false,
  confirmDisabled = false,
  mutation,
  children,
}: ConfirmDialogProps) {
  const returnFocus = useReturnFocus();
  pending = pending || (mutation?.isPending ?? false);
  return (
    <AlertDialogPrimitive.Root
      open={open}
      onOpenChange={(next) => {
        onOpenChange(next);
        if (!next) mutation?.reset();
      }}
    >
      <AlertDialogPrimitive.Portal>
        <AlertDialogPrimitive.Overlay className={OVERLAY} />
        <AlertDialogPrimitive.Content {...returnFocus} className={cn(CONTENT, WIDTHS.sm)}>
          <AlertDialogPrimitive.Title className="text-lg font-semibold">{title}</AlertDialogPrimitive.Title>
          <AlertDialogPrimitive.Description className="text-sm text-muted">{description}</AlertDialogPrimitive.Description>
          {mutation?.isError ? <InlineError error={mutation.error} /> : null}
          {children}
          <div className="flex flex-wrap justify-end gap-2">
            <AlertDialogPrimitive.Cancel asChild>
              <Button variant="secondary" disabled={pending}>
                {cancelLabel}
              </Button>
            </AlertDialogPrimitive.Cancel>
            <Button
              variant={destructive ? "danger" : "primary"}
              loading={pending}
              disabled={confirmDisabled}
              onClick={(event) => {
                event.preventDefault();
                onConfirm();
              }}
            >
              {confirmLabel}
            </Button>
          </div>
        </AlertDialogPrimitive.Content>
      </AlertDialogPrimitive.Portal>
    </AlertDialogPrimitive.Root>
  );
}
