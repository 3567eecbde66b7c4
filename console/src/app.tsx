// The console's shell: sign-in with an API key, navigation, the live event stream, the pages.

import { useEffect, useState } from "react";
import { apiKey, get, onUnauthorized, setApiKey, stream } from "./api";
import { Link, Router, match, navigate, useLocation } from "./router";
import { LiveContext } from "./ui";
import { CredentialsPage } from "./pages/credentials";
import { IntegrationEditor, IntegrationsPage } from "./pages/integrations";
import { MappingsPage } from "./pages/mappings";
import { BillsPage } from "./pages/bills";
import { RunsPage } from "./pages/runs";
import { EventsPage } from "./pages/events";

const NAV = [
  ["/integrations", "Integrations"],
  ["/credentials", "Credentials"],
  ["/mappings", "Mappings"],
  ["/bills", "Bills"],
  ["/runs", "Runs"],
  ["/events", "Events"],
] as const;

export function App() {
  const [signedIn, setSignedIn] = useState(Boolean(apiKey()));
  useEffect(() => onUnauthorized(() => setSignedIn(false)), []);
  return (
    <Router>
      {signedIn ? (
        <Shell onSignOut={() => (setApiKey(null), setSignedIn(false))} />
      ) : (
        <SignIn onSignedIn={() => setSignedIn(true)} />
      )}
    </Router>
  );
}

function SignIn(props: { onSignedIn: () => void }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    document.title = "Sign in · billbridge";
  }, []);
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setApiKey(key.trim());
    try {
      await get("/api/destinations");
      props.onSignedIn();
    } catch (err) {
      setApiKey(null);
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main className="signin" id="main">
      <h1>billbridge console</h1>
      <form onSubmit={submit}>
        <label htmlFor="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autoComplete="off"
          value={key}
          onChange={(e) => setKey(e.target.value)}
          aria-describedby="api-key-help"
          required
        />
        <p id="api-key-help" className="hint">
          An admin key configures; a read key only looks. Make one with{" "}
          <code>billbridge api-keys create --scope admin</code>, or start the server with{" "}
          <code>billbridge serve --console-key</code> and open the URL it prints. The key is kept
          in this tab only (sessionStorage) and sent as a header.
        </p>
        {error ? (
          <p className="error" role="alert">
            {error}
          </p>
        ) : null}
        <button type="submit" className="primary" disabled={busy || !key.trim()}>
          Sign in
        </button>
      </form>
    </main>
  );
}

function Shell(props: { onSignOut: () => void }) {
  const location = useLocation();
  const [tick, setTick] = useState(0);
  const [live, setLive] = useState(false);
  useEffect(() => {
    const abort = new AbortController();
    stream(() => setTick((t) => t + 1), setLive, abort.signal);
    return () => abort.abort();
  }, []);
  useEffect(() => {
    if (location.path === "/") navigate("/integrations", true);
    document.getElementById("page-title")?.focus({ preventScroll: true });
  }, [location.path]);
  return (
    <LiveContext.Provider value={tick}>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">billbridge</span>
        <nav aria-label="Main">
          <ul>
            {NAV.map(([to, label]) => (
              <li key={to}>
                <Link
                  to={to}
                  aria-current={location.path.startsWith(to) ? "page" : undefined}
                >
                  {label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <span className={`live ${live ? "on" : ""}`} title="Live updates from /api/stream">
          {live ? "● live" : "○ offline"}
        </span>
        <button type="button" className="link" onClick={props.onSignOut}>
          Sign out
        </button>
      </header>
      <main id="main">{page(location.path)}</main>
    </LiveContext.Provider>
  );
}

function page(path: string) {
  let m: Record<string, string> | null;
  if (path === "/" || path === "/integrations") return <IntegrationsPage />;
  if (path === "/integrations/new") return <IntegrationEditor />;
  if ((m = match("/integrations/:id", path))) return <IntegrationEditor id={m.id} />;
  if (path === "/credentials") return <CredentialsPage />;
  if (path === "/mappings") return <MappingsPage />;
  if (path === "/bills") return <BillsPage />;
  if (path === "/runs") return <RunsPage />;
  if (path === "/events") return <EventsPage />;
  return (
    <div className="empty">
      <h1 tabIndex={-1} id="page-title">
        Not found
      </h1>
      <p>
        There is no page at <code>{path}</code>. <Link to="/integrations">Integrations</Link>
      </p>
    </div>
  );
}
