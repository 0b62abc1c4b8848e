import { useState } from "react";
import { describe, expect, it, vi } from "vitest";
import { within, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { renderPage } from "../../test/utils";
import { useQuery } from "@tanstack/react-query";
import { Switch, Button, ConfirmDialog, ItemsTable, TD, TR, CopyButton, Dialog, Field, Input, NativeSelect, Progress, Select, Tabs, TabsContent, TabsList, TabsTrigger } from ".";

describe("component kit", () => {
  it("labels fields and describes their hint and error", () => {
    renderPage(
      <Field label="Name" hint="0 = unlimited" error="name is required">
        <Input />
      </Field>,
    );
    const input = screen.getByLabelText("Name");
    expect(input).toHaveAttribute("aria-invalid", "true");
    expect(input).toHaveAccessibleDescription("0 = unlimited name is required");
  });

  it("opens a dialog from its trigger, closes it with Escape and returns focus", async () => {
    renderPage(
      <Dialog title="Create key" trigger={<Button>Create key</Button>}>
        <Field label="Name">
          <Input />
        </Field>
      </Dialog>,
    );
    const user = userEvent.setup();
    const trigger = screen.getByRole("button", { name: "Create key" });
    await user.click(trigger);
    expect(screen.getByRole("dialog", { name: "Create key" })).toBeInTheDocument();
    await user.keyboard("{Escape}");
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(trigger).toHaveFocus();
  });

  it("returns the focus to the button that opened a dialog by state (no trigger), also for confirmations", async () => {
    function Harness() {
      const [open, setOpen] = useState(false);
      const [confirm, setConfirm] = useState(false);
      return (
        <>
          <Button onClick={() => setOpen(true)}>Create key</Button>
          <Button onClick={() => setConfirm(true)}>Revoke</Button>
          <Dialog open={open} onOpenChange={setOpen} title="Create key">
            <Field label="Name">
              <Input />
            </Field>
          </Dialog>
          <ConfirmDialog open={confirm} onOpenChange={setConfirm} title="Revoke key?" description="Now." confirmLabel="Yes" onConfirm={() => setConfirm(false)} />
        </>
      );
    }
    renderPage(<Harness />);
    const user = userEvent.setup();
    const create = screen.getByRole("button", { name: "Create key" });
    create.focus();
    await user.keyboard("{Enter}");
    expect(await screen.findByRole("dialog", { name: "Create key" })).toBeInTheDocument();
    await user.keyboard("{Escape}");
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(create).toHaveFocus();
    const revoke = screen.getByRole("button", { name: "Revoke" });
    await user.click(revoke);
    await user.click(await screen.findByRole("button", { name: "Yes" }));
    await waitFor(() => expect(screen.queryByRole("alertdialog")).toBeNull());
    expect(revoke).toHaveFocus();
  });

  it("confirms in an alert dialog", async () => {
    const onConfirm = vi.fn();
    function Harness() {
      const [open, setOpen] = useState(true);
      return (
        <ConfirmDialog open={open} onOpenChange={setOpen} title="Revoke key?" description="It stops working now." confirmLabel="Revoke" destructive onConfirm={onConfirm} />
      );
    }
    renderPage(<Harness />);
    const user = userEvent.setup();
    expect(screen.getByRole("alertdialog", { name: "Revoke key?" })).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Revoke" }));
    expect(onConfirm).toHaveBeenCalledTimes(1);
    await user.click(screen.getByRole("button", { name: "Cancel" }));
    await waitFor(() => expect(screen.queryByRole("alertdialog")).toBeNull());
  });

  it("confirms a mutation: pending while it runs, its error inside, reset on close", async () => {
    const reset = vi.fn();
    const mutation = { isPending: false, isError: true, error: new Error("the server said no"), reset };
    function Harness() {
      const [open, setOpen] = useState(true);
      return <ConfirmDialog open={open} onOpenChange={setOpen} title="Delete it?" description="Gone." confirmLabel="Delete" mutation={mutation} onConfirm={() => undefined} />;
    }
    renderPage(<Harness />);
    const user = userEvent.setup();
    expect(within(screen.getByRole("alertdialog")).getByText(/the server said no/)).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Cancel" }));
    await waitFor(() => expect(screen.queryByRole("alertdialog")).toBeNull());
    expect(reset).toHaveBeenCalledTimes(1);
    renderPage(<ConfirmDialog open onOpenChange={() => undefined} title="Delete it?" description="Gone." confirmLabel="Delete" mutation={{ ...mutation, isPending: true, isError: false }} onConfirm={() => undefined} />);
    expect(screen.getByRole("button", { name: "Cancel" })).toBeDisabled();
    expect(screen.queryByText(/the server said no/)).toBeNull();
  });

  it("selects with the native and the Radix select", async () => {
    const onChange = vi.fn();
    function Harness() {
      const [value, setValue] = useState("a");
      return (
        <>
          <Field label="Team">
            <NativeSelect options={[{ value: "t1", label: "Team one" }]} placeholder="None" onChange={(e) => onChange(e.target.value)} />
          </Field>
          <Select aria-label="Group by" value={value} onValueChange={setValue} options={[{ value: "a", label: "Model" }, { value: "b", label: "Key" }]} />
          <p>chosen {value}</p>
        </>
      );
    }
    renderPage(<Harness />);
    const user = userEvent.setup();
    await user.selectOptions(screen.getByLabelText("Team"), "t1");
    expect(onChange).toHaveBeenCalledWith("t1");
    await user.click(screen.getByRole("combobox", { name: "Group by" }));
    await user.click(await screen.findByRole("option", { name: "Key" }));
    expect(screen.getByText("chosen b")).toBeInTheDocument();
  });

  it("switches tabs", async () => {
    renderPage(
      <Tabs defaultValue="chat">
        <TabsList aria-label="Mode">
          <TabsTrigger value="chat">Chat</TabsTrigger>
          <TabsTrigger value="emb">Embeddings</TabsTrigger>
        </TabsList>
        <TabsContent value="chat">chat panel</TabsContent>
        <TabsContent value="emb">embeddings panel</TabsContent>
      </Tabs>,
    );
    const user = userEvent.setup();
    await user.click(screen.getByRole("tab", { name: "Embeddings" }));
    expect(screen.getByRole("tabpanel")).toHaveTextContent("embeddings panel");
  });

  it("toggles a switch named by its field label", async () => {
    function Harness() {
      const [on, setOn] = useState(true);
      return (
        <Field label="Stream">
          <Switch checked={on} onCheckedChange={setOn} />
        </Field>
      );
    }
    renderPage(<Harness />);
    const user = userEvent.setup();
    const toggle = screen.getByRole("switch", { name: "Stream" });
    expect(toggle).toBeChecked();
    await user.click(toggle);
    expect(toggle).not.toBeChecked();
  });

  it("shows progress with a name and value", () => {
    renderPage(<Progress value={90} max={100} label="Monthly tokens" />);
    const bar = screen.getByRole("progressbar", { name: "Monthly tokens" });
    expect(bar).toHaveAttribute("aria-valuenow", "90");
    expect(bar).toHaveAttribute("aria-valuetext", "90%");
  });

  it("copies to the clipboard", async () => {
    const user = userEvent.setup();
    const writeText = vi.fn().mockResolvedValue(undefined);
    Object.defineProperty(navigator, "clipboard", { value: { writeText }, configurable: true });
    renderPage(<CopyButton value="vl_uk_secret" label="Copy key" />);
    await user.click(screen.getByRole("button", { name: "Copy key" }));
    expect(writeText).toHaveBeenCalledWith("vl_uk_secret");
    expect(await screen.findByRole("button", { name: "Copied" })).toBeInTheDocument();
  });

  it("lists items in a named table with an actions column, or says there are none", async () => {
    function List({ items }: { items: string[] }) {
      const query = useQuery({ queryKey: ["kit-items", items], queryFn: () => Promise.resolve({ items }) });
      return (
        <ItemsTable query={query} noun="fruits" caption="Fruits" headers={["Name"]} emptyAction={<Button>Add fruit</Button>}>
          {(item) => (
            <TR key={item}>
              <TD>{item}</TD>
              <TD>
                <Button aria-label={`Eat ${item}`}>Eat</Button>
              </TD>
            </TR>
          )}
        </ItemsTable>
      );
    }
    const { unmount } = renderPage(<List items={["apple", "pear"]} />);
    const table = await screen.findByRole("table", { name: "Fruits" });
    expect(within(table).getAllByRole("columnheader").map((h) => h.textContent)).toEqual(["Name", "Actions"]);
    expect(within(table).getByRole("button", { name: "Eat pear" })).toBeInTheDocument();
    unmount();
    renderPage(<List items={[]} />);
    expect(await screen.findByText("No fruits yet")).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Add fruit" })).toBeInTheDocument();
  });
});
