import { useState, type ReactNode } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api } from "../../lib/api";
import { Button, InlineError, useToast } from "../../components/ui";

/**
 * The save half of every allowlist editor (organization and team model access, organization and team MCP access):
 * the checked ids start as the saved ones, the form PUTs them, the answer replaces the cached query and a toast says
 * so; a refused save shows its error above the button. Remount it (`key`) when the saved ids change.
 */
export function AccessForm<T>({
  saved,
  path,
  body,
  queryKey,
  what,
  submitLabel,
  children,
}: {
  saved: string[];
  /** The PUT path of the allowlist. */
  path: string;
  /** The request body for the checked ids. */
  body: (ids: string[]) => unknown;
  /** The query the answer replaces. */
  queryKey: readonly unknown[];
  /** "Model access", "MCP access": names the toast. */
  what: string;
  submitLabel: string;
  children: (selected: string[], setSelected: (ids: string[]) => void) => ReactNode;
}) {
  const queryClient = useQueryClient();
  const toast = useToast();
  const [selected, setSelected] = useState(saved);
  const save = useMutation({
    mutationFn: (ids: string[]) => api.put<T>(path, body(ids)),
    onSuccess: (result) => {
      queryClient.setQueryData(queryKey, result);
      toast({ title: `${what} saved`, tone: "success" });
    },
  });
  return (
    <form
      className="flex flex-col gap-4"
      onSubmit={(e) => {
        e.preventDefault();
        save.mutate(selected);
      }}
    >
      {children(selected, setSelected)}
      {save.isError ? <InlineError error={save.error} /> : null}
      <div>
        <Button type="submit" loading={save.isPending}>
          {submitLabel}
        </Button>
      </div>
    </form>
  );
}

/** A fieldset of checkboxes, one per id, for an allowlist of MCP servers. */
export function IdChecklist({
  legend,
  items,
  selected,
  onChange,
  children,
}: {
  legend: string;
  items: { id: string; label: ReactNode }[];
  selected: string[];
  onChange: (ids: string[]) => void;
  /** Shown under the legend, before the boxes (loading or error notes). */
  children?: ReactNode;
}) {
  return (
    <fieldset className="flex flex-col gap-2">
      <legend className="text-sm font-medium">{legend}</legend>
      {children}
      {items.map((item) => (
        <label key={item.id} className="flex items-center gap-2 text-sm">
          <input
            type="checkbox"
            className="h-4 w-4"
            checked={selected.includes(item.id)}
            onChange={(e) => onChange(e.target.checked ? [...selected, item.id] : selected.filter((id) => id !== item.id))}
          />
          <span>{item.label}</span>
        </label>
      ))}
    </fieldset>
  );
}
