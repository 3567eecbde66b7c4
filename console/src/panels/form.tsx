// One published panel rendered by @rjsf/core with its generated uiSchema: password inputs for
// secrets, the picker for destination tables, the filter editor, readable choice errors and
// the server's errors on their fields. Nothing here knows any destination: a plugin's panel
// renders as it is published.

import { forwardRef, useMemo } from "react";
import Form from "@rjsf/core";
import type { ErrorSchema, RegistryWidgetsType, RJSFSchema, UiSchema } from "@rjsf/utils";
import { customizeValidator } from "@rjsf/validator-ajv8";
import { choiceErrors } from "./errors";
import { FilterExpressionWidget } from "./filter";
import { ExternalEntityPickerWidget } from "./picker";
import type { PanelContext } from "./context";

/** The widgets the generated uiSchemas name. */
export const panelWidgets: RegistryWidgetsType = {
  externalEntityPicker: ExternalEntityPickerWidget,
  filterExpression: FilterExpressionWidget,
};

/** billbridge's annotation keywords (GET /api/schemas lists them), declared so that Ajv knows
 * them even in strict mode. */
export const CUSTOM_KEYWORDS = ["x-external-table", "x-filter-expression", "x-m3ter-entity"];

/** An Ajv 8 validator for the published panels (draft-07, formats, custom keywords). */
export function panelValidator() {
  return customizeValidator({
    ajvOptionsOverrides: { keywords: CUSTOM_KEYWORDS },
  });
}

const sharedValidator = panelValidator();

export type Panel = { schema: RJSFSchema; uiSchema: UiSchema };

export type PanelFormProps = {
  panel: Panel;
  formData: any;
  onChange: (data: any) => void;
  context: PanelContext;
  /** The server's errors on this panel (see serverErrorSchema). */
  extraErrors?: ErrorSchema;
  idPrefix?: string;
  disabled?: boolean;
  /** Render a <form> of its own (default: a <div>, to sit in the page's form). */
  asForm?: boolean;
  children?: React.ReactNode;
};

/** A panel as a form without its own submit button (the page saves every panel at once; call
 * `ref.current.validateForm()` first). */
export const PanelForm = forwardRef<any, PanelFormProps>(function PanelForm(props, ref) {
  const transformErrors = useMemo(() => choiceErrors(props.panel.schema as any), [props.panel]);
  return (
    <Form
      ref={ref}
      schema={props.panel.schema}
      uiSchema={{ ...props.panel.uiSchema, "ui:submitButtonOptions": { norender: true } }}
      formData={props.formData}
      validator={sharedValidator}
      widgets={panelWidgets}
      formContext={props.context}
      transformErrors={transformErrors}
      extraErrors={props.extraErrors}
      idPrefix={props.idPrefix}
      disabled={props.disabled}
      showErrorList={false}
      tagName={props.asForm ? "form" : "div"}
      noHtml5Validate
      liveValidate={false}
      omitExtraData={false}
      onChange={(e) => props.onChange(e.formData)}
    >
      {props.children ?? <></>}
    </Form>
  );
});
