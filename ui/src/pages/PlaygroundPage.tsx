import { useState } from "react";
import { Card, CardContent, EmptyState, Field, Input, PageHeader, QueryView, Tabs, TabsContent, TabsList, TabsTrigger } from "../components/ui";
import { ChatPanel } from "../features/playground/ChatPanel";
import { CompletionPanel } from "../features/playground/CompletionPanel";
import { EmbeddingsPanel } from "../features/playground/EmbeddingsPanel";
import { useChatSession, useCompletionSession, useEmbeddingsSession } from "../features/playground/sessions";
import type { ModelBrief } from "../features/playground/types";
import { useAvailableModels } from "../features/playground/useModels";

const ofType = (models: readonly ModelBrief[], type: string) => models.filter((m) => m.type === type);

/**
 * Try the models through the same-origin tunnel `/api/v1/playground/*`. Each tab's state is held here so
 * it survives switching tabs; none of it leaves the page's memory.
 */
export default function PlaygroundPage() {
  const models = useAvailableModels();
  const chat = useChatSession();
  const completion = useCompletionSession();
  const embeddings = useEmbeddingsSession();
  const [tab, setTab] = useState("chat");
  const [apiKey, setApiKey] = useState("");

  return (
    <>
      <PageHeader
        title="Playground"
        description="Chat with, complete and embed text with the models you may use. Nothing you type here is saved: it lives in this page until you leave it."
      />
      <div className="flex flex-col gap-6">
        <Card>
          <CardContent>
            <Field
              label="API key override"
              hint="Optional. Sends the requests with this key (as a Bearer token) instead of your session, to try a key's limits and access. Kept in this page only."
            >
              <Input
                type="password"
                autoComplete="off"
                spellCheck={false}
                placeholder="vl_..."
                value={apiKey}
                onChange={(e) => setApiKey(e.target.value)}
                className="max-w-md font-mono"
              />
            </Field>
          </CardContent>
        </Card>
        <QueryView
          query={models}
          loadingLabel="Loading models"
          errorTitle="Could not load the models you may use"
          isEmpty={(data) => data.models.length === 0}
          empty={
            <EmptyState
              title="No models available"
              description="Your keys may not use any model yet. An administrator can grant your organization or team access to one."
            />
          }
        >
          {(data) => (
            <Tabs value={tab} onValueChange={setTab}>
              <TabsList aria-label="Playground mode">
                <TabsTrigger value="chat">Chat</TabsTrigger>
                <TabsTrigger value="completion">Completion</TabsTrigger>
                <TabsTrigger value="embeddings">Embeddings</TabsTrigger>
              </TabsList>
              <TabsContent value="chat">
                <ChatPanel session={chat} models={ofType(data.models, "chat")} apiKey={apiKey} />
              </TabsContent>
              <TabsContent value="completion">
                <CompletionPanel session={completion} models={ofType(data.models, "completion")} apiKey={apiKey} />
              </TabsContent>
              <TabsContent value="embeddings">
                <EmbeddingsPanel session={embeddings} models={ofType(data.models, "embedding")} apiKey={apiKey} />
              </TabsContent>
            </Tabs>
          )}
        </QueryView>
      </div>
    </>
  );
}
