#!/usr/bin/env node
// Validates an AsyncAPI document with code that is not courier's: the AsyncAPI Initiative's own parser
// (npm @asyncapi/parser), which checks the document against the AsyncAPI JSON Schema of its version (bindings
// included), resolves its $refs (the event schemas in schemas/events/ among them) and applies its rules. The
// independent validator of docs/asyncapi.yaml (tests/tests/e2e/asyncapi.rs).
//
// usage: node validate_asyncapi.cjs DOCUMENT
//
// Prints one JSON line per diagnostic, {"severity": 0 error | 1 warning | 2 information | 3 hint, "code",
// "path", "message"}, then {"parsed": true|false, "channels": N, "operations": N, "messages": N}. Exits 1 when
// the document did not parse (an error), 2 on a usage or installation problem.
//
// scripts/test.sh installs the parser next to this script (tests/independent/node_modules).

'use strict';

let parser;
try {
  parser = require('@asyncapi/parser');
} catch (error) {
  console.error(`@asyncapi/parser is not installed next to ${__filename} (scripts/test.sh installs it): ${error.message}`);
  process.exit(2);
}

async function main() {
  const document = process.argv[2];
  if (!document) {
    console.error('usage: node validate_asyncapi.cjs DOCUMENT');
    process.exit(2);
  }
  const { document: parsed, diagnostics } = await parser.fromFile(new parser.Parser(), document).parse();
  for (const diagnostic of diagnostics) {
    const { severity, code, path, message } = diagnostic;
    console.log(JSON.stringify({ severity, code, path, message }));
  }
  const count = (collection) => (parsed ? collection.all().length : 0);
  console.log(JSON.stringify({
    parsed: Boolean(parsed),
    channels: parsed ? count(parsed.channels()) : 0,
    operations: parsed ? count(parsed.operations()) : 0,
    messages: parsed ? count(parsed.allMessages()) : 0,
  }));
  process.exit(parsed ? 0 : 1);
}

main().catch((error) => {
  console.error(error);
  process.exit(2);
});
