// billbridge's panels for any React app: render a destination's published panels (from GET
// /api/destinations/{key} or GET /api/integrations/{id}/panel) with @rjsf/core and the
// generated uiSchema, with the picker and filter widgets, readable choice errors and the
// server's errors placed on their fields. See the README's "Console" section.

export { PanelForm, panelWidgets, panelValidator, CUSTOM_KEYWORDS } from "./form";
export type { Panel, PanelFormProps } from "./form";
export { EntityPicker, ExternalEntityPickerWidget } from "./picker";
export type { Entity } from "./picker";
export { FilterExpressionWidget } from "./filter";
export { choiceErrors, serverErrorSchema } from "./errors";
export type { ServerError } from "./errors";
export { resolveEndpoint } from "./context";
export type { FetchJson, PanelContext } from "./context";
