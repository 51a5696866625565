// Render a bibliography with citeproc-js (the engine Zotero uses) for the fidelity and
// render benches.
// stdin: {"style": "<csl xml>", "locales_dir": "...", "locale": "en-US",
//         "format": "html"|"text", "items": [csl-json...], "repeat": n (optional),
//         "uppercase_subtitles": bool (optional, as Zotero sets it)}
// stdout: {"entries": {"<id>": "<entry>"|null}, "order": ["<id>", ...], "error": null|"...",
//          "runs": [{"cpu": s, "wall": s}, ...]}
// An entry is null when citeproc-js printed nothing for the item: makeBibliography then
// leaves it out of its entries but not out of meta.entry_ids, so the two lists are
// realigned here by rendering each item of such a bibliography on its own (one engine).
// With "repeat", the whole bibliography is rendered that many times more, each with a
// fresh engine (cold), and the CPU and wall time of each run are reported.
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
  // Zotero sets this for APA-family styles (capitalised subtitles)
  uppercase_subtitles: Boolean(input.uppercase_subtitles),
};

function engine() {
  const made = new CSL.Engine(sys, input.style, input.locale, true);
  made.setOutputFormat(input.format === "text" ? "text" : "html");
  return made;
}

function bibliography(ids, using) {
  const eng = using || engine();
  eng.updateItems(ids);
  return eng.makeBibliography();
}

const out = { entries: {}, order: [], error: null, runs: [] };
try {
  const ids = input.items.map((i) => i.id);
  const [meta, entries] = bibliography(ids);
  const order = meta.entry_ids.map((group) => group[0]);
  let printed = order;
  if (entries.length !== order.length) {
    const single = engine();
    printed = order.filter((id) => bibliography([id], single)[1].length > 0);
  }
  const shown = new Set(printed);
  for (const id of order) out.entries[id] = null;
  printed.forEach((id, n) => {
    out.entries[id] = entries[n];
  });
  out.order = order;
  for (let r = 0; r < (input.repeat || 0); r += 1) {
    const cpu = process.cpuUsage();
    const wall = process.hrtime.bigint();
    bibliography(ids);
    const used = process.cpuUsage(cpu);
    out.runs.push({
      cpu: (used.user + used.system) / 1e6,
      wall: Number(process.hrtime.bigint() - wall) / 1e9,
    });
  }
} catch (err) {
  out.error = String(err && err.stack ? err.stack : err);
}
process.stdout.write(JSON.stringify(out));
