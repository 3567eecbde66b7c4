// Integrations: the list (destination, connected credential, status), and the editor built from
// the published panels (global, Bill, destination) with their uiSchemas: create, load back,
// save with the version read, enable/disable, connect or change the credential, delete.

import { useRef, useState } from "react";
import { ApiError, del, get, post, put, request } from "../api";
import { Link, navigate } from "../router";
import { PanelForm, serverErrorSchema, type Panel, type PanelContext, type ServerError } from "../panels";
import { Async, Badge, Choice, ErrorBox, Notice, PageHeader, useAction, useLoad, when } from "../ui";
import { loadCredentials, loadDestinations, shortTitle, type Credential, type Destination } from "./credentials";

export type Integration = {
  id: string;
  name: string;
  destination: string;
  pluginInstalled: boolean;
  enabled: boolean;
  connected: boolean;
  credentialId?: string;
  version: number;
  consecutiveErrors?: number;
  config?: any;
  entityConfig?: any;
  destinationConfig?: any;
  updatedAt?: string;
};

export const loadIntegrations = () =>
  get<{ items: Integration[] }>("/api/integrations?limit=500").then((r) => r.items);

export const fetchJson: PanelContext["fetchJson"] = (url, init) =>
  request(init?.method || "GET", url, init?.body);

export function IntegrationsPage() {
  const integrations = useLoad(loadIntegrations, [], true);
  const credentials = useLoad(loadCredentials, [], true);
  const destinations = useLoad(loadDestinations, []);
  const titles = Object.fromEntries((destinations.data || []).map((d) => [d.key, d.title]));
  const byId = Object.fromEntries((credentials.data || []).map((c) => [c.id, c]));
  return (
    <>
      <PageHeader title="Integrations">
        <Link className="button primary" to="/integrations/new">
          New integration
        </Link>
      </PageHeader>
      <Async
        state={integrations}
        what="integrations"
        empty={(items) => items.length === 0}
        emptyText={
          <>
            <p>No integrations yet.</p>
            <p>
              An integration sends bills to one destination through a credential.{" "}
              <Link to="/credentials">Connect a credential</Link>, then{" "}
              <Link to="/integrations/new">create an integration</Link>.
            </p>
          </>
        }
      >
        {(items) => (
          <table>
            <caption className="sr-only">Integrations</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Destination</th>
                <th scope="col">Credential</th>
                <th scope="col">Status</th>
                <th scope="col">Account filter</th>
                <th scope="col">Changed</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {items.map((i) => (
                <IntegrationRow
                  key={i.id}
                  integration={i}
                  title={titles[i.destination] || i.destination}
                  credential={i.credentialId ? byId[i.credentialId] : undefined}
                  reload={integrations.reload}
                />
              ))}
            </tbody>
          </table>
        )}
      </Async>
    </>
  );
}

function IntegrationRow(props: {
  integration: Integration;
  title: string;
  credential?: Credential;
  reload: () => void;
}) {
  const i = props.integration;
  const action = useAction();
  const toggle = () =>
    action.run(async () => {
      await post(`/api/integrations/${i.id}/${i.enabled ? "disable" : "enable"}`, {});
      props.reload();
    });
  return (
    <>
      <tr>
        <td>
          <Link to={`/integrations/${i.id}`}>{i.name}</Link>
        </td>
        <td>
          {props.title}
          {!i.pluginInstalled ? <Badge value="ERROR" label="plugin not installed" /> : null}
        </td>
        <td>
          {props.credential ? (
            <>
              {props.credential.displayName}{" "}
              {props.credential.status !== "COMPLETE" ? <Badge value={props.credential.status} label="Reconnect needed" /> : null}
            </>
          ) : (
            <span className="hint">Not connected</span>
          )}
        </td>
        <td>
          <Badge value={i.enabled ? "enabled" : "disabled"} label={i.enabled ? "Enabled" : "Disabled"} />
          {i.consecutiveErrors ? <small className="hint"> {i.consecutiveErrors} errors in a row</small> : null}
        </td>
        <td>
          <code>{i.config?.accountFilter || "every account"}</code>
        </td>
        <td>{when(i.updatedAt)}</td>
        <td className="actions">
          <Link className="button" to={`/integrations/${i.id}`} aria-label={`Edit ${i.name}`}>
            Edit
          </Link>
          <button type="button" disabled={action.busy} onClick={toggle} aria-label={`${i.enabled ? "Disable" : "Enable"} ${i.name}`}>
            {i.enabled ? "Disable" : "Enable"}
          </button>
        </td>
      </tr>
      {action.error ? (
        <tr>
          <td colSpan={7}>
            <ErrorBox error={action.error} />
          </td>
        </tr>
      ) : null}
    </>
  );
}

type Forms = { config: Panel; entityConfig: Panel; destinationConfig: Panel };
type Values = { config: any; entityConfig: any; destinationConfig: any };
const PARTS = ["config", "entityConfig", "destinationConfig"] as const;

/** New (no id: pick the destination first) or existing (loaded back from its panel). */
export function IntegrationEditor(props: { id?: string }) {
  const destinations = useLoad(loadDestinations, []);
  const [destination, setDestination] = useState<string>("");
  if (props.id) return <ExistingIntegration id={props.id} />;
  return (
    <>
      <PageHeader title="New integration" />
      <Async state={destinations} what="destinations" empty={(d) => !d.length} emptyText="No destination plugin is installed.">
        {(items) => (
          <>
            <fieldset className="card">
              <legend>Destination</legend>
              {items.map((d) => (
                <Choice
                  key={d.key}
                  name="destination"
                  value={d.key}
                  checked={destination === d.key}
                  onChange={() => setDestination(d.key)}
                  title={d.title}
                  description={d.description}
                />
              ))}
            </fieldset>
            {destination ? <NewIntegration key={destination} destination={items.find((d) => d.key === destination)!} /> : null}
          </>
        )}
      </Async>
    </>
  );
}

function NewIntegration(props: { destination: Destination }) {
  const detail = useLoad(() => get(`/api/destinations/${props.destination.key}`), [props.destination.key]);
  const credentials = useLoad(loadCredentials, []);
  const [credentialId, setCredentialId] = useState("");
  const usable = (credentials.data || []).filter(
    (c) => c.destination === props.destination.key && c.status === "COMPLETE",
  );
  const save = async (values: Values) => {
    const created: Integration = await post("/api/integrations", {
      name: values.config?.name,
      destination: props.destination.key,
      ...values,
    });
    if (credentialId) {
      try {
        await put(`/api/integrations/${created.id}/credential`, { credentialId });
      } catch (e) {
        navigate(`/integrations/${created.id}?saved=1&connectError=${encodeURIComponent((e as Error).message)}`);
        return;
      }
    }
    navigate(`/integrations/${created.id}?saved=1`);
  };
  return (
    <Async state={detail} what="the destination's panels">
      {(d) => (
        <>
          <section className="card" aria-labelledby="connect-title">
            <h2 id="connect-title">Credential</h2>
            <CredentialSelect
              credentials={usable}
              value={credentialId}
              onChange={setCredentialId}
              destinationTitle={props.destination.title}
            />
          </section>
          <Panels
            forms={d.forms}
            initial={{ config: {}, entityConfig: {}, destinationConfig: {} }}
            destinationTitle={props.destination.title}
            params={{ credentialId: credentialId || undefined }}
            saveLabel="Create integration"
            onSave={save}
          />
        </>
      )}
    </Async>
  );
}

function CredentialSelect(props: {
  credentials: Credential[];
  value: string;
  onChange: (id: string) => void;
  destinationTitle: string;
}) {
  return (
    <div className="field">
      <label htmlFor="credential-select">Connected credential</label>
      <select id="credential-select" value={props.value} onChange={(e) => props.onChange(e.target.value)} aria-describedby="credential-select-help">
        <option value="">None yet</option>
        {props.credentials.map((c) => (
          <option key={c.id} value={c.id}>
            {c.displayName}
            {c.tenantName ? ` — ${c.tenantName}` : ""}
          </option>
        ))}
      </select>
      <p className="hint" id="credential-select-help">
        {props.credentials.length
          ? `The pickers below list ${props.destinationTitle}'s records through it.`
          : <>No connected {props.destinationTitle} credential: <Link to="/credentials">add one</Link>.</>}
      </p>
    </div>
  );
}

function ExistingIntegration(props: { id: string }) {
  const panel = useLoad(() => get(`/api/integrations/${props.id}/panel`), [props.id]);
  const destinations = useLoad(loadDestinations, []);
  const credentials = useLoad(loadCredentials, []);
  const params = new URLSearchParams(window.location.search);
  const [notice, setNotice] = useState<string | null>(params.get("saved") ? "Saved." : null);
  const action = useAction();
  return (
    <Async state={panel} what="the integration">
      {(p) => {
        const i: Integration = p.integration;
        const dest = destinations.data?.find((d) => d.key === i.destination);
        const title = dest?.title || i.destination;
        const usable = (credentials.data || []).filter((c) => c.destination === i.destination && c.status === "COMPLETE");
        const current = credentials.data?.find((c) => c.id === i.credentialId);
        const act = (fn: () => Promise<unknown>, done: string) =>
          action.run(async () => {
            await fn();
            setNotice(done);
            panel.reload();
            credentials.reload();
          });
        return (
          <>
            <PageHeader title={i.name}>
              <Badge value={i.enabled ? "enabled" : "disabled"} label={i.enabled ? "Enabled" : "Disabled"} />
              <button type="button" disabled={action.busy} onClick={() => act(() => post(`/api/integrations/${i.id}/${i.enabled ? "disable" : "enable"}`, {}), i.enabled ? "Disabled." : "Enabled.")}>
                {i.enabled ? "Disable" : "Enable"}
              </button>
              <Link className="button" to={`/mappings?integration=${i.id}`}>
                Mappings
              </Link>
              <Link className="button" to={`/runs?integrationId=${i.id}`}>
                Runs
              </Link>
              <button
                type="button"
                className="danger"
                disabled={action.busy}
                onClick={() =>
                  window.confirm(`Delete ${i.name} with its mappings, runs and events?`) &&
                  action.run(async () => {
                    await del(`/api/integrations/${i.id}`);
                    navigate("/integrations");
                  })
                }
              >
                Delete
              </button>
            </PageHeader>
            {notice ? <Notice kind="ok">{notice}</Notice> : null}
            {params.get("connectError") ? <Notice kind="error">Saved, but the credential was not connected: {params.get("connectError")}</Notice> : null}
            {action.error ? <ErrorBox error={action.error} /> : null}
            <p className="hint">
              {title} · version {i.version} · {i.id}
            </p>
            <section className="card" aria-labelledby="connect-title">
              <h2 id="connect-title">Credential</h2>
              <p>
                {current ? (
                  <>
                    Connected to <strong>{current.displayName}</strong>
                    {current.tenantName ? ` (${current.tenantName})` : ""}.
                  </>
                ) : (
                  "No credential connected: nothing can be delivered, and the pickers cannot list."
                )}
              </p>
              <ConnectCredential
                key={i.credentialId || "none"}
                credentials={usable}
                current={i.credentialId}
                title={title}
                onConnect={(credentialId) => act(() => put(`/api/integrations/${i.id}/credential`, { credentialId }), "Credential connected.")}
                onDisconnect={() => act(() => del(`/api/integrations/${i.id}/credential`), "Credential disconnected.")}
                busy={action.busy}
              />
            </section>
            <Panels
              key={i.version}
              forms={p.forms}
              initial={p.formData}
              destinationTitle={title}
              params={{}}
              saveLabel="Save changes"
              onSave={async (values) => {
                await put(`/api/integrations/${i.id}`, { version: i.version, name: values.config?.name, ...values });
                setNotice("Saved.");
                panel.reload();
              }}
            />
          </>
        );
      }}
    </Async>
  );
}

function ConnectCredential(props: {
  credentials: Credential[];
  current?: string;
  title: string;
  onConnect: (id: string) => void;
  onDisconnect: () => void;
  busy: boolean;
}) {
  const [chosen, setChosen] = useState(props.current || "");
  return (
    <form
      className="inline"
      onSubmit={(e) => {
        e.preventDefault();
        if (chosen) props.onConnect(chosen);
      }}
    >
      <CredentialSelect credentials={props.credentials} value={chosen} onChange={setChosen} destinationTitle={props.title} />
      <button type="submit" disabled={props.busy || !chosen || chosen === props.current}>
        {props.current ? "Change credential" : "Connect"}
      </button>
      {props.current ? (
        <button type="button" disabled={props.busy} onClick={props.onDisconnect}>
          Disconnect
        </button>
      ) : null}
    </form>
  );
}

/** The three panels, validated together and saved at once; the server's errors go back onto
 * their fields. */
function Panels(props: {
  forms: Forms;
  initial: Values;
  destinationTitle: string;
  params: Record<string, string | undefined>;
  saveLabel: string;
  onSave: (values: Values) => Promise<void>;
}) {
  const [values, setValues] = useState<Values>({
    config: props.initial.config || {},
    entityConfig: props.initial.entityConfig || {},
    destinationConfig: props.initial.destinationConfig || {},
  });
  const [serverErrors, setServerErrors] = useState<ServerError[]>([]);
  const [failure, setFailure] = useState<ApiError | null>(null);
  const [invalid, setInvalid] = useState(false);
  const [busy, setBusy] = useState(false);
  const refs = { config: useRef<any>(null), entityConfig: useRef<any>(null), destinationConfig: useRef<any>(null) };
  const context: PanelContext = { fetchJson, params: props.params };
  const headings = { config: "General", entityConfig: "Bill", destinationConfig: props.destinationTitle };

  const save = async (e: React.FormEvent) => {
    e.preventDefault();
    setFailure(null);
    setServerErrors([]);
    const ok = PARTS.map((part) => refs[part].current?.validateForm() ?? true).every(Boolean);
    setInvalid(!ok);
    if (!ok) return;
    setBusy(true);
    try {
      await props.onSave(values);
    } catch (err) {
      const apiError = err as ApiError;
      setServerErrors(apiError.errors || []);
      setFailure(apiError);
    } finally {
      setBusy(false);
    }
  };

  const split = PARTS.map((part) => serverErrorSchema(serverErrors, part));
  const nameErrors = serverErrors.filter((x) => x.path === "/name");
  const unplaced = serverErrors.filter((x) => !split.some((s) => s.placed.includes(x)) && !nameErrors.includes(x));
  return (
    <form onSubmit={save} className="panels" noValidate>
      {PARTS.map((part, index) => {
        let extra: any = split[index].errorSchema;
        if (part === "config" && nameErrors.length) {
          extra = { ...extra, name: { __errors: nameErrors.map((x) => x.message) } };
        }
        return (
          <section key={part} className="card panel" aria-labelledby={`${part}-heading`}>
            <h2 id={`${part}-heading`}>{headings[part]}</h2>
            <PanelForm
              ref={refs[part]}
              panel={props.forms[part]}
              formData={values[part]}
              onChange={(data) => setValues((v) => ({ ...v, [part]: data }))}
              context={context}
              extraErrors={Object.keys(extra).length ? extra : undefined}
              idPrefix={part}
            />
          </section>
        );
      })}
      {invalid ? <Notice kind="error">Some fields need attention: see the messages beside them.</Notice> : null}
      {failure ? (
        <div className="notice error" role="alert">
          <p>{failure.message}{serverErrors.length ? ": see the messages beside the fields." : ""}</p>
          {unplaced.length ? (
            <ul>
              {unplaced.map((x, i) => (
                <li key={i}>
                  <code>{x.path}</code> {x.message}
                </li>
              ))}
            </ul>
          ) : null}
        </div>
      ) : null}
      <div className="buttons sticky">
        <button type="submit" className="primary" disabled={busy}>
          {busy ? "Saving…" : props.saveLabel}
        </button>
      </div>
    </form>
  );
}

export { shortTitle };
