import * as TabsPrimitive from "@radix-ui/react-tabs";
import { cn } from "./cn";

/** Tabs (Radix): `<Tabs defaultValue="chat"><TabsList aria-label="Mode"><TabsTrigger value="chat">Chat</TabsTrigger>…</TabsList><TabsContent value="chat">…</TabsContent></Tabs>`. */
export const Tabs = TabsPrimitive.Root;

export function TabsList({ className, ...rest }: TabsPrimitive.TabsListProps) {
  return (
    <TabsPrimitive.List
      className={cn("inline-flex flex-wrap gap-1 rounded-md border border-border bg-surface-2 p-1", className)}
      {...rest}
    />
  );
}

export function TabsTrigger({ className, ...rest }: TabsPrimitive.TabsTriggerProps) {
  return (
    <TabsPrimitive.Trigger
      className={cn(
        "rounded px-3 py-1.5 text-sm font-medium text-muted",
        "data-[state=active]:bg-surface data-[state=active]:text-fg data-[state=active]:shadow-sm",
        className,
      )}
      {...rest}
    />
  );
}

export function TabsContent({ className, ...rest }: TabsPrimitive.TabsContentProps) {
  return <TabsPrimitive.Content className={cn("mt-4", className)} {...rest} />;
}
