import { useState, type ReactNode } from "react";
import { useMutation, useQueryClient, type UseQueryResult } from "@tanstack/react-query";
import { api } from "../../lib/api";
import { roleLabel } from "../../lib/roles";
import {
  Button,
  ConfirmDialog,
  DateTime,
  InlineError,
  ItemsTable,
  NativeSelect,
  TD,
  TR,
  useToast,
  type NativeSelectOption,
} from "../../components/ui";

export interface Membership {
  id: string;
  user_id: string;
  email: string;
  display_name: string;
  role: string;
  created_at: string;
}

export const memberName = (m: Pick<Membership, "display_name" | "email">) => m.display_name || m.email;

/**
 * The members of an organization or a team: a role select per row (the change is saved at once) and a remove button
 * behind a confirmation. The caller names the words; `selfId` marks the signed-in user's row, whose role and
 * membership are left alone.
 */
export function MembersTable<M extends Membership>({
  members,
  path,
  queryKey,
  roleHeader,
  roleOptions,
  sinceHeader,
  caption,
  empty,
  selfId,
  removal,
}: {
  members: UseQueryResult<{ items: M[] }>;
  /** The members collection path; a member is `${path}/${id}`. */
  path: string;
  /** The query refreshed after a change. */
  queryKey: readonly unknown[];
  roleHeader: string;
  roleOptions: NativeSelectOption[];
  sinceHeader: string;
  caption: string;
  empty: ReactNode;
  selfId?: string;
  removal: { title: (m: M) => string; description: (m: M) => string; done: (m: M) => string };
}) {
  const queryClient = useQueryClient();
  const toast = useToast();
  const [removing, setRemoving] = useState<M | null>(null);
  const refresh = () => queryClient.invalidateQueries({ queryKey });
  const changeRole = useMutation({
    mutationFn: ({ member, role }: { member: M; role: string }) => api.patch<M>(`${path}/${encodeURIComponent(member.id)}`, { role }),
    onSuccess: (saved) => {
      void refresh();
      toast({ title: `${memberName(saved)} is now ${roleLabel(saved.role).toLowerCase()}`, tone: "success" });
    },
  });
  const remove = useMutation({
    mutationFn: (member: M) => api.delete(`${path}/${encodeURIComponent(member.id)}`),
    onSuccess: (_, member) => {
      void refresh();
      toast({ title: removal.done(member), tone: "success" });
      closeRemove();
    },
  });
  const closeRemove = () => {
    setRemoving(null);
    remove.reset();
  };
  return (
    <>
      {changeRole.isError ? <InlineError error={changeRole.error} /> : null}
      <ItemsTable
        query={members}
        noun="members"
        caption={caption}
        headers={["Name", "Email", roleHeader, sinceHeader]}
        empty={empty}
      >
        {(member) => {
          const who = memberName(member);
          const self = member.user_id === selfId;
          return (
            <TR key={member.id}>
              <TD className="font-medium">
                {who}
                {self ? <span className="text-muted"> (you)</span> : null}
              </TD>
              <TD>{member.email}</TD>
              <TD>
                <NativeSelect
                  aria-label={`${roleHeader} of ${who}`}
                  className="h-8 w-auto"
                  value={member.role}
                  disabled={self || changeRole.isPending}
                  onChange={(e) => changeRole.mutate({ member, role: e.target.value })}
                  options={roleOptions}
                />
              </TD>
              <TD>
                <DateTime value={member.created_at} />
              </TD>
              <TD>
                <div className="flex justify-end">
                  {self ? null : (
                    <Button size="sm" variant="ghost" className="text-danger" aria-label={`Remove ${who}`} onClick={() => setRemoving(member)}>
                      Remove
                    </Button>
                  )}
                </div>
              </TD>
            </TR>
          );
        }}
      </ItemsTable>
      <ConfirmDialog
        open={removing !== null}
        onOpenChange={(open) => (open ? undefined : closeRemove())}
        title={removing ? removal.title(removing) : "Remove member?"}
        description={removing ? removal.description(removing) : ""}
        confirmLabel="Remove"
        destructive
        pending={remove.isPending}
        onConfirm={() => removing && remove.mutate(removing)}
      >
        {remove.isError ? <InlineError error={remove.error} /> : null}
      </ConfirmDialog>
    </>
  );
}
