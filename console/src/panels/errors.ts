// Errors in people's words, on the fields they are about.
//
// * choiceErrors(schema): an rjsf error transformer. Ajv reports a refused labelled choice
//   (`oneOf: [{const, title}, ...]`) as one "must be equal to constant" per choice plus "must
//   match exactly one schema in oneOf"; this turns them into one "must be one of: Draft,
//   Awaiting approval, ..." with the choices' titles, never their constants.
// * serverErrorSchema(errors, part): the API's `errors: [{path, message}]` (paths into the
//   request body, e.g. /destinationConfig/invoiceStatus) as an rjsf ErrorSchema for one panel,
//   for the Form's `extraErrors`; errors on no field of the panel come back separately.

import type { ErrorSchema, RJSFValidationError } from "@rjsf/utils";

type Schema = Record<string, any>;

/** The schema at a JSON pointer of an Ajv schemaPath (`#/properties/x/oneOf/0/const`). */
function at(schema: Schema, pointer: string): any {
  let node: any = schema;
  for (const raw of pointer.replace(/^#\/?/, "").split("/")) {
    if (!raw) continue;
    const part = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (node == null || typeof node !== "object") return undefined;
    node = node[part];
  }
  return node;
}

function labelledChoices(node: any): { const: unknown; title?: string }[] | null {
  const list = node && (node.oneOf || node.anyOf);
  if (!Array.isArray(list) || !list.length) return null;
  return list.every((c: any) => c && typeof c === "object" && "const" in c) ? list : null;
}

function fieldTitle(schema: Schema, property: string | undefined): string | undefined {
  if (!property) return undefined;
  let node: any = schema;
  for (const part of property.replace(/^\./, "").split(/\.|\[|\]/).filter(Boolean)) {
    if (node == null) return undefined;
    node = /^\d+$/.test(part) ? node.items : node.properties?.[part];
  }
  return node?.title;
}

export function choiceErrors(schema: Schema) {
  return (errors: RJSFValidationError[]): RJSFValidationError[] => {
    const out: RJSFValidationError[] = [];
    const seen = new Set<string>();
    for (const error of errors) {
      const path = error.schemaPath || "";
      // One "must be equal to constant" per refused choice: the oneOf error below says it once.
      if (error.name === "const" && /\/(oneOf|anyOf)\/\d+\/const$/.test(path)) continue;
      let message = error.message || "";
      if (error.name === "oneOf" || error.name === "anyOf") {
        const choices = labelledChoices(at(schema, path.replace(/\/(oneOf|anyOf)$/, "")));
        if (choices) {
          message = "must be one of: " + choices.map((c) => c.title ?? String(c.const)).join(", ");
        }
      } else if (error.name === "enum" && Array.isArray(error.params?.allowedValues)) {
        message = "must be one of: " + error.params.allowedValues.join(", ");
      }
      const key = `${error.property}|${message}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const title = fieldTitle(schema, error.property);
      out.push({ ...error, message, stack: title ? `${title}: ${message}` : message });
    }
    return out;
  };
}

export type ServerError = { path: string; message: string };

/** The errors under `/<part>/...` as an ErrorSchema for that panel's Form, and the rest. */
export function serverErrorSchema(
  errors: ServerError[],
  part: string,
): { errorSchema: ErrorSchema; placed: ServerError[] } {
  const errorSchema: any = {};
  const placed: ServerError[] = [];
  const prefix = `/${part}`;
  for (const error of errors) {
    if (error.path !== prefix && !error.path.startsWith(prefix + "/")) continue;
    const parts = error.path.slice(prefix.length).split("/").filter(Boolean);
    let node = errorSchema;
    for (const p of parts) node = node[p] = node[p] || {};
    node.__errors = [...(node.__errors || []), error.message];
    placed.push(error);
  }
  return { errorSchema: errorSchema as ErrorSchema, placed };
}
