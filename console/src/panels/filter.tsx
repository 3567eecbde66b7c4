// The account filter editor (`x-filter-expression`): a text area whose expression the server
// parses as you type (POST ui:options.checkEndpoint {expression}), showing each syntax error
// with its line and column, or that the expression is valid. The uiSchema names it
// "filterExpression".

import { useEffect, useState } from "react";
import { ariaDescribedByIds, type WidgetProps } from "@rjsf/utils";
import type { PanelContext } from "./context";

type Check = { valid: boolean; errors: { path?: string; message: string }[] };

export function FilterExpressionWidget(props: WidgetProps) {
  const context = (props.registry?.formContext || {}) as PanelContext;
  const endpoint = (props.options as { checkEndpoint?: string }).checkEndpoint;
  const value: string = props.value ?? "";
  const [check, setCheck] = useState<Check | null>(null);
  const [failure, setFailure] = useState<string | null>(null);

  useEffect(() => {
    if (!endpoint || !context.fetchJson || !value.trim()) {
      setCheck(null);
      setFailure(null);
      return;
    }
    let current = true;
    const timer = setTimeout(() => {
      context
        .fetchJson(endpoint, { method: "POST", body: { expression: value } })
        .then((result: Check) => current && (setCheck(result), setFailure(null)))
        .catch((e: Error) => current && setFailure(e.message));
    }, 400);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [value, endpoint]);

  const statusId = `${props.id}__check`;
  return (
    <div className="filter-expression">
      <textarea
        id={props.id}
        className="form-control code"
        rows={2}
        spellCheck={false}
        value={value}
        placeholder={props.placeholder}
        disabled={props.disabled || props.readonly}
        aria-describedby={`${ariaDescribedByIds(props.id)} ${statusId}`}
        aria-invalid={check ? !check.valid : undefined}
        onChange={(e) => props.onChange(e.target.value === "" ? undefined : e.target.value)}
        onBlur={() => props.onBlur(props.id, value)}
        onFocus={() => props.onFocus(props.id, value)}
      />
      <div id={statusId} className="filter-check" aria-live="polite">
        {!value.trim() ? (
          <span className="hint">Empty: every account.</span>
        ) : failure ? (
          <span className="error">Could not check the expression: {failure}</span>
        ) : check && check.valid ? (
          <span className="ok">✓ Valid expression</span>
        ) : check ? (
          <ul className="error">
            {check.errors.map((e, i) => (
              <li key={i}>{e.message}</li>
            ))}
          </ul>
        ) : (
          <span className="hint">Checking…</span>
        )}
      </div>
    </div>
  );
}
