// Loads every schema billbridge publishes into one Ajv in strict mode, with billbridge's custom
// keywords declared, compiles each, and validates the documents given. Prints "ok" or throws.
// Usage: node ajv_check.js input.json   (input: {keywords, schemas: [...], documents: [...]})
"use strict";
const fs = require("fs");
const Ajv = require("ajv");
const addFormats = require("ajv-formats");

const input = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const ajv = new Ajv({ strict: true, allErrors: true }); // every strict restriction, as errors
addFormats(ajv);
for (const [keyword, spec] of Object.entries(input.keywords)) {
  ajv.addKeyword({ keyword, schemaType: spec.schemaType });
}
for (const schema of input.schemas) {
  ajv.addSchema(schema); // throws on a duplicate $id
}
for (const schema of input.schemas) {
  if (!ajv.getSchema(schema.$id)) throw new Error(`cannot compile ${schema.$id}`);
}
for (const { id, data, valid } of input.documents) {
  const ok = ajv.getSchema(id)(data);
  if (ok !== valid) {
    throw new Error(`${id}: expected ${valid}, got ${ok}: ${JSON.stringify(ajv.errors)}`);
  }
}
console.log("ok");
