// The picker for options filled from a destination table (`x-external-table`): a combobox that
// searches the destination's own list as you type, a page at a time, and saves the record's id.
// The uiSchema names it "externalEntityPicker" with ui:options {table, endpoint}; the endpoint
// may hold {credentialId} (a new integration lists through the credential being connected).

import { useEffect, useId, useRef, useState } from "react";
import { ariaDescribedByIds, type WidgetProps } from "@rjsf/utils";
import { resolveEndpoint, type FetchJson, type PanelContext } from "./context";

export type Entity = { id: string; name?: string; extra?: Record<string, unknown> };

type PickerProps = {
  id: string;
  value: string | undefined;
  onChange: (value: string | undefined) => void;
  /** Lists the table: `GET endpoint?search=&cursor=` → {items: [{id, name}], nextCursor}. */
  endpoint: string | null;
  fetchJson: FetchJson;
  table: string;
  disabled?: boolean;
  required?: boolean;
  placeholder?: string;
  describedBy?: string;
  label?: string;
};

/** The picker on its own (the mappings table uses it outside any form). */
export function EntityPicker(props: PickerProps) {
  const { id, value, onChange, endpoint, fetchJson, table, disabled } = props;
  const listId = useId();
  const [open, setOpen] = useState(false);
  const [text, setText] = useState("");
  const [items, setItems] = useState<Entity[]>([]);
  const [cursor, setCursor] = useState<string | undefined>();
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [active, setActive] = useState(-1);
  const [names, setNames] = useState<Record<string, string>>({});
  const generation = useRef(0);

  const load = async (search: string, after?: string) => {
    if (!endpoint) return;
    const mine = ++generation.current;
    setLoading(true);
    setError(null);
    const q = new URLSearchParams();
    if (search) q.set("search", search);
    if (after) q.set("cursor", after);
    const sep = endpoint.includes("?") ? "&" : "?";
    try {
      const page = await fetchJson(endpoint + (q.toString() ? sep + q : ""));
      if (mine !== generation.current) return;
      const found: Entity[] = page.items || [];
      setItems((old) => (after ? [...old, ...found] : found));
      setCursor(page.nextCursor || undefined);
      setNames((old) => ({
        ...old,
        ...Object.fromEntries(found.filter((e) => e.name).map((e) => [e.id, e.name as string])),
      }));
      if (!after) setActive(found.length ? 0 : -1);
    } catch (e) {
      if (mine === generation.current) setError((e as Error).message);
    } finally {
      if (mine === generation.current) setLoading(false);
    }
  };

  // Search as you type, a quarter of a second after the last key.
  useEffect(() => {
    if (!open) return;
    const timer = setTimeout(() => load(text), 250);
    return () => clearTimeout(timer);
  }, [text, open, endpoint]);

  // The name of a value saved earlier, when the endpoint can name ids (an integration's).
  useEffect(() => {
    if (!value || names[value] || !endpoint || !endpoint.includes("/integrations/")) return;
    fetchJson(`${endpoint.split("?")[0]}/names?ids=${encodeURIComponent(value)}`)
      .then((r) => {
        const name = r?.names?.[value];
        if (name) setNames((old) => ({ ...old, [value]: name }));
      })
      .catch(() => undefined);
  }, [value, endpoint]);

  if (!endpoint) {
    // Nothing to list through yet: the id can still be typed.
    return (
      <div className="picker">
        <input
          id={id}
          className="form-control"
          value={value ?? ""}
          disabled={disabled}
          aria-describedby={props.describedBy}
          placeholder={`${table} id`}
          onChange={(e) => onChange(e.target.value || undefined)}
        />
        <p className="hint">Connect a credential to pick from the destination's {table} list.</p>
      </div>
    );
  }

  const label = (v: string) => (names[v] ? `${names[v]} (${v})` : v);
  const choose = (item: Entity) => {
    onChange(item.id);
    if (item.name) setNames((old) => ({ ...old, [item.id]: item.name as string }));
    setOpen(false);
    setText("");
  };
  const onKey = (e: React.KeyboardEvent<HTMLInputElement>) => {
    if (e.key === "ArrowDown") {
      e.preventDefault();
      if (!open) setOpen(true);
      setActive((a) => Math.min(items.length - 1, a + 1));
    } else if (e.key === "ArrowUp") {
      e.preventDefault();
      setActive((a) => Math.max(0, a - 1));
    } else if (e.key === "Enter" && open) {
      e.preventDefault();
      if (active >= 0 && items[active]) choose(items[active]);
    } else if (e.key === "Escape" && open) {
      e.preventDefault();
      setOpen(false);
    }
  };
  const optionId = (i: number) => `${listId}-option-${i}`;
  return (
    <div className="picker">
      <div className="picker-row">
        <input
          id={id}
          className="form-control"
          role="combobox"
          aria-autocomplete="list"
          aria-expanded={open}
          aria-controls={listId}
          aria-activedescendant={open && active >= 0 ? optionId(active) : undefined}
          aria-describedby={props.describedBy}
          aria-required={props.required || undefined}
          autoComplete="off"
          disabled={disabled}
          placeholder={props.placeholder || `Search ${table}…`}
          value={open ? text : value ? label(value) : ""}
          onFocus={() => {
            setOpen(true);
            setText("");
          }}
          onBlur={() => setTimeout(() => setOpen(false), 150)}
          onChange={(e) => {
            setText(e.target.value);
            setOpen(true);
          }}
          onKeyDown={onKey}
        />
        {value && !disabled ? (
          <button
            type="button"
            className="link"
            aria-label={`Clear ${props.label || table}`}
            onClick={() => onChange(undefined)}
          >
            Clear
          </button>
        ) : null}
      </div>
      {open ? (
        <div className="picker-popup">
          <ul id={listId} role="listbox" aria-label={`${table} records`}>
            {items.map((item, i) => (
              <li
                key={item.id}
                id={optionId(i)}
                role="option"
                aria-selected={i === active}
                className={i === active ? "active" : ""}
                onMouseDown={(e) => e.preventDefault()}
                onClick={() => choose(item)}
              >
                <span>{item.name || item.id}</span> <small>{item.id}</small>
              </li>
            ))}
          </ul>
          {loading ? <p className="hint" role="status">Loading {table}…</p> : null}
          {error ? <p className="error" role="alert">{error}</p> : null}
          {!loading && !error && !items.length ? (
            <p className="hint">No {table} matches “{text}”.</p>
          ) : null}
          {cursor && !loading ? (
            <button
              type="button"
              className="link"
              onMouseDown={(e) => e.preventDefault()}
              onClick={() => load(text, cursor)}
            >
              More {table} records
            </button>
          ) : null}
        </div>
      ) : null}
    </div>
  );
}

/** The rjsf widget ("externalEntityPicker"). */
export function ExternalEntityPickerWidget(props: WidgetProps) {
  const context = (props.registry?.formContext || {}) as PanelContext;
  const options = props.options as { table?: string; endpoint?: string };
  return (
    <EntityPicker
      id={props.id}
      value={props.value}
      onChange={(v) => props.onChange(v)}
      endpoint={resolveEndpoint(options.endpoint, context.params)}
      fetchJson={context.fetchJson}
      table={options.table || "record"}
      disabled={props.disabled || props.readonly}
      required={props.required}
      placeholder={props.placeholder}
      describedBy={ariaDescribedByIds(props.id)}
      label={props.label}
    />
  );
}
