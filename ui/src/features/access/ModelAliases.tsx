import { useState, type FormEvent } from "react";
import { useMutation, useQueryClient, type UseQueryResult } from "@tanstack/react-query";
import { api } from "../../lib/api";
import {
  Button,
  Card,
  CardContent,
  CardHeader,
  ConfirmDialog,
  ItemsTable,
  Field,
  InlineError,
  Input,
  NativeSelect,
  TD,
  TR,
  useToast,
} from "../../components/ui";
import { apiFieldError, isFieldError } from "../keys/form";

interface Alias {
  id: string;
  alias: string;
  model_name: string;
}

/**
 * The model aliases of one scope (an organization or a team): a form adding one, the table of them and a confirmed
 * delete. The organization and team tabs differ only in the path, the cached query and the words around them.
 */
export function ModelAliases({
  path,
  aliases,
  queryKey,
  modelNames,
  description,
  caption,
}: {
  /** The collection path, e.g. `orgs/o1/model-aliases`. */
  path: string;
  aliases: UseQueryResult<{ items: Alias[] }>;
  /** The query refreshed after a change. */
  queryKey: readonly unknown[];
  /** The names the alias may point at; undefined while they load. */
  modelNames: string[] | undefined;
  description: string;
  caption: string;
}) {
  const queryClient = useQueryClient();
  const toast = useToast();
  const [alias, setAlias] = useState("");
  const [model, setModel] = useState("");
  const [errors, setErrors] = useState<{ alias?: string; model_name?: string }>({});
  const [deleting, setDeleting] = useState<Alias | null>(null);
  const refresh = () => queryClient.invalidateQueries({ queryKey });
  const create = useMutation({
    mutationFn: (body: { alias: string; model_name: string }) => api.post<Alias>(path, body),
    onSuccess: (created) => {
      void refresh();
      toast({ title: `Alias ${created.alias} added`, tone: "success" });
      setAlias("");
      setModel("");
    },
  });
  const remove = useMutation({
    mutationFn: (a: Alias) => api.delete(`${path}/${encodeURIComponent(a.id)}`),
    onSuccess: () => {
      void refresh();
      toast({ title: "Alias deleted", tone: "success" });
      closeDelete();
    },
  });
  const closeDelete = () => {
    setDeleting(null);
    remove.reset();
  };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const found = {
      alias: alias.trim() ? undefined : "Enter an alias.",
      model_name: model ? undefined : "Choose a model.",
    };
    setErrors(found);
    if (found.alias || found.model_name) return;
    create.mutate({ alias: alias.trim(), model_name: model });
  };
  return (
    <Card>
      <CardHeader title="Model aliases" description={description} />
      <CardContent className="flex flex-col gap-4">
        <form onSubmit={submit} noValidate aria-label="Add an alias" className="grid grid-cols-1 items-start gap-3 sm:grid-cols-3">
          <Field label="Alias" error={errors.alias ?? apiFieldError(create.error, "alias")}>
            <Input value={alias} onChange={(e) => setAlias(e.target.value)} maxLength={256} autoComplete="off" />
          </Field>
          <Field label="Model" error={errors.model_name ?? apiFieldError(create.error, "model_name")}>
            <NativeSelect
              value={model}
              onChange={(e) => setModel(e.target.value)}
              placeholder={modelNames === undefined ? "Loading…" : "Choose a model"}
              options={(modelNames ?? []).map((n) => ({ value: n, label: n }))}
            />
          </Field>
          <div className="sm:pt-6">
            <Button type="submit" loading={create.isPending}>
              Add alias
            </Button>
          </div>
        </form>
        {create.isError && !isFieldError(create.error, ["alias", "model_name"]) ? <InlineError error={create.error} /> : null}
        <ItemsTable
          query={aliases}
          noun="aliases"
          caption={caption}
          headers={["Alias", "Model"]}
        >
          {(a) => (
            <TR key={a.id}>
              <TD className="font-mono">{a.alias}</TD>
              <TD className="font-mono">{a.model_name}</TD>
              <TD>
                <div className="flex justify-end">
                  <Button size="sm" variant="ghost" className="text-danger" aria-label={`Delete alias ${a.alias}`} onClick={() => setDeleting(a)}>
                    Delete
                  </Button>
                </div>
              </TD>
            </TR>
          )}
        </ItemsTable>
      </CardContent>
      <ConfirmDialog
        open={deleting !== null}
        onOpenChange={(open) => (open ? undefined : closeDelete())}
        title={deleting ? `Delete alias ${deleting.alias}?` : "Delete alias?"}
        description="Requests that name this alias stop finding the model."
        confirmLabel="Delete"
        destructive
        pending={remove.isPending}
        onConfirm={() => deleting && remove.mutate(deleting)}
      >
        {remove.isError ? <InlineError error={remove.error} /> : null}
      </ConfirmDialog>
    </Card>
  );
}
