// Mappings: per integration and m3ter entity (Account → the destination's customer table,
// Product → its item table), a table of mappings with the destination's names, a row to add
// one by picking from the destination's own list, and a bulk import (all or nothing, errors on
// their lines).

import { useState } from "react";
import { ApiError, del, get, post, query } from "../api";
import { navigate, useLocation } from "../router";
import { EntityPicker } from "../panels";
import { Async, ErrorBox, Notice, PageHeader, useAction, useLoad, when } from "../ui";
import { loadDestinations, type Destination } from "./credentials";
import { fetchJson, loadIntegrations, type Integration } from "./integrations";

type Mapping = {
  id: string;
  m3terEntity: string;
  m3terId: string;
  externalSystem: string;
  externalTable: string;
  externalId: string;
  integrationConfigId?: string;
  createdAt?: string;
};

export function MappingsPage() {
  const location = useLocation();
  const integrations = useLoad(loadIntegrations, []);
  const destinations = useLoad(loadDestinations, []);
  const selected = location.search.get("integration") || "";
  const entity = location.search.get("entity") || "Account";
  const go = (integration: string, e: string) =>
    navigate(`/mappings${query({ integration, entity: e })}`, true);
  return (
    <>
      <PageHeader title="Mappings" />
      <p className="hint">
        Each m3ter account and product is mapped to a record of the destination: its customer or
        contact, its item. Pick them from the destination's own lists.
      </p>
      <Async
        state={integrations}
        what="integrations"
        empty={(items) => !items.length}
        emptyText="Mappings belong to integrations: create an integration first."
      >
        {(items) => {
          const integration = items.find((i) => i.id === selected);
          const destination = destinations.data?.find((d) => d.key === integration?.destination);
          return (
            <>
              <div className="filters">
                <div className="field">
                  <label htmlFor="mapping-integration">Integration</label>
                  <select id="mapping-integration" value={selected} onChange={(e) => go(e.target.value, entity)}>
                    <option value="">Choose an integration</option>
                    {items.map((i) => (
                      <option key={i.id} value={i.id}>
                        {i.name}
                      </option>
                    ))}
                  </select>
                </div>
              </div>
              {integration && destination ? (
                <>
                  <div role="tablist" aria-label="m3ter entity" className="tabs">
                    {["Account", "Product"].map((e) => (
                      <button
                        key={e}
                        type="button"
                        role="tab"
                        aria-selected={e === entity}
                        onClick={() => go(selected, e)}
                      >
                        {e}s
                      </button>
                    ))}
                  </div>
                  <EntityMappings
                    key={`${selected}-${entity}`}
                    integration={integration}
                    destination={destination}
                    entity={entity}
                    prefill={location.search.get("m3terId") || ""}
                  />
                </>
              ) : (
                <div className="empty">Choose an integration to see its mappings.</div>
              )}
            </>
          );
        }}
      </Async>
    </>
  );
}

function EntityMappings(props: {
  integration: Integration;
  destination: Destination;
  entity: string;
  prefill: string;
}) {
  const { integration, destination, entity } = props;
  const table = (entity === "Account" ? destination.accountTable : destination.itemTable) || "";
  const endpoint = integration.connected ? `/api/integrations/${integration.id}/external/${table}` : null;
  const mappings = useLoad(async () => {
    const page = await get<{ items: Mapping[]; total: number }>(
      `/api/mappings${query({ integrationId: integration.id, m3terEntity: entity, limit: "500" })}`,
    );
    const ids = [...new Set(page.items.map((m) => m.externalId))];
    let names: Record<string, string | null> = {};
    if (ids.length && endpoint) {
      try {
        names = (await get(`${endpoint}/names${query({ ids })}`)).names;
      } catch {
        /* names are a nicety: the ids still show */
      }
    }
    return { ...page, names };
  }, [integration.id, entity]);
  const action = useAction();
  return (
    <section aria-labelledby="mapping-list-title">
      <h2 id="mapping-list-title">
        {entity}s → {destination.title} {table}
      </h2>
      {!integration.connected ? (
        <Notice kind="info">Connect a credential to {integration.name} to pick from {destination.title}'s lists.</Notice>
      ) : null}
      <AddMapping
        integration={integration}
        entity={entity}
        table={table}
        endpoint={endpoint}
        prefill={props.prefill}
        onAdded={mappings.reload}
      />
      {action.error ? <ErrorBox error={action.error} /> : null}
      <Async state={mappings} what="mappings" empty={(m) => !m.items.length} emptyText={`No ${entity.toLowerCase()} mappings for ${integration.name} yet.`}>
        {(m) => (
          <table>
            <caption className="sr-only">{entity} mappings</caption>
            <thead>
              <tr>
                <th scope="col">m3ter {entity.toLowerCase()} id</th>
                <th scope="col">{table}</th>
                <th scope="col">Created</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {m.items.map((row) => (
                <tr key={row.id}>
                  <td>
                    <code>{row.m3terId}</code>
                  </td>
                  <td>
                    {m.names[row.externalId] ? `${m.names[row.externalId]} ` : ""}
                    <small className="hint">{row.externalId}</small>
                  </td>
                  <td>{when(row.createdAt)}</td>
                  <td className="actions">
                    <button
                      type="button"
                      className="danger"
                      aria-label={`Delete the mapping of ${row.m3terId}`}
                      disabled={action.busy}
                      onClick={() =>
                        action.run(async () => {
                          await del(`/api/mappings/${row.id}`);
                          mappings.reload();
                        })
                      }
                    >
                      Delete
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Async>
      <BulkImport integration={integration} entity={entity} table={table} onDone={mappings.reload} />
    </section>
  );
}

function AddMapping(props: {
  integration: Integration;
  entity: string;
  table: string;
  endpoint: string | null;
  prefill: string;
  onAdded: () => void;
}) {
  const [m3terId, setM3terId] = useState(props.prefill);
  const [externalId, setExternalId] = useState<string | undefined>();
  const action = useAction();
  const [added, setAdded] = useState<string | null>(null);
  return (
    <form
      className="card inline add-mapping"
      aria-label={`Add a ${props.entity.toLowerCase()} mapping`}
      onSubmit={(e) => {
        e.preventDefault();
        action.run(async () => {
          await post("/api/mappings", {
            m3terEntity: props.entity,
            m3terId: m3terId.trim(),
            externalTable: props.table,
            externalId,
            integrationConfigId: props.integration.id,
          });
          setAdded(m3terId.trim());
          setM3terId("");
          setExternalId(undefined);
          props.onAdded();
        });
      }}
    >
      <div className="field">
        <label htmlFor="mapping-m3ter-id">m3ter {props.entity.toLowerCase()} id</label>
        <input id="mapping-m3ter-id" value={m3terId} onChange={(e) => setM3terId(e.target.value)} required />
      </div>
      <div className="field grow">
        <label htmlFor="mapping-external">{props.table}</label>
        <EntityPicker
          id="mapping-external"
          value={externalId}
          onChange={setExternalId}
          endpoint={props.endpoint}
          fetchJson={fetchJson}
          table={props.table}
          required
        />
      </div>
      <button type="submit" className="primary" disabled={action.busy || !m3terId.trim() || !externalId}>
        Add mapping
      </button>
      {added ? <p className="ok" role="status">Mapped {added}.</p> : null}
      {action.error ? <ErrorBox error={action.error} /> : null}
    </form>
  );
}

function BulkImport(props: { integration: Integration; entity: string; table: string; onDone: () => void }) {
  const [text, setText] = useState("");
  const [result, setResult] = useState<string | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const lines = text.split("\n").map((l) => l.trim()).filter(Boolean);
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setResult(null);
    const rows = lines.map((line) => {
      const [m3terId, externalId] = line.split(/[,;\t]/).map((x) => (x || "").trim());
      return {
        m3terEntity: props.entity,
        m3terId,
        externalTable: props.table,
        externalId,
        integrationConfigId: props.integration.id,
      };
    });
    try {
      const done = await post("/api/mappings:import", rows);
      setResult(`Imported ${done?.items?.length ?? rows.length} mappings.`);
      setText("");
      props.onDone();
    } catch (err) {
      setError(err as ApiError);
    } finally {
      setBusy(false);
    }
  };
  // Errors come back at /<row>/<field>: say which line.
  const lineErrors = (error?.errors || []).map((x) => {
    const m = /^\/(\d+)(\/.*)?$/.exec(x.path);
    return m ? `Line ${Number(m[1]) + 1}${m[2] ? ` (${m[2].slice(1)})` : ""}: ${x.message}` : `${x.path} ${x.message}`;
  });
  return (
    <details className="card bulk">
      <summary>Bulk import</summary>
      <form onSubmit={submit}>
        <label htmlFor="bulk-import">
          One mapping a line: m3ter {props.entity.toLowerCase()} id, {props.table} id
        </label>
        <textarea
          id="bulk-import"
          className="code"
          rows={5}
          value={text}
          onChange={(e) => setText(e.target.value)}
          placeholder={`acc-1,58\nacc-2,61`}
        />
        <p className="hint">All or nothing: if one line is refused, none is imported.</p>
        {error ? (
          <div className="notice error" role="alert">
            <p>{error.message}</p>
            <ul>
              {lineErrors.map((l, i) => (
                <li key={i}>{l}</li>
              ))}
            </ul>
          </div>
        ) : null}
        {result ? <Notice kind="ok">{result}</Notice> : null}
        <button type="submit" disabled={busy || !lines.length}>
          Import {lines.length || ""} mappings
        </button>
      </form>
    </details>
  );
}
