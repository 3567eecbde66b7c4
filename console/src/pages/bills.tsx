// Bills: load a bill (and its account) from files, see which integrations would take it and
// why (explain), the exact request an integration would send (preview), and submit it.

import { useState } from "react";
import { post } from "../api";
import { Link } from "../router";
import { Async, Badge, ErrorBox, Notice, PageHeader, useAction, useLoad } from "../ui";
import { loadIntegrations } from "./integrations";

type Explanation = {
  billId: string;
  wouldSend: number;
  integrations: { integrationId: string; name: string; decision: string; reason: string; enabled: boolean }[];
};

async function readJson(file: File): Promise<any> {
  const text = await file.text();
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${file.name} is not JSON: ${(e as Error).message}`);
  }
}

export function BillsPage() {
  const [billText, setBillText] = useState("");
  const [accountText, setAccountText] = useState("");
  const [fileError, setFileError] = useState<string | null>(null);
  const [explanation, setExplanation] = useState<Explanation | null>(null);
  const [preview, setPreview] = useState<{ name: string; payload: any } | null>(null);
  const [submitted, setSubmitted] = useState<any>(null);
  const integrations = useLoad(loadIntegrations, []);
  const action = useAction();

  const pair = () => {
    let bill: any;
    let account: any;
    try {
      bill = JSON.parse(billText);
    } catch (e) {
      throw new Error(`The bill is not JSON: ${(e as Error).message}`);
    }
    if (bill && bill.bill && bill.account) return { bill: bill.bill, account: bill.account };
    try {
      account = JSON.parse(accountText);
    } catch (e) {
      throw new Error(`The account is not JSON: ${(e as Error).message}`);
    }
    return { bill, account };
  };
  const load = (set: (s: string) => void) => async (e: React.ChangeEvent<HTMLInputElement>) => {
    setFileError(null);
    const file = e.target.files?.[0];
    if (!file) return;
    try {
      const parsed = await readJson(file);
      if (parsed && parsed.bill && parsed.account) {
        setBillText(JSON.stringify(parsed.bill, null, 2));
        setAccountText(JSON.stringify(parsed.account, null, 2));
      } else set(JSON.stringify(parsed, null, 2));
    } catch (err) {
      setFileError((err as Error).message);
    }
  };
  const explain = () =>
    action.run(async () => {
      setPreview(null);
      setSubmitted(null);
      setExplanation(await post("/api/bills:explain", pair()));
    });
  const showPreview = (id: string, name: string) =>
    action.run(async () => setPreview({ name, payload: await post(`/api/integrations/${id}/preview`, pair()) }));
  const submit = () =>
    action.run(async () => {
      setPreview(null);
      setSubmitted(await post("/api/bills", pair()));
    });
  const ready = billText.trim() !== "";

  return (
    <>
      <PageHeader title="Bills" />
      <p className="hint">
        m3ter sends bills here by itself; this page is for trying one: which integrations would take it and
        why, the exact request each would send, and submitting it.
      </p>
      <div className="grid2">
        <div className="field">
          <label htmlFor="bill-file">Bill file (JSON: a bill, or {"{bill, account}"})</label>
          <input id="bill-file" type="file" accept=".json,application/json" onChange={load(setBillText)} />
          <label htmlFor="bill-json" className="sr-only">
            Bill JSON
          </label>
          <textarea id="bill-json" className="code" rows={10} value={billText} onChange={(e) => setBillText(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="account-file">Account file (JSON)</label>
          <input id="account-file" type="file" accept=".json,application/json" onChange={load(setAccountText)} />
          <label htmlFor="account-json" className="sr-only">
            Account JSON
          </label>
          <textarea id="account-json" className="code" rows={10} value={accountText} onChange={(e) => setAccountText(e.target.value)} />
        </div>
      </div>
      {fileError ? <Notice kind="error">{fileError}</Notice> : null}
      <div className="buttons">
        <button type="button" disabled={!ready || action.busy} onClick={explain}>
          Explain routing
        </button>
        <button type="button" className="primary" disabled={!ready || action.busy} onClick={submit}>
          Submit bill
        </button>
      </div>
      {action.error ? <ErrorBox error={action.error} /> : null}
      {explanation ? (
        <section aria-labelledby="explain-title" className="card">
          <h2 id="explain-title">
            Routing of bill {explanation.billId}: {explanation.wouldSend} integration(s) would take it
          </h2>
          {explanation.integrations.length ? (
            <table>
              <thead>
                <tr>
                  <th scope="col">Integration</th>
                  <th scope="col">Decision</th>
                  <th scope="col">Why</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {explanation.integrations.map((d) => (
                  <tr key={d.integrationId}>
                    <td>{d.name}</td>
                    <td>
                      <Badge value={d.decision} />
                    </td>
                    <td>{d.reason}</td>
                    <td className="actions">
                      <button type="button" disabled={action.busy} onClick={() => showPreview(d.integrationId, d.name)}>
                        Preview payload
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <div className="empty">
              No integration: <Link to="/integrations/new">create one</Link>.
            </div>
          )}
        </section>
      ) : null}
      {preview ? (
        <section aria-labelledby="preview-title" className="card">
          <h2 id="preview-title">What {preview.name} would send</h2>
          <p className="hint">Built exactly as the worker would; nothing is sent or stored.</p>
          <pre className="payload" tabIndex={0} aria-label="Preview payload">
            {JSON.stringify(preview.payload, null, 2)}
          </pre>
        </section>
      ) : null}
      {submitted ? (
        <section aria-labelledby="submitted-title" className="card">
          <h2 id="submitted-title">Submitted</h2>
          <Notice kind="ok">
            {submitted.runs.length} run(s) queued, {submitted.skips.length} skipped by routing.{" "}
            <Link to={`/runs?billId=${encodeURIComponent(submitted.runs[0]?.billId || submitted.skips[0]?.billId || "")}`}>
              Watch its runs
            </Link>
          </Notice>
          {submitted.skips.length ? (
            <ul>
              {submitted.skips.map((s: any) => (
                <li key={s.id}>
                  Skipped by {integrationName(integrations.data, s.integrationId)}: {s.reason}
                </li>
              ))}
            </ul>
          ) : null}
        </section>
      ) : null}
      <Async state={integrations} what="integrations" empty={(i) => !i.length} emptyText={<>No integration yet: bills would go nowhere. <Link to="/integrations/new">Create one</Link>.</>}>
        {() => null}
      </Async>
    </>
  );
}

export function integrationName(items: { id: string; name: string }[] | undefined, id?: string): string {
  return items?.find((i) => i.id === id)?.name || id || "";
}
