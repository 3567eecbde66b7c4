// What the panel widgets need from the app embedding them, passed as rjsf's formContext.

export type FetchJson = (url: string, init?: { method?: string; body?: unknown }) => Promise<any>;

export type PanelContext = {
  /** Calls billbridge's API (adding the API key) and resolves to the parsed JSON answer, or
   * rejects with an Error whose message is the API's. */
  fetchJson: FetchJson;
  /** Values for placeholders in the uiSchema's endpoints, e.g. `{credentialId: "..."}`. */
  params?: Record<string, string | undefined>;
};

/** An endpoint of the uiSchema with its `{placeholders}` filled, or null if one has no value. */
export function resolveEndpoint(
  endpoint: string | undefined,
  params: Record<string, string | undefined> = {},
): string | null {
  if (!endpoint) return null;
  let missing = false;
  const url = endpoint.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = params[name];
    if (!value) missing = true;
    return encodeURIComponent(value || "");
  });
  return missing ? null : url;
}
