// The panel module's error handling against the real published panels and Ajv 8, as rjsf
// validates them in the browser: choice errors name the choices' titles (never "must be equal
// to constant"), and the API's errors land on their fields.
//
// PANELS_JSON names a file of {destinationKey: {config, entityConfig, destinationConfig}} as
// GET /api/destinations/{key} answers `forms` (tests/e2e/browser/test_console_panels.py
// writes it and runs `node --test console/tests/`).

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const bundled = await build({
  stdin: {
    contents: `
      export { choiceErrors, serverErrorSchema } from "./src/panels/errors";
      export { CUSTOM_KEYWORDS } from "./src/panels/form";
      export { customizeValidator } from "@rjsf/validator-ajv8";
    `,
    resolveDir: join(here, ".."),
    loader: "ts",
  },
  bundle: true,
  format: "esm",
  platform: "node",
  jsx: "automatic",
  write: false,
  logLevel: "error",
});
const file = join(mkdtempSync(join(tmpdir(), "panels-")), "panels.mjs");
writeFileSync(file, bundled.outputFiles[0].contents);
const { choiceErrors, serverErrorSchema, CUSTOM_KEYWORDS, customizeValidator } = await import(
  pathToFileURL(file).href
);

const forms = JSON.parse(readFileSync(process.env.PANELS_JSON, "utf-8"));
const validator = customizeValidator({ ajvOptionsOverrides: { keywords: CUSTOM_KEYWORDS } });

function errors(panel, formData) {
  const schema = panel.schema;
  return validator.validateFormData(formData, schema, undefined, choiceErrors(schema)).errors;
}

test("a refused choice names the titles, once, never a constant", () => {
  const panel = forms.xero.destinationConfig;
  const found = errors(panel, { invoiceStatus: "PAID" });
  assert.equal(found.length, 1, JSON.stringify(found));
  assert.equal(
    found[0].message,
    "must be one of: Draft, Awaiting approval, Awaiting payment (authorised)",
  );
  assert.equal(found[0].stack, "Invoice status: must be one of: Draft, Awaiting approval, Awaiting payment (authorised)");
  for (const e of found) assert.doesNotMatch(e.stack, /constant|oneOf|exactly one/);
});

test("every panel's choices read as titles", () => {
  let checked = 0;
  for (const [key, parts] of Object.entries(forms)) {
    for (const [part, panel] of Object.entries(parts)) {
      for (const [name, option] of Object.entries(panel.schema.properties || {})) {
        const choices = option.oneOf || option.items?.oneOf;
        if (!Array.isArray(choices) || !choices.every((c) => "const" in c)) continue;
        // A value of the option's own type that is none of its choices.
        const type = option.type === "array" ? option.items?.type : option.type;
        const wrong = type === "integer" || type === "number" ? -987654 : "not-a-choice";
        const bad = option.type === "array" ? [wrong] : wrong;
        // Only this option's errors: a panel's required fields (the global panel's name) are
        // missing from this form data too.
        const found = errors(panel, { [name]: bad }).filter(
          (e) => e.property === `.${name}` || e.property?.startsWith(`.${name}.`),
        );
        checked += 1;
        assert.ok(found.length >= 1, `${key}/${part}/${name}`);
        for (const e of found) {
          assert.doesNotMatch(e.message, /constant|exactly one/, `${key}/${part}/${name}`);
          assert.match(e.message, new RegExp(`^must be one of: ${choices[0].title.replace(/[()]/g, "\\$&")}`));
        }
      }
    }
  }
  assert.ok(checked >= 8, `only ${checked} choices checked`);
});

test("other errors keep Ajv's words, with the field's title", () => {
  const found = errors(forms.quickbooks.destinationConfig, { bccInvoiceEmail: "not an email" });
  assert.equal(found.length, 1);
  assert.equal(found[0].stack, 'BCC invoice email: must match format "email"');
});

test("server errors land on their panel's fields", () => {
  const server = [
    { path: "/destinationConfig/invoiceStatus", message: "must be one of: Draft" },
    { path: "/config/accountFilter", message: "unexpected end of expression at line 1" },
    { path: "/destinationConfig/trackingCategories/0/option", message: "no such option" },
    { path: "/name", message: "already taken" },
  ];
  const dest = serverErrorSchema(server, "destinationConfig");
  assert.deepEqual(dest.errorSchema, {
    invoiceStatus: { __errors: ["must be one of: Draft"] },
    trackingCategories: { 0: { option: { __errors: ["no such option"] } } },
  });
  assert.equal(dest.placed.length, 2);
  const config = serverErrorSchema(server, "config");
  assert.deepEqual(config.errorSchema, {
    accountFilter: { __errors: ["unexpected end of expression at line 1"] },
  });
  assert.equal(serverErrorSchema(server, "entityConfig").placed.length, 0);
});
