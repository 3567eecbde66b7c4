// Events: the open ones first, each with its action (map this account, reconnect that
// credential, replay the run, enable the integration), then the ones dealt with.

import { useState } from "react";
import { get, post, query } from "../api";
import { Link } from "../router";
import { EntityPicker } from "../panels";
import { Async, Badge, ErrorBox, Notice, PageHeader, useAction, useLoad, when } from "../ui";
import { goToConsent, loadDestinations, reconnect, type Credential } from "./credentials";
import { fetchJson, loadIntegrations, type Integration } from "./integrations";
import type { Run } from "./runs";

type Event = {
  id: string;
  type: string;
  message: string;
  integrationId?: string;
  runId?: string;
  details?: Record<string, any>;
  createdAt: string;
  actioned: boolean;
  actionedAt?: string;
  actionedBy?: string;
};

const TITLES: Record<string, string> = {
  "integration.missingaccountmapping.error": "Account not mapped",
  "integration.validation.error": "Refused by the destination",
  "integration.authentication.error": "Reconnect needed",
  "integration.perform.error": "Delivery failed",
  "integration.disabled.error": "Integration disabled",
};

export function EventsPage() {
  const open = useLoad(() => get(`/api/events${query({ actioned: false, limit: "100" })}`), [], true);
  const done = useLoad(() => get(`/api/events${query({ actioned: true, limit: "25" })}`), [], true);
  const integrations = useLoad(loadIntegrations, [], true);
  const reload = () => {
    open.reload();
    done.reload();
    integrations.reload();
  };
  return (
    <>
      <PageHeader title="Events" />
      <section aria-labelledby="open-title">
        <h2 id="open-title">Open{open.data ? ` (${open.data.total})` : ""}</h2>
        <Async state={open} what="open events" empty={(p) => !p.items.length} emptyText="Nothing to act on.">
          {(p) => (
            <ul className="events">
              {p.items.map((e: Event) => (
                <EventCard
                  key={e.id}
                  event={e}
                  integration={integrations.data?.find((i) => i.id === e.integrationId)}
                  reload={reload}
                />
              ))}
            </ul>
          )}
        </Async>
      </section>
      <section aria-labelledby="done-title">
        <h2 id="done-title">Dealt with</h2>
        <Async state={done} what="events dealt with" empty={(p) => !p.items.length} emptyText="None yet.">
          {(p) => (
            <ul className="events done">
              {p.items.map((e: Event) => (
                <li key={e.id} className="card">
                  <Badge value="actioned" label={TITLES[e.type] || e.type} /> {e.message}
                  <div className="hint">
                    {when(e.createdAt)} · dealt with {when(e.actionedAt)}
                    {e.actionedBy ? ` by ${e.actionedBy}` : ""}
                  </div>
                </li>
              ))}
            </ul>
          )}
        </Async>
      </section>
    </>
  );
}

function EventCard(props: { event: Event; integration?: Integration; reload: () => void }) {
  const { event, integration } = props;
  const action = useAction();
  const [note, setNote] = useState<string | null>(null);
  const markDone = () => post(`/api/events/${event.id}/action`, {});
  const replay = () =>
    action.run(async () => {
      await post(`/api/runs/${event.runId}/replay`, {});
      await markDone();
      setNote("Replayed and marked dealt with.");
      props.reload();
    });
  const titleId = `event-${event.id}-title`;
  return (
    <li className="card event" aria-labelledby={titleId}>
      <h3 id={titleId}>
        <Badge value="open" label={TITLES[event.type] || event.type} /> {integration?.name || ""}
      </h3>
      <p>{event.message}</p>
      <p className="hint">
        {when(event.createdAt)}
        {event.runId ? (
          <>
            {" · "}
            <Link to={`/runs${query({ integrationId: event.integrationId, billId: event.details?.billId })}`}>run</Link>
          </>
        ) : null}
      </p>
      {event.type === "integration.missingaccountmapping.error" && integration && event.runId ? (
        <MapAccount event={event} integration={integration} onDone={props.reload} />
      ) : null}
      <div className="buttons">
        {event.type === "integration.authentication.error" && integration?.credentialId ? (
          <button
            type="button"
            className="primary"
            disabled={action.busy}
            onClick={() =>
              action.run(async () => {
                const credential = await get<Credential>(`/api/credentials/${integration.credentialId}`);
                if (credential.status === "COMPLETE") {
                  throw new Error(`${credential.name} is connected again: replay the run.`);
                }
                await (credential.status === "INCOMPLETE" ? goToConsent(credential.id) : reconnect(credential));
              })
            }
          >
            Reconnect the credential
          </button>
        ) : null}
        {event.type === "integration.disabled.error" && integration && !integration.enabled ? (
          <button
            type="button"
            className="primary"
            disabled={action.busy}
            onClick={() =>
              action.run(async () => {
                await post(`/api/integrations/${integration.id}/enable`, {});
                await markDone();
                props.reload();
              })
            }
          >
            Enable {integration.name}
          </button>
        ) : null}
        {event.runId ? (
          <button type="button" disabled={action.busy} onClick={replay}>
            Replay the run
          </button>
        ) : null}
        <button
          type="button"
          disabled={action.busy}
          onClick={() =>
            action.run(async () => {
              await markDone();
              props.reload();
            })
          }
        >
          Mark dealt with
        </button>
      </div>
      {note ? <Notice kind="ok">{note}</Notice> : null}
      {action.error ? <ErrorBox error={action.error} /> : null}
    </li>
  );
}

/** "Map this": the run's account, picked from the destination's customers, then replay. */
function MapAccount(props: { event: Event; integration: Integration; onDone: () => void }) {
  const { event, integration } = props;
  const run = useLoad(() => get<Run>(`/api/runs/${event.runId}`), [event.runId]);
  const destinations = useLoad(loadDestinations, []);
  const table = destinations.data?.find((d) => d.key === integration.destination)?.accountTable || "";
  const [externalId, setExternalId] = useState<string | undefined>();
  const action = useAction();
  const pickerId = `map-${event.id}`;
  if (!run.data || !table) return run.error ? <ErrorBox error={run.error} what="the run" /> : null;
  const endpoint = integration.connected ? `/api/integrations/${integration.id}/external/${table}` : null;
  return (
    <form
      className="inline map-account"
      onSubmit={(e) => {
        e.preventDefault();
        action.run(async () => {
          await post("/api/mappings", {
            m3terEntity: "Account",
            m3terId: run.data!.accountId,
            externalTable: table,
            externalId,
            integrationConfigId: integration.id,
          });
          await post(`/api/runs/${event.runId}/replay`, {});
          await post(`/api/events/${event.id}/action`, {});
          props.onDone();
        });
      }}
    >
      <div className="field grow">
        <label htmlFor={pickerId}>
          Map account <code>{run.data.accountId}</code> to a {table}
        </label>
        <EntityPicker id={pickerId} value={externalId} onChange={setExternalId} endpoint={endpoint} fetchJson={fetchJson} table={table} />
      </div>
      <button type="submit" className="primary" disabled={!externalId || action.busy}>
        Map and replay
      </button>
      {action.error ? <ErrorBox error={action.error} /> : null}
    </form>
  );
}
