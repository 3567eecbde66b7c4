// Builds the console into the Python package (billbridge/api/console/): index.html and
// content-hashed assets. One command: `npm --prefix console ci && npm --prefix console run build`.
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "core", "billbridge", "api", "console");
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "assets"), { recursive: true });

const result = await build({
  entryPoints: [join(here, "src", "main.tsx")],
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2020"],
  outdir: join(out, "assets"),
  entryNames: "[name]",
  legalComments: "external",
  jsx: "automatic",
  define: { "process.env.NODE_ENV": '"production"' },
  logLevel: "warning",
  write: false,
});

// Names carry a hash of the content alone, so the same source builds the same files anywhere.
const files = [];
for (const file of result.outputFiles) {
  const name = basename(file.path);
  const hash = createHash("sha256").update(file.contents).digest("hex").slice(0, 10);
  const hashed = name.endsWith(".LEGAL.txt") ? "licenses.txt" : name.replace(/\.(js|css)$/, `-${hash}.$1`);
  writeFileSync(join(out, "assets", hashed), file.contents);
  files.push(hashed);
}
const script = files.find((f) => f.endsWith(".js"));
const style = files.find((f) => f.endsWith(".css"));
const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>billbridge console</title>
${style ? `<link rel="stylesheet" href="/assets/${style}">\n` : ""}<script type="module" src="/assets/${script}"></script>
</head>
<body>
<div id="root"></div>
<noscript>The billbridge console needs JavaScript; the HTTP API is at /api.</noscript>
</body>
</html>
`;
writeFileSync(join(out, "index.html"), page);

let raw = 0;
let zipped = 0;
for (const f of [...files, "index.html"]) {
  const path = f === "index.html" ? join(out, f) : join(out, "assets", f);
  raw += statSync(path).size;
  zipped += gzipSync(readFileSync(path)).length;
}
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
console.log(`console bundle: ${kib(raw)} (${kib(zipped)} gzipped) in ${files.length + 1} files`);
