// Render a bibliography with citeproc-js (the engine Zotero uses) for the fidelity bench.
// stdin: {"style": "<csl xml>", "locales_dir": "...", "locale": "en-US",
//         "format": "html"|"text", "items": [csl-json...]}
// stdout: {"entries": {"<id>": "<entry>"}, "order": ["<id>", ...], "error": null|"..."}
"use strict";
const fs = require("fs");
const path = require("path");
const CSL = require(process.env.CITEPROC_JS || "citeproc");

const input = JSON.parse(fs.readFileSync(0, "utf8"));
const items = {};
for (const item of input.items) items[item.id] = item;

const sys = {
  retrieveLocale(lang) {
    const file = path.join(input.locales_dir, `locales-${lang}.xml`);
    return fs.existsSync(file) ? fs.readFileSync(file, "utf8") : false;
  },
  retrieveItem(id) {
    return items[id];
  },
};

const out = { entries: {}, order: [], error: null };
try {
  const engine = new CSL.Engine(sys, input.style, input.locale, true);
  engine.setOutputFormat(input.format === "text" ? "text" : "html");
  engine.updateItems(input.items.map((i) => i.id));
  const [meta, entries] = engine.makeBibliography();
  meta.entry_ids.forEach((ids, n) => {
    out.entries[ids[0]] = entries[n];
    out.order.push(ids[0]);
  });
} catch (err) {
  out.error = String(err && err.stack ? err.stack : err);
}
process.stdout.write(JSON.stringify(out));
