import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from "react";
import * as ToastPrimitive from "@radix-ui/react-toast";
import { cn } from "./cn";

export type ToastTone = "info" | "success" | "error";

export interface ToastInput {
  title: string;
  description?: string;
  tone?: ToastTone;
}

interface ToastItem extends ToastInput {
  id: number;
}

const ToastContext = createContext<((toast: ToastInput) => void) | null>(null);

const TONES: Record<ToastTone, string> = {
  info: "border-border",
  success: "border-success/60",
  error: "border-danger/60",
};

/** Notifications (Radix Toast, announced politely). Wrap the app once; call `useToast()` anywhere. */
export function ToastProvider({ children }: { children: ReactNode }) {
  const [items, setItems] = useState<ToastItem[]>([]);
  const push = useCallback((toast: ToastInput) => {
    setItems((list) => [...list.slice(-3), { ...toast, id: Date.now() + Math.random() }]);
  }, []);
  const remove = (id: number) => setItems((list) => list.filter((t) => t.id !== id));
  return (
    <ToastContext.Provider value={push}>
      <ToastPrimitive.Provider swipeDirection="right" duration={5000}>
        {children}
        {items.map((t) => (
          <ToastPrimitive.Root
            key={t.id}
            type={t.tone === "error" ? "foreground" : "background"}
            onOpenChange={(open) => (open ? undefined : remove(t.id))}
            className={cn("flex items-start gap-3 rounded-md border bg-surface p-3 text-fg shadow-lg", TONES[t.tone ?? "info"])}
          >
            <div className="flex-1">
              <ToastPrimitive.Title className="text-sm font-medium">{t.title}</ToastPrimitive.Title>
              {t.description ? (
                <ToastPrimitive.Description className="text-sm text-muted">{t.description}</ToastPrimitive.Description>
              ) : null}
            </div>
            <ToastPrimitive.Close aria-label="Dismiss notification" className="rounded px-1 text-muted hover:text-fg">
              <span aria-hidden="true">✕</span>
            </ToastPrimitive.Close>
          </ToastPrimitive.Root>
        ))}
        <ToastPrimitive.Viewport
          label="Notifications ({hotkey})"
          className="fixed bottom-0 right-0 z-[60] flex w-full max-w-sm flex-col gap-2 p-4 outline-none"
        />
      </ToastPrimitive.Provider>
    </ToastContext.Provider>
  );
}

/** `const toast = useToast(); toast({ title: "Key revoked", tone: "success" })`. */
export function useToast(): (toast: ToastInput) => void {
  const push = useContext(ToastContext);
  return useMemo(() => push ?? (() => undefined), [push]);
}
