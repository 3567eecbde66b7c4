// Runs: filter by integration, bill and status; each run's attempts; replay.

import { useState } from "react";
import { get, post, query } from "../api";
import { navigate, useLocation } from "../router";
import { Async, Badge, ErrorBox, Notice, PageHeader, useAction, useLoad, when } from "../ui";
import { integrationName } from "./bills";
import { loadIntegrations } from "./integrations";

export type Run = {
  id: string;
  integrationId: string;
  billId: string;
  billVersion: number;
  accountId: string;
  status: string;
  final: boolean;
  attempts: number;
  externalId?: string;
  externalUrl?: string;
  error?: string;
  replayedFrom?: string;
  nextAttemptAt?: string;
  createdAt: string;
  updatedAt: string;
};

const STATUSES = [
  "WAITING",
  "RUNNING",
  "AWAITING_RETRY",
  "RATE_LIMIT_RETRY",
  "COMPLETE",
  "ERROR",
  "AUTH_FAILED",
  "TIMEOUT_LIMIT_EXCEEDED",
  "SUPERSEDED",
];

export function RunsPage() {
  const location = useLocation();
  const integrationId = location.search.get("integrationId") || "";
  const billId = location.search.get("billId") || "";
  const status = location.search.get("status") || "";
  const integrations = useLoad(loadIntegrations, []);
  const [pages, setPages] = useState<string[]>([]);
  const filters = { integrationId, billId, status };
  const runs = useLoad(
    async () => {
      let cursor: string | undefined;
      const items: Run[] = [];
      let total = 0;
      for (let n = 0; n <= pages.length; n++) {
        const page = await get(`/api/runs${query({ ...filters, cursor, limit: "25" })}`);
        items.push(...page.items);
        total = page.total;
        cursor = page.nextCursor;
        if (!cursor) break;
      }
      return { items, total, cursor };
    },
    [integrationId, billId, status, pages.length],
    true,
  );
  const set = (change: Record<string, string>) => {
    setPages([]);
    navigate(`/runs${query({ ...filters, ...change })}`, true);
  };
  const [bill, setBill] = useState(billId);
  return (
    <>
      <PageHeader title="Runs" />
      <form
        className="filters"
        onSubmit={(e) => {
          e.preventDefault();
          set({ billId: bill.trim() });
        }}
      >
        <div className="field">
          <label htmlFor="runs-integration">Integration</label>
          <select id="runs-integration" value={integrationId} onChange={(e) => set({ integrationId: e.target.value })}>
            <option value="">All</option>
            {(integrations.data || []).map((i) => (
              <option key={i.id} value={i.id}>
                {i.name}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="runs-status">Status</label>
          <select id="runs-status" value={status} onChange={(e) => set({ status: e.target.value })}>
            <option value="">Any</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s.replace(/_/g, " ").toLowerCase()}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="runs-bill">Bill id</label>
          <input id="runs-bill" value={bill} onChange={(e) => setBill(e.target.value)} />
        </div>
        <button type="submit">Filter</button>
      </form>
      <Async
        state={runs}
        what="runs"
        empty={(r) => !r.items.length}
        emptyText={integrationId || billId || status ? "No run matches these filters." : "No runs yet: submitted bills show here as they are delivered."}
      >
        {(r) => (
          <>
            <p className="hint" aria-live="polite">
              {r.items.length} of {r.total} run(s), newest first.
            </p>
            <table>
              <caption className="sr-only">Runs</caption>
              <thead>
                <tr>
                  <th scope="col">Bill</th>
                  <th scope="col">Integration</th>
                  <th scope="col">Status</th>
                  <th scope="col">Attempts</th>
                  <th scope="col">Invoice</th>
                  <th scope="col">Updated</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {r.items.map((run) => (
                  <RunRow key={run.id} run={run} integration={integrationName(integrations.data, run.integrationId)} reload={runs.reload} />
                ))}
              </tbody>
            </table>
            {r.cursor ? (
              <button type="button" onClick={() => setPages([...pages, r.cursor as string])}>
                More runs
              </button>
            ) : null}
          </>
        )}
      </Async>
    </>
  );
}

export function RunRow(props: { run: Run; integration: string; reload: () => void }) {
  const { run } = props;
  const [open, setOpen] = useState(false);
  const action = useAction();
  const [replayed, setReplayed] = useState<Run | null>(null);
  const detailId = `run-${run.id}-attempts`;
  return (
    <>
      <tr>
        <td>
          <code>{run.billId}</code> v{run.billVersion}
        </td>
        <td>{props.integration}</td>
        <td>
          <Badge value={run.status} />
          {run.error ? <div className="small error-text">{run.error}</div> : null}
        </td>
        <td>{run.attempts}</td>
        <td>
          {run.externalUrl ? (
            <a href={run.externalUrl} target="_blank" rel="noreferrer">
              {run.externalId}
            </a>
          ) : (
            run.externalId || "—"
          )}
        </td>
        <td>{when(run.updatedAt)}</td>
        <td className="actions">
          <button type="button" aria-expanded={open} aria-controls={detailId} onClick={() => setOpen(!open)}>
            Attempts
          </button>
          {run.final ? (
            <button
              type="button"
              disabled={action.busy}
              onClick={() =>
                action.run(async () => {
                  setReplayed(await post(`/api/runs/${run.id}/replay`, {}));
                  props.reload();
                })
              }
            >
              Replay
            </button>
          ) : null}
        </td>
      </tr>
      {open || action.error || replayed ? (
        <tr id={detailId}>
          <td colSpan={7}>
            {replayed ? <Notice kind="ok">Replayed: a new run is waiting.</Notice> : null}
            {action.error ? <ErrorBox error={action.error} /> : null}
            {open ? <Attempts runId={run.id} /> : null}
          </td>
        </tr>
      ) : null}
    </>
  );
}

function Attempts(props: { runId: string }) {
  const attempts = useLoad(() => get(`/api/runs/${props.runId}/attempts`), [props.runId], true);
  return (
    <Async state={attempts} what="attempts" empty={(a) => !a.items.length} emptyText="No attempt yet: the run is waiting for the worker.">
      {(a) => (
        <ul className="attempts">
          {a.items.map((t: any) => (
            <li key={t.number}>
              Attempt {t.number} <Badge value={t.status} /> {when(t.startedAt)}
              {t.finishedAt ? ` → ${when(t.finishedAt)}` : ""}
              {t.error ? <div className="error-text">{t.error}</div> : null}
            </li>
          ))}
        </ul>
      )}
    </Async>
  );
}
