// Small pieces every page uses: loading a resource (with loading, error and empty states),
// notices, status badges, dates.

import { createContext, useCallback, useContext, useEffect, useRef, useState } from "react";
import { ApiError } from "./api";

export type Loaded<T> = {
  data: T | undefined;
  error: ApiError | null;
  loading: boolean;
  reload: () => void;
};

/** Loads `fn()` now and whenever `deps` change (or `reload()` / a live update asks). */
export function useLoad<T>(fn: () => Promise<T>, deps: unknown[], live = false): Loaded<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<ApiError | null>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const liveTick = useContext(LiveContext);
  const generation = useRef(0);
  useEffect(() => {
    const mine = ++generation.current;
    setLoading(true);
    fn()
      .then((value) => {
        if (mine !== generation.current) return;
        setData(value);
        setError(null);
      })
      .catch((e) => mine === generation.current && setError(e as ApiError))
      .finally(() => mine === generation.current && setLoading(false));
  }, [...deps, tick, live ? liveTick : 0]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload };
}

/** Bumped on every item of the event stream: pages loaded with `live` refresh. */
export const LiveContext = createContext(0);

export function Async<T>(props: {
  state: Loaded<T>;
  what: string;
  empty?: (data: T) => boolean;
  emptyText?: React.ReactNode;
  children: (data: T) => React.ReactNode;
}) {
  const { state } = props;
  if (state.error && state.data === undefined) {
    return <ErrorBox error={state.error} what={props.what} retry={state.reload} />;
  }
  if (state.data === undefined) {
    return (
      <p className="loading" role="status">
        Loading {props.what}…
      </p>
    );
  }
  if (props.empty && props.empty(state.data)) {
    return <div className="empty">{props.emptyText ?? `No ${props.what} yet.`}</div>;
  }
  return (
    <>
      {state.error ? <ErrorBox error={state.error} what={props.what} retry={state.reload} /> : null}
      {props.children(state.data)}
    </>
  );
}

export function ErrorBox(props: { error: ApiError | Error; what?: string; retry?: () => void }) {
  const e = props.error as ApiError;
  return (
    <div className="notice error" role="alert">
      <p>
        {props.what ? `Could not load ${props.what}: ` : ""}
        {e.message}
      </p>
      {e.errors && e.errors.length ? (
        <ul>
          {e.errors.map((x, i) => (
            <li key={i}>
              {x.path ? <code>{x.path}</code> : null} {x.message}
            </li>
          ))}
        </ul>
      ) : null}
      {props.retry ? (
        <button type="button" onClick={props.retry}>
          Try again
        </button>
      ) : null}
    </div>
  );
}

export function Notice(props: { kind?: "ok" | "error" | "info"; children: React.ReactNode }) {
  return (
    <div className={`notice ${props.kind ?? "info"}`} role={props.kind === "error" ? "alert" : "status"}>
      {props.children}
    </div>
  );
}

const TONES: Record<string, string> = {
  COMPLETE: "ok",
  INCOMPLETE: "warn",
  NEEDS_RECONNECT: "bad",
  WAITING: "info",
  RUNNING: "info",
  AWAITING_RETRY: "warn",
  RATE_LIMIT_RETRY: "warn",
  SUPERSEDED: "muted",
  ERROR: "bad",
  AUTH_FAILED: "bad",
  TIMEOUT_LIMIT_EXCEEDED: "bad",
  enabled: "ok",
  disabled: "muted",
  open: "bad",
  actioned: "ok",
  send: "ok",
  skip: "muted",
};

export function Badge(props: { value: string; label?: string }) {
  const tone = TONES[props.value] ?? (props.value.includes("ERROR") ? "bad" : "info");
  return <span className={`badge ${tone}`}>{props.label ?? props.value.replace(/_/g, " ")}</span>;
}

export function when(value?: string): string {
  if (!value) return "";
  const d = new Date(value);
  return isNaN(d.getTime()) ? value : d.toLocaleString();
}

/** A button that runs an async action, disabled while it runs, reporting its error. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const run = async <T,>(fn: () => Promise<T>): Promise<T | undefined> => {
    setBusy(true);
    setError(null);
    try {
      return await fn();
    } catch (e) {
      setError(e as ApiError);
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run, setError };
}

export function PageHeader(props: { title: string; children?: React.ReactNode }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${props.title} · billbridge`;
  }, [props.title]);
  return (
    <div className="page-header">
      <h1 ref={ref} tabIndex={-1} id="page-title">
        {props.title}
      </h1>
      <div className="page-actions">{props.children}</div>
    </div>
  );
}

/** A radio button labelled by its title, described by its description. */
export function Choice(props: {
  name: string;
  value: string;
  checked: boolean;
  onChange: () => void;
  title: string;
  description?: string;
}) {
  const id = `${props.name}-${props.value}`;
  return (
    <div className="choice">
      <input
        type="radio"
        id={id}
        name={props.name}
        value={props.value}
        checked={props.checked}
        onChange={props.onChange}
        aria-describedby={props.description ? `${id}-description` : undefined}
      />{" "}
      <label htmlFor={id}>{props.title}</label>
      {props.description ? (
        <span className="hint" id={`${id}-description`}>
          {" "}
          — {props.description}
        </span>
      ) : null}
    </div>
  );
}
