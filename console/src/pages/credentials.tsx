// Credentials: the list (NAME (Incomplete) until a consent completes, Reconnect needed when a
// refresh was refused), the wizard that makes one (name → entity type → destination →
// authenticate at the provider → back here), the choice of organisation when a consent
// covered several, test and delete.

import { useEffect, useRef, useState } from "react";
import { del, get, post, put } from "../api";
import { navigate, useLocation } from "../router";
import { Async, Badge, Choice, ErrorBox, Notice, PageHeader, useAction, useLoad, when } from "../ui";

export type Destination = {
  key: string;
  title: string;
  description?: string;
  entityTypes: string[];
  accountTable?: string;
  itemTable?: string;
  auth?: string;
};

export type Credential = {
  id: string;
  name: string;
  displayName: string;
  destination: string;
  entityType?: string;
  status: "INCOMPLETE" | "COMPLETE" | "NEEDS_RECONNECT";
  createdAt?: string;
  expiresAt?: string;
  tenantName?: string;
  tenantId?: string;
};

export const loadDestinations = () =>
  get<{ items: Destination[] }>("/api/destinations").then((r) => r.items);

export const loadCredentials = () =>
  get<{ items: Credential[] }>("/api/credentials?limit=500").then((r) => r.items);

/** Start (or restart) a consent: the browser goes to the provider's page. */
export async function goToConsent(credentialId: string): Promise<void> {
  const { authorizationUrl } = await post(`/api/credentials/${credentialId}/authorize`, {});
  window.location.assign(authorizationUrl);
}

const REPLACES = "billbridge.replaces.";

/** Reconnect a credential whose refresh was refused. Credentials are never edited: a new one
 * with the same name goes through the consent, and when it completes the integrations that used
 * the old one are connected to it and the old one is deleted (finishReconnect). */
export async function reconnect(old: Credential): Promise<void> {
  const created = await post("/api/credentials", { name: old.name, destination: old.destination });
  sessionStorage.setItem(REPLACES + created.credential.id, old.id);
  window.location.assign(created.authorizationUrl);
}

/** After the new credential's consent: move the old one's integrations to it. */
export async function finishReconnect(credentialId: string): Promise<number | null> {
  const old = sessionStorage.getItem(REPLACES + credentialId);
  if (!old) return null;
  sessionStorage.removeItem(REPLACES + credentialId);
  const { items } = await get<{ items: { id: string; credentialId?: string }[] }>(
    "/api/integrations?limit=500",
  );
  const moved = items.filter((i) => i.credentialId === old);
  for (const integration of moved) {
    await put(`/api/integrations/${integration.id}/credential`, { credentialId });
  }
  await del(`/api/credentials/${old}`);
  return moved.length;
}

export function CredentialsPage() {
  const location = useLocation();
  const [adding, setAdding] = useState(false);
  const connected = location.search.get("connected");
  const choose = location.search.get("choose");
  const credentials = useLoad(loadCredentials, [connected, choose], true);
  const destinations = useLoad(loadDestinations, []);
  const titles = Object.fromEntries((destinations.data || []).map((d) => [d.key, d.title]));

  // An unfinished consent disappears when its 10 minutes are up: keep the list current.
  const pending = (credentials.data || []).some((c) => c.status === "INCOMPLETE");
  useEffect(() => {
    if (!pending) return;
    const timer = setInterval(credentials.reload, 5000);
    return () => clearInterval(timer);
  }, [pending]);

  // A reconnection finishes here: the integrations move to the new consent.
  const [moved, setMoved] = useState<number | null>(null);
  const [moveError, setMoveError] = useState<Error | null>(null);
  useEffect(() => {
    if (!connected) return;
    finishReconnect(connected)
      .then((n) => {
        if (n !== null) {
          setMoved(n);
          credentials.reload();
        }
      })
      .catch(setMoveError);
  }, [connected]);

  const back = connected && credentials.data?.find((c) => c.id === connected);
  return (
    <>
      <PageHeader title="Credentials">
        {!adding ? (
          <button type="button" className="primary" onClick={() => setAdding(true)}>
            Add credential
          </button>
        ) : null}
      </PageHeader>
      {back ? (
        <Notice kind="ok">
          {back.name} is connected to {back.tenantName || titles[back.destination]}.{" "}
          <button type="button" className="link" onClick={() => navigate("/integrations/new")}>
            Create an integration with it
          </button>
        </Notice>
      ) : null}
      {moved !== null ? (
        <Notice kind="ok">Reconnected: {moved} integration(s) now deliver through the new consent.</Notice>
      ) : null}
      {moveError ? <ErrorBox error={moveError} /> : null}
      {choose ? (
        <TenantChoice credentialId={choose} onDone={() => navigate(`/credentials?connected=${choose}`, true)} />
      ) : null}
      {adding ? (
        <CredentialWizard
          destinations={destinations.data || []}
          onCancel={() => setAdding(false)}
        />
      ) : null}
      <Async
        state={credentials}
        what="credentials"
        empty={(items) => items.length === 0}
        emptyText={
          <>
            <p>No credentials yet.</p>
            <p>A credential is a consent given at QuickBooks or Xero; integrations deliver through it.</p>
          </>
        }
      >
        {(items) => (
          <table>
            <caption className="sr-only">Credentials</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Destination</th>
                <th scope="col">Connected to</th>
                <th scope="col">Status</th>
                <th scope="col">Created</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {items.map((c) => (
                <CredentialRow
                  key={c.id}
                  credential={c}
                  title={titles[c.destination] || c.destination}
                  reload={credentials.reload}
                />
              ))}
            </tbody>
          </table>
        )}
      </Async>
    </>
  );
}

function CredentialRow(props: { credential: Credential; title: string; reload: () => void }) {
  const c = props.credential;
  const action = useAction();
  const [tested, setTested] = useState<{ ok: boolean; message: string } | null>(null);
  const remove = () =>
    action.run(async () => {
      if (!window.confirm(`Delete ${c.name}? Integrations using it are disconnected.`)) return;
      await del(`/api/credentials/${c.id}`);
      props.reload();
    });
  return (
    <>
      <tr>
        <td>{c.displayName}</td>
        <td>{props.title}</td>
        <td>{c.tenantName || "—"}</td>
        <td>
          <Badge
            value={c.status}
            label={
              c.status === "NEEDS_RECONNECT"
                ? "Reconnect needed"
                : c.status === "INCOMPLETE"
                  ? "Incomplete"
                  : "Connected"
            }
          />
          {c.status === "INCOMPLETE" && c.expiresAt ? (
            <small className="hint"> until {when(c.expiresAt)}</small>
          ) : null}
        </td>
        <td>{when(c.createdAt)}</td>
        <td className="actions">
          {c.status === "INCOMPLETE" ? (
            <button type="button" disabled={action.busy} onClick={() => action.run(() => goToConsent(c.id))}>
              Continue consent
            </button>
          ) : c.status === "NEEDS_RECONNECT" ? (
            <button type="button" className="primary" disabled={action.busy} onClick={() => action.run(() => reconnect(c))}>
              Reconnect
            </button>
          ) : (
            <button
              type="button"
              disabled={action.busy}
              onClick={() =>
                action.run(async () => setTested(await post(`/api/credentials/${c.id}/test`, {})))
              }
            >
              Test
            </button>
          )}
          <button type="button" className="danger" disabled={action.busy} onClick={remove} aria-label={`Delete ${c.name}`}>
            Delete
          </button>
        </td>
      </tr>
      {tested || action.error ? (
        <tr>
          <td colSpan={6}>
            {tested ? (
              <Notice kind={tested.ok ? "ok" : "error"}>
                {c.name}: {tested.message}
              </Notice>
            ) : null}
            {action.error ? <ErrorBox error={action.error} /> : null}
          </td>
        </tr>
      ) : null}
    </>
  );
}

function TenantChoice(props: { credentialId: string; onDone: () => void }) {
  const tenants = useLoad(
    () => get<{ items: { tenantId: string; name?: string }[] }>(`/api/credentials/${props.credentialId}/tenants`),
    [props.credentialId],
  );
  const [chosen, setChosen] = useState("");
  const action = useAction();
  return (
    <section className="card" aria-labelledby="tenant-title">
      <h2 id="tenant-title">Choose the organisation</h2>
      <p>The consent covered several organisations; this credential delivers to one.</p>
      <Async state={tenants} what="organisations" empty={(t) => !t.items.length} emptyText="Nothing to choose: the consent is complete or has expired.">
        {(t) => (
          <form
            onSubmit={(e) => {
              e.preventDefault();
              action.run(async () => {
                await post(`/api/credentials/${props.credentialId}/tenant`, { tenantId: chosen });
                props.onDone();
              });
            }}
          >
            <fieldset>
              <legend>Organisation</legend>
              {t.items.map((o) => (
                <label key={o.tenantId} className="choice">
                  <input
                    type="radio"
                    name="tenant"
                    value={o.tenantId}
                    checked={chosen === o.tenantId}
                    onChange={() => setChosen(o.tenantId)}
                  />{" "}
                  {o.name || o.tenantId}
                </label>
              ))}
            </fieldset>
            {action.error ? <ErrorBox error={action.error} /> : null}
            <button type="submit" className="primary" disabled={!chosen || action.busy}>
              Use this organisation
            </button>
          </form>
        )}
      </Async>
    </section>
  );
}

const STEPS = ["Name", "Entity type", "Destination", "Authenticate"];

export function CredentialWizard(props: { destinations: Destination[]; onCancel: () => void }) {
  const [step, setStep] = useState(0);
  const [name, setName] = useState("");
  const [entityType, setEntityType] = useState("");
  const [destination, setDestination] = useState("");
  const action = useAction();
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), [step]);

  const entityTypes = [...new Set(props.destinations.flatMap((d) => d.entityTypes))];
  const offered = props.destinations.filter((d) => d.entityTypes.includes(entityType));
  const chosen = props.destinations.find((d) => d.key === destination);
  const valid = [name.trim().length > 0, Boolean(entityType), Boolean(chosen), true][step];

  const next = (e: React.FormEvent) => {
    e.preventDefault();
    if (!valid) return;
    if (step < 3) {
      setStep(step + 1);
      return;
    }
    action.run(async () => {
      const created = await post("/api/credentials", { name: name.trim(), destination });
      window.location.assign(created.authorizationUrl);
    });
  };
  const stepId = "wizard-step";
  return (
    <section className="card wizard" aria-labelledby={stepId}>
      <ol className="steps" aria-label="Steps">
        {STEPS.map((s, i) => (
          <li key={s} aria-current={i === step ? "step" : undefined} className={i < step ? "done" : ""}>
            {s}
          </li>
        ))}
      </ol>
      <form onSubmit={next}>
        <h2 id={stepId} tabIndex={-1} ref={heading}>
          Step {step + 1} of {STEPS.length}: {STEPS[step]}
        </h2>
        {step === 0 ? (
          <div className="field">
            <label htmlFor="credential-name">Credential name</label>
            <input
              id="credential-name"
              value={name}
              maxLength={200}
              required
              aria-describedby="credential-name-help"
              onChange={(e) => setName(e.target.value)}
            />
            <p className="hint" id="credential-name-help">
              How you will recognise it, e.g. “Xero UK”.
            </p>
          </div>
        ) : null}
        {step === 1 ? (
          <fieldset>
            <legend>Which m3ter entity does it deliver?</legend>
            {entityTypes.map((t) => (
              <Choice key={t} name="entityType" value={t} checked={entityType === t} onChange={() => setEntityType(t)} title={t} />
            ))}
          </fieldset>
        ) : null}
        {step === 2 ? (
          <fieldset>
            <legend>Destination</legend>
            {offered.map((d) => (
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
        ) : null}
        {step === 3 && chosen ? (
          <div>
            <p>
              <strong>{name}</strong> will deliver {entityType}s to <strong>{chosen.title}</strong>. You
              will be sent to {chosen.title} to give consent, then brought back here. Until you
              finish, it shows as “{name} (Incomplete)” for 10 minutes.
            </p>
          </div>
        ) : null}
        {action.error ? <ErrorBox error={action.error} /> : null}
        <div className="buttons">
          <button type="button" onClick={props.onCancel}>
            Cancel
          </button>
          {step > 0 ? (
            <button type="button" onClick={() => setStep(step - 1)}>
              Back
            </button>
          ) : null}
          <button type="submit" className="primary" disabled={!valid || action.busy}>
            {step < 3 ? "Next" : `Go to ${shortTitle(chosen?.title || "")}`}
          </button>
        </div>
      </form>
    </section>
  );
}

/** "QuickBooks Online (sandbox)" → "QuickBooks", "Xero" → "Xero": the button says where. */
export function shortTitle(title: string): string {
  return title.replace(/\s*\(.*\)$/, "").replace(/\s+Online$/, "");
}
