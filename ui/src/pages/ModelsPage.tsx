import { useMemo, useState } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api } from "../lib/api";
import { formatNumber } from "../lib/format";
import {
  Button,
  Card,
  CardContent,
  CardHeader,
  ConfirmDialog,
  EmptyState,
  InlineError,
  PageHeader,
  QueryView,
  useToast,
} from "../components/ui";
import { healthByName, MODELS_KEY, modelPath, useModelHealth, useModels } from "../features/models/data";
import { ModelDialog, type ModelDialogState } from "../features/models/ModelDialog";
import { ModelsTable } from "../features/models/ModelsTable";
import type { ModelOut } from "../features/models/types";

/** Models (system admin; the route guards it): the registry with health per deployment, create/edit, test, on/off. */
export default function ModelsPage() {
  const models = useModels();
  const health = useModelHealth();
  const queryClient = useQueryClient();
  const toast = useToast();
  const [dialog, setDialog] = useState<ModelDialogState>(null);
  const [deleting, setDeleting] = useState<ModelOut | null>(null);

  const toggle = useMutation({
    mutationFn: (model: ModelOut) =>
      api.patch<ModelOut>(`${modelPath(model.id)}/${model.is_active ? "deactivate" : "activate"}`),
    onSuccess: (model) => {
      void queryClient.invalidateQueries({ queryKey: MODELS_KEY });
      toast({ title: `${model.name} ${model.is_active ? "activated" : "deactivated"}`, tone: "success" });
    },
    onError: (error) => toast({ title: "Could not change the model", description: error.message, tone: "error" }),
  });
  const remove = useMutation({
    mutationFn: (model: ModelOut) => api.delete(modelPath(model.id)),
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: MODELS_KEY });
      toast({ title: "Model deleted", tone: "success" });
      setDeleting(null);
    },
  });

  const healthMap = useMemo(() => healthByName(health.data?.models), [health.data]);
  const all = models.data?.items ?? [];
  const createButton = <Button onClick={() => setDialog({ kind: "create" })}>Create model</Button>;

  return (
    <>
      <PageHeader
        title="Models"
        description="The upstream models the gateway routes to. Provider keys are write-only."
        actions={createButton}
      />
      <Card>
        <CardHeader
          title="Registry"
          description={models.data ? `${formatNumber(all.length)} models` : undefined}
          actions={
            <Button variant="secondary" size="sm" loading={health.isFetching} onClick={() => void health.refetch()}>
              Refresh health
            </Button>
          }
        />
        <CardContent className="flex flex-col gap-3">
          {health.isError ? <InlineError error={health.error} /> : null}
          <QueryView
            query={models}
            loadingLabel="Loading models"
            errorTitle="Could not load the models"
            isEmpty={(data) => data.items.length === 0}
            empty={
              <EmptyState
                title="No models yet"
                description="Add a model here or in voidllm.yaml to start proxying."
                action={createButton}
              />
            }
          >
            {(data) => (
              <ModelsTable
                models={data.items}
                health={healthMap}
                healthState={health.isPending ? "loading" : health.isError ? "error" : "ready"}
                onEdit={(model) => setDialog({ kind: "edit", model })}
                onToggle={(model) => toggle.mutate(model)}
                onDelete={setDeleting}
                pendingId={toggle.isPending ? (toggle.variables?.id ?? null) : null}
              />
            )}
          </QueryView>
        </CardContent>
      </Card>
      <ModelDialog state={dialog} models={all} onClose={() => setDialog(null)} />
      <ConfirmDialog
        open={deleting !== null}
        onOpenChange={(open) => {
          if (!open) {
            setDeleting(null);
            remove.reset();
          }
        }}
        title={deleting ? `Delete ${deleting.name}?` : "Delete model?"}
        description="Requests for this model and its aliases fail from now on; models that fall back to it lose their fallback."
        confirmLabel="Delete"
        destructive
        pending={remove.isPending}
        onConfirm={() => deleting && remove.mutate(deleting)}
      >
        {remove.isError ? <InlineError error={remove.error} /> : null}
      </ConfirmDialog>
    </>
  );
}
