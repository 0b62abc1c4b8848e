import { useState } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api } from "../../lib/api";
import { useOrgId } from "../../lib/viewedOrg";
import { formatDateTime } from "../../lib/format";
import { Button, ConfirmDialog, Dialog, InlineError, useToast } from "../../components/ui";
import { keyPath } from "./data";
import { KeyReveal } from "./KeyReveal";
import type { KeyOut, KeyRotation } from "./types";

/** Rotate: a confirmation with the 24 h grace warning, then the successor's key shown once. */
export function RotateKeyDialog({ apiKey, onClose }: { apiKey: KeyOut | null; onClose: () => void }) {
  const orgId = useOrgId();
  const queryClient = useQueryClient();
  const toast = useToast();
  const [rotated, setRotated] = useState<{ name: string; plaintext: string; oldExpiresAt: string | null } | null>(null);

  const rotate = useMutation({
    // The new plaintext goes to this dialog's state only; the mutation keeps nothing but the new id.
    mutationFn: async (key: KeyOut) => {
      const result = await api.post<KeyRotation>(`${keyPath(orgId, key.id)}/rotate`);
      setRotated({ name: result.new_key.name, plaintext: result.new_key.key, oldExpiresAt: result.old_key.expires_at });
      return result.new_key.id;
    },
    gcTime: 0,
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: ["keys", orgId, "list"] });
      toast({ title: "Key rotated", tone: "success" });
    },
  });

  const close = () => {
    setRotated(null);
    rotate.reset();
    onClose();
  };

  if (rotated) {
    return (
      <Dialog
        open
        onOpenChange={(open) => (open ? undefined : close())}
        title="Key rotated"
        description={`The new key “${rotated.name}” has the same settings as the old one.`}
        size="lg"
        footer={<Button onClick={close}>Done</Button>}
      >
        <KeyReveal plaintext={rotated.plaintext} label="New API key" />
        <p className="text-sm">
          The old key keeps working until <strong>{formatDateTime(rotated.oldExpiresAt)}</strong>: replace it in your
          applications before then.
        </p>
      </Dialog>
    );
  }
  return (
    <ConfirmDialog
      open={apiKey !== null}
      onOpenChange={(open) => (open ? undefined : close())}
      title={apiKey ? `Rotate ${apiKey.name}?` : "Rotate key?"}
      description="A new key with the same settings is issued. The old key keeps working for 24 hours (or until its current expiry, if that is sooner), then stops."
      confirmLabel="Rotate"
      pending={rotate.isPending}
      onConfirm={() => apiKey && rotate.mutate(apiKey)}
    >
      {rotate.isError ? <InlineError error={rotate.error} /> : null}
    </ConfirmDialog>
  );
}

/** Revoke: destructive, at once. */
export function RevokeKeyDialog({ apiKey, onClose }: { apiKey: KeyOut | null; onClose: () => void }) {
  const orgId = useOrgId();
  const queryClient = useQueryClient();
  const toast = useToast();
  const revoke = useMutation({
    mutationFn: (key: KeyOut) => api.delete(keyPath(orgId, key.id)),
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: ["keys", orgId, "list"] });
      toast({ title: "Key revoked", tone: "success" });
      close();
    },
  });
  const close = () => {
    revoke.reset();
    onClose();
  };
  return (
    <ConfirmDialog
      open={apiKey !== null}
      onOpenChange={(open) => (open ? undefined : close())}
      title={apiKey ? `Revoke ${apiKey.name}?` : "Revoke key?"}
      description="Every application using this key stops working at once. This cannot be undone."
      confirmLabel="Revoke"
      destructive
      pending={revoke.isPending}
      onConfirm={() => apiKey && revoke.mutate(apiKey)}
    >
      {revoke.isError ? <InlineError error={revoke.error} /> : null}
    </ConfirmDialog>
  );
}
