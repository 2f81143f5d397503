/* opswald replay viewer: hand-written, no build step, no network.
 *
 * Everything from a session is put on the page as text (textContent, Text nodes, canvas
 * drawing); nothing here parses HTML. Characters that hide or reorder text (bidi controls,
 * zero-width and tag characters) are shown as the escapes goldens and the terminal write
 * (`\u202e`), in a marked span, with the exceptions opswald.hidden makes (a joiner inside
 * an emoji or a Persian word, a variation selector after its character, a subdivision flag). The data is the JSON block #opswald-data, built by
 * opswald.report.html.build_data (see its docstring for the shape). Lists are virtualised
 * (only the rows in view exist) and the timeline is one canvas per session, so the number
 * of DOM nodes stays bounded for any session size.
 */
"use strict";
(function () {
  // Infinity is written 1e999 (read as Infinity), NaN {"$float":"NaN"}, and keys named
  // $float with one $ more ($$float): see opswald.jsontext
  const FLOAT_TAG = "$float";
  const ESCAPED_TAG = /^\$\$+float$/;
  function reviveFloat(key, value) {
    if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === FLOAT_TAG && value[FLOAT_TAG] === "NaN") return NaN;
    if (!keys.some((k) => ESCAPED_TAG.test(k))) return value;
    const out = {};
    for (const k of keys) out[ESCAPED_TAG.test(k) ? k.slice(1) : k] = value[k];
    return out;
  }
  const RAW = document.getElementById("opswald-data").textContent;
  const DATA = /"\$+float":/.test(RAW) ? JSON.parse(RAW, reviveFloat) : JSON.parse(RAW);
  const CATS = ["user", "llm", "tool", "state", "error"];
  const CAT_NAMES = { user: "user", llm: "llm", tool: "tool", state: "state", error: "error" };
  const COLORS = {
    user: "#2f7bd8",
    llm: "#8a4fd0",
    tool: "#1f9d74",
    state: "#c08a1a",
    error: "#d23c3c",
  };
  const STEP_ROW = 26; // px, as .step-row in viewer.css
  const INDEX_ROW = 44; // px, as .index-row
  const OVERSCAN = 6;
  const MAX_MESSAGES = 40;
  const MAX_TEXT = 100000;
  const MAX_TOOL_OUTPUTS = 10;
  const HASH_EVERY = 120; // ms between two writes of the URL hash
  const LANE_COLOURS = 8; // .lane-0 … .lane-7 in viewer.css, taken in turn
  const LANE_HELP =
    "the thread or asyncio task that made this call, numbered in the order they first made one: " +
    "steps of different lanes are calls made side by side (a gather, a thread pool)";

  const state = {
    entry: null,
    step: 1,
    total: 0,
    filter: new Set(CATS),
    from: 1,
    to: null,
    visible: [],
    timer: null,
    indexRows: DATA.goldens,
    positions: { golden: null, actual: null },
  };

  const $ = (id) => document.getElementById(id);

  // --- hidden characters (opswald.hidden: the same characters, the same exceptions) ------

  // Default_Ignorable_Code_Point, the ranges of opswald.hidden, sent with the data
  const IGNORABLE_CLASS = "[" + DATA.ignorable.map(([a, b]) => cp(a) + (a < b ? "-" + cp(b) : "")).join("") + "]";
  const IGNORABLE = new RegExp(IGNORABLE_CLASS, "u");
  const IGNORABLE_CHAR = new RegExp("^" + IGNORABLE_CLASS + "$", "u");
  // what Python's str.isspace() calls white space
  const SPACE = /^[\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/u;
  const ZWNJ = 0x200c;
  const ZWJ = 0x200d;
  const KEYCAP_BASES = "#*0123456789";

  function cp(code) {
    return "\\u{" + code.toString(16) + "}";
  }

  function shows(ch, lowest) {
    const c = ch.codePointAt(0);
    return c >= lowest && !SPACE.test(ch) && !IGNORABLE_CHAR.test(ch) && !(c >= 0xd800 && c <= 0xdfff) && c !== 0xfffe && c !== 0xffff;
  }

  function isSelector(c) {
    return (c >= 0xfe00 && c <= 0xfe0f) || (c >= 0xe0100 && c <= 0xe01ef) || c === 0x180b || c === 0x180c || c === 0x180d || c === 0x180f;
  }

  function selects(ch, selector) {
    const c = ch.codePointAt(0);
    if (selector >= 0xfe00 && selector <= 0xfe0f) return KEYCAP_BASES.includes(ch) || shows(ch, 0xa0);
    if (selector >= 0xe0100 && selector <= 0xe01ef) {
      return (c >= 0x3400 && c <= 0x4dbf) || (c >= 0x4e00 && c <= 0x9fff) || (c >= 0xf900 && c <= 0xfaff) || (c >= 0x20000 && c <= 0x3ffff);
    }
    if ((selector >= 0x180b && selector <= 0x180d) || selector === 0x180f) return c >= 0x1820 && c <= 0x18aa;
    return false;
  }

  function flagTags(chars) {
    // an emoji subdivision flag: WAVING BLACK FLAG, 2 to 6 tag letters or digits, CANCEL TAG
    const out = new Set();
    for (let i = 0; i < chars.length; i++) {
      if (chars[i] !== "\u{1f3f4}") continue;
      let j = i + 1;
      while (j < chars.length && j - i <= 7) {
        const c = chars[j].codePointAt(0);
        if (!((c >= 0xe0030 && c <= 0xe0039) || (c >= 0xe0061 && c <= 0xe007a))) break;
        j++;
      }
      const n = j - i - 1;
      if (n >= 2 && n <= 6 && j < chars.length && chars[j] === "\u{e007f}") {
        for (let k = i + 1; k <= j; k++) out.add(k);
        i = j;
      }
    }
    return out;
  }

  // The characters of `text` (code points) and which of them are shown escaped: the port of
  // opswald.hidden.hidden_positions (tests/test_viewer_browser.py checks the two agree).
  function hiddenIn(text) {
    if (!IGNORABLE.test(text)) return null;
    const chars = Array.from(text);
    const flags = chars.includes("\u{1f3f4}") ? flagTags(chars) : new Set();
    const hidden = new Set();
    let keptSelector = -1;
    for (let i = 0; i < chars.length; i++) {
      const ch = chars[i];
      if (!IGNORABLE_CHAR.test(ch)) continue;
      const c = ch.codePointAt(0);
      const before = i ? chars[i - 1] : "";
      let keep;
      if (c === ZWNJ || c === ZWJ) {
        const after = i + 1 < chars.length ? chars[i + 1] : "";
        const left = before !== "" && (shows(before, 0x300) || keptSelector === i - 1);
        keep = left && after !== "" && shows(after, 0x300);
      } else if (isSelector(c)) {
        keep = before !== "" && selects(before, c);
        if (keep) keptSelector = i;
      } else {
        keep = flags.has(i);
      }
      if (!keep) hidden.add(i);
    }
    return hidden.size ? { chars, hidden } : null;
  }

  function escapeOf(ch) {
    const c = ch.codePointAt(0);
    return c <= 0xffff ? "\\u" + c.toString(16).padStart(4, "0") : "\\U" + c.toString(16).padStart(8, "0");
  }

  // `text` as a plain string with its hidden characters escaped (tooltips)
  function plain(text) {
    const found = hiddenIn(text);
    if (!found) return text;
    return found.chars.map((ch, i) => (found.hidden.has(i) ? escapeOf(ch) : ch)).join("");
  }

  // `text` as strings and marked spans, one per hidden character
  function textParts(text) {
    const found = hiddenIn(text);
    if (!found) return [text];
    const parts = [];
    let run = "";
    found.chars.forEach((ch, i) => {
      if (!found.hidden.has(i)) {
        run += ch;
        return;
      }
      if (run) parts.push(run);
      run = "";
      const code = "U+" + ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
      const span = document.createElement("span");
      span.className = "hidden-char";
      span.title = "hidden character " + code;
      span.textContent = escapeOf(ch);
      parts.push(span);
    });
    if (run) parts.push(run);
    return parts;
  }

  function setText(node, text) {
    node.replaceChildren(...textParts(String(text)));
  }

  function add(node, ...children) {
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      if (typeof child === "string") node.append(...textParts(child));
      else node.append(child);
    }
    return node;
  }

  // --- DOM helpers (text only) ---------------------------------------------------------

  function el(tag, opts, ...children) {
    const node = document.createElement(tag);
    if (opts) {
      if (opts.cls) node.className = opts.cls;
      if (opts.text !== undefined && opts.text !== null) setText(node, opts.text);
      if (opts.title !== undefined && opts.title !== null) node.title = plain(String(opts.title));
      if (opts.attrs) {
        for (const [key, value] of Object.entries(opts.attrs)) node.setAttribute(key, String(value));
      }
      if (opts.on) {
        for (const [key, fn] of Object.entries(opts.on)) node.addEventListener(key, fn);
      }
    }
    return add(node, ...children);
  }

  // JSON.stringify writes null for Infinity and NaN: they are marked, then written bare
  const NONFINITE = "\u0000opswald-nonfinite:";
  const NONFINITE_TEXT = /"\\u0000opswald-nonfinite:(-?Infinity|NaN)"/g;

  function jsonText(value) {
    let text;
    let marked = false;
    if (typeof value === "string") return value;
    if (typeof value === "number") return String(value);
    const mark = (key, v) => {
      if (typeof v !== "number" || Number.isFinite(v)) return v;
      marked = true;
      return NONFINITE + String(v);
    };
    try {
      text = JSON.stringify(value, mark, 2);
    } catch (err) {
      text = String(value);
    }
    if (text === undefined) return "null";
    return marked ? text.replace(NONFINITE_TEXT, "$1") : text;
  }

  function pre(value) {
    const text = jsonText(value);
    const node = el("pre");
    if (text.length <= MAX_TEXT) {
      setText(node, text);
      return node;
    }
    setText(node, text.slice(0, MAX_TEXT));
    const more = el("button", {
      text: "show all " + text.length.toLocaleString() + " characters",
      attrs: { type: "button" },
      on: {
        click: () => {
          setText(node, text);
        },
      },
    });
    return el("div", null, node, more);
  }

  function section(title, ...children) {
    return el("div", { cls: "section" }, el("h4", { text: title }), ...children);
  }

  function details(summary, open, ...children) {
    const node = el("details", null, el("summary", { text: summary }), ...children);
    if (open) node.open = true;
    return node;
  }

  function lines(list) {
    const box = el("div", { cls: "lines" });
    for (const line of list) {
      const t = line.trimStart();
      let cls = "";
      if (t.startsWith("+ ")) cls = "add";
      else if (t.startsWith("- ")) cls = "del";
      else if (t.startsWith("~ ")) cls = "chg";
      box.append(el("div", { cls: cls, text: line }));
    }
    return box;
  }

  // --- formatting ------------------------------------------------------------------------

  function fmtMs(ms) {
    if (ms === null || ms === undefined) return "";
    if (ms >= 1000) return (ms / 1000).toFixed(ms >= 10000 ? 0 : 1) + " s";
    if (ms >= 10) return Math.round(ms) + " ms";
    if (ms >= 0.1 || ms === 0) return (Math.round(ms * 100) / 100) + " ms";
    // under a tenth: two significant digits, as the terminal prints it (never "0 ms")
    return Number(ms.toPrecision(2)) + " ms";
  }

  // decimals as the terminal's money(): four, and under a tenth of a cent as many as two
  // significant digits need (gpt-4o-mini's $0.000030 never reads as $0.0000)
  function costDecimals(cost) {
    const size = Math.abs(cost);
    if (size === 0 || !isFinite(size) || size >= 0.001) return 4;
    return Math.min(16, 1 - Math.floor(Math.log10(size)));
  }

  function fmtCost(cost) {
    if (cost === null || cost === undefined) return "";
    return "$" + cost.toFixed(costDecimals(cost));
  }

  // a model call that answered without a cost: unknown, not $0; row.unpriced says why
  // (no price for its model, no usage reported, stream cut short)
  function unpriced(row) {
    return "cost unknown (" + row.unpriced + ")";
  }

  // a run's cost: "≥ $x, n unpriced" when some of its model calls have no cost
  function fmtFigCost(f) {
    const text = fmtCost(f.cost);
    if (!text || !f.unpriced_calls) return text;
    return "≥ " + text + ", " + f.unpriced_calls + " unpriced";
  }

  function fmtNum(n) {
    return n === null || n === undefined ? "" : Number(n).toLocaleString();
  }

  function fmtDelta(delta, kind) {
    if (!delta) return "";
    const c = delta.change;
    let text;
    if (kind === "cost") text = (c >= 0 ? "+" : "−") + "$" + Math.abs(c).toFixed(costDecimals(c));
    else if (kind === "ms") text = (c >= 0 ? "+" : "−") + fmtMs(Math.abs(c));
    else text = (c >= 0 ? "+" : "−") + fmtNum(Math.abs(c));
    if (delta.percent !== null && delta.percent !== undefined) {
      text += " (" + (delta.percent >= 0 ? "+" : "") + delta.percent + "%)";
    }
    return text;
  }

  function label(row) {
    if (!row) return "(no step)";
    return row.name ? row.type + " " + row.name : row.type;
  }

  // --- virtual lists -----------------------------------------------------------------------

  class VList {
    constructor(container, rowHeight, renderRow) {
      this.container = container;
      this.rowHeight = rowHeight;
      this.renderRow = renderRow;
      this.items = [];
      this.spacer = el("div", { cls: "vspacer" });
      container.append(this.spacer);
      container.addEventListener("scroll", () => this.paint(false), { passive: true });
    }

    setItems(items) {
      this.items = items;
      this.spacer.style.height = items.length * this.rowHeight + "px";
      this.paint(true);
    }

    paint(force) {
      const top = this.container.scrollTop;
      const height = this.container.clientHeight || 600;
      const first = Math.max(0, Math.floor(top / this.rowHeight) - OVERSCAN);
      const last = Math.min(this.items.length, Math.ceil((top + height) / this.rowHeight) + OVERSCAN);
      if (!force && first === this.first && last === this.last) return;
      this.first = first;
      this.last = last;
      const rows = [];
      for (let i = first; i < last; i++) {
        const row = this.renderRow(this.items[i], i);
        row.classList.add("vrow");
        row.style.transform = "translateY(" + i * this.rowHeight + "px)";
        rows.push(row);
      }
      this.spacer.replaceChildren(...rows);
    }

    reveal(index) {
      if (index < 0) return;
      const top = this.container.scrollTop;
      const height = this.container.clientHeight || 600;
      const y = index * this.rowHeight;
      if (y < top) this.container.scrollTop = y;
      else if (y + this.rowHeight > top + height) this.container.scrollTop = y + this.rowHeight - height;
      this.paint(true);
    }
  }

  // --- state at a step (DESIGN §3a; assembled from references build_data computed) -------

  function stateAt(view, k) {
    const empty = { memory: null, variables: null, context: null, tool_outputs: [], last_output: null };
    if (!view || k <= 0 || view.steps.length === 0) return empty;
    const row = view.steps[Math.min(k, view.steps.length) - 1];
    const snap = row.st[0];
    const last = row.st[1];
    const tools = row.st[2];
    const parts = snap ? view.snapshots[String(snap)] : { memory: null, variables: null, context: null };
    return Object.assign({}, parts, {
      tool_outputs: view.tool_outputs.slice(0, tools),
      last_output: last ? view.outputs[String(last)] : null,
    });
  }

  function shownState(view, k) {
    const st = stateAt(view, k);
    const outputs = st.tool_outputs;
    if (outputs.length > MAX_TOOL_OUTPUTS) {
      const hidden = outputs.length - MAX_TOOL_OUTPUTS;
      st.tool_outputs = ["… " + hidden + " earlier tool outputs"].concat(outputs.slice(hidden));
    }
    return st;
  }

  // --- the index of goldens ---------------------------------------------------------------

  let indexList = null;
  let stepList = null;
  const timelines = [];

  function figuresOf(entry) {
    return entry.figures.actual || entry.figures.golden;
  }

  function indexRow(entry) {
    const f = figuresOf(entry);
    const meta = [f.steps + " steps"];
    if (f.cost !== null) meta.push(fmtFigCost(f));
    if (f.duration_ms) meta.push(fmtMs(f.duration_ms));
    const delta = entry.figures.delta;
    if (delta && delta.cost && delta.cost.percent) {
      meta.push("cost " + (delta.cost.percent > 0 ? "+" : "") + delta.cost.percent + "%");
    }
    if (entry.divergence) {
      const row = entry.rows ? entry.rows[entry.divergence - 1] : null;
      const what = entry.stopped ? "stopped at step " : "diverges at step ";
      meta.push(what + (row ? row[0] || row[1] : entry.divergence));
    }
    const row = el(
      "button",
      {
        cls: "index-row",
        attrs: {
          type: "button",
          "data-id": entry.id,
          "aria-current": state.entry === entry ? "true" : "false",
        },
        title: entry.file || entry.name,
        on: { click: () => select(entry, entry.start) },
      },
      el("span", { cls: "name" }, el("span", { cls: "badge " + entry.status, text: entry.status }), entry.name),
      el("span", { cls: "meta", text: meta.join(" · ") }),
    );
    return row;
  }

  function filterIndex() {
    const text = $("index-filter").value.trim().toLowerCase();
    const status = $("index-status").value;
    state.indexRows = DATA.goldens.filter(
      (g) =>
        (!status || g.status === status) &&
        (!text || (g.name + " " + (g.file || "")).toLowerCase().includes(text)),
    );
    $("index-count").textContent = state.indexRows.length + " of " + DATA.goldens.length + " goldens";
    indexList.setItems(state.indexRows);
  }

  // --- header and summary -------------------------------------------------------------------

  function renderSummary() {
    setText($("title"), DATA.title);
    const box = $("summary");
    const s = DATA.summary;
    const parts = [s.total + " golden" + (s.total === 1 ? "" : "s")];
    for (const [status, count] of Object.entries(s.counts)) parts.push(count + " " + status);
    if (s.cost !== null) parts.push("total " + fmtFigCost(s));
    if (s.duration_ms) parts.push(fmtMs(s.duration_ms));
    if (DATA.redacted) parts.push("personal data redacted");
    box.replaceChildren(...parts.map((p) => el("span", { text: p })));
    const select = $("index-status");
    select.append(el("option", { text: "all", attrs: { value: "" } }));
    for (const status of Object.keys(s.counts)) {
      select.append(el("option", { text: status, attrs: { value: status } }));
    }
  }

  function figuresTable(entry) {
    const g = entry.figures.golden;
    const a = entry.figures.actual;
    const d = entry.figures.delta;
    const head = el("tr", null, el("th", { text: "" }), el("th", { text: "golden" }));
    if (a) head.append(el("th", { text: "actual" }), el("th", { text: "Δ vs golden" }));
    const table = el("table", { cls: "figures" }, head);
    const rows = [
      ["cost", "cost", fmtCost],
      ["tokens", "total_tokens", fmtNum],
      ["duration", "duration_ms", fmtMs],
      ["steps", "steps", fmtNum],
      ["llm calls", "llm_calls", fmtNum],
      ["tool calls", "tool_calls", fmtNum],
    ];
    // a session that records no time (a hand-written golden) says so: its 0 is no measure
    const figure = (f, key, fmt) =>
      key === "cost" ? fmtFigCost(f)
        : key === "duration_ms" && f.duration_recorded === false ? "no time recorded"
          : fmt(f[key]);
    for (const [name, key, fmt] of rows) {
      const shown = (f) => figure(f, key, fmt) || "–";
      const tr = el("tr", null, el("td", { text: name }), el("td", { text: shown(g) }));
      if (a) {
        const delta = d ? d[key] : null;
        const kind = key === "cost" ? "cost" : key === "duration_ms" ? "ms" : "n";
        const cls = delta && delta.change > 0 ? "up" : delta && delta.change < 0 ? "down" : "";
        tr.append(el("td", { text: shown(a) }), el("td", { cls: cls, text: fmtDelta(delta, kind) }));
      }
      table.append(tr);
    }
    return table;
  }

  function findingBlock(f) {
    const box = el("div", { cls: f.failing === false ? "finding info" : "finding" });
    const head = el("div", { cls: "headline" });
    if (f.step) {
      head.append(
        el("button", {
          cls: "linkish",
          text: "step " + f.step,
          attrs: { type: "button" },
          on: { click: () => goto(findingAt(f)) },
        }),
        " ",
      );
    }
    add(head, f.headline || f.message);
    box.append(head);
    if (f.diff && f.diff.length) box.append(lines(f.diff));
    if (f.more_differences > 0) box.append(el("div", { cls: "muted", text: "… and " + (f.more_uncounted ? "at least " : "") + f.more_differences + (f.more_differences === 1 ? " more difference" : " more differences") }));
    if (f.suggestion) box.append(el("div", { cls: "hint", text: "hint: " + f.suggestion }));
    return box;
  }

  // the run's steps when the entry has a run (numbered as the golden steps they face, else
  // "of this run"), the golden's without one: `entry.top_steps`
  function topSteps(title, side, list, what) {
    if (!list.length) return null;
    const view = state.entry[side];
    const box = el("div", { cls: "top-steps" }, el("span", { cls: "muted", text: title + ": " }));
    list.forEach((item, i) => {
      const row = view.steps[item.n - 1];
      const text = "step " + item.step + (item.run_step ? " of this run" : "");
      add(
        box,
        i ? " · " : "",
        el("button", { cls: "linkish", text: text, attrs: { type: "button" }, on: { click: () => goto(posOf(side, item.n)) } }),
        " " + label(row) + " " + what(row),
      );
    });
    return box;
  }

  function renderHead() {
    const entry = state.entry;
    const box = $("head");
    const view = entry.golden;
    const title = el("h2", null, el("span", { cls: "badge " + entry.status, text: entry.status }), entry.name);
    const parts = [title];
    if (entry.file) parts.push(el("div", { cls: "file", text: entry.file }));
    if (entry.description) parts.push(el("div", { cls: "text", text: entry.description }));
    if (entry.tags.length) parts.push(el("div", { cls: "muted", text: "tags: " + entry.tags.join(", ") }));
    if (entry.record && entry.record.variant) parts.push(el("div", { cls: "muted", text: "variant: " + entry.record.variant }));
    parts.push(lanesLine(entry));
    parts.push(figuresTable(entry));
    const top = entry.top_steps;
    parts.push(topSteps("slowest steps", top.side, top.slowest, (r) => fmtMs(r.ms) + (r.slow ? " (slow)" : "")));
    parts.push(topSteps("most expensive steps", top.side, top.costliest, (r) => fmtCost(r.cost)));
    if (entry.status === "skipped" && entry.record && entry.record.reason)
      parts.push(el("div", { cls: "finding", text: "skipped: " + entry.record.reason }));
    if (view.stub) parts.push(el("div", { cls: "finding", text: "not recorded yet: run with --opswald-mode=record" }));
    for (const f of entry.findings) parts.push(findingBlock(f));
    for (const a of entry.analyses) {
      if (a.step === null) parts.push(analysisBlock(a, entry[a.side] || view));
    }
    for (const note of view.notes) parts.push(el("div", { cls: "note", text: "note: " + note }));
    const io = [details("input", false, pre(view.input)), details("output", false, pre(view.output))];
    if (view.error) io.push(details("error", true, pre(view.error)));
    if (entry.actual) {
      io.push(details("actual output", false, pre(entry.actual.output)));
      if (entry.actual.error) io.push(details("actual error", true, pre(entry.actual.error)));
    }
    parts.push(el("div", null, ...io));
    box.replaceChildren(...parts.filter((x) => x !== null));
    box.scrollTop = 0;
  }

  // how many threads or tasks made the calls, for sessions whose calls came from more than
  // one (`lane` on their steps); nothing for a sequential session
  function lanesLine(entry) {
    const g = entry.golden.lanes || 0;
    const a = entry.actual ? entry.actual.lanes || 0 : g;
    if (!g && !a) return null;
    const count = (n) => (n ? n + " lanes" : "no lanes");
    const text = g === a ? count(g) : "golden: " + count(g) + ", actual: " + count(a);
    return el("div", { cls: "muted lanes", text: text + " · each step says which made it", title: "lane: " + LANE_HELP });
  }

  // A step's lane in the list: both sides' where they differ (`lane 2/3`, as `#4/3`)
  function laneTag(g, a) {
    const gl = g && g.lane;
    const al = a && a.lane;
    if (!gl && !al) return null;
    const first = gl || al;
    const both = gl && al && gl !== al;
    const title = both ? "golden lane " + gl + ", actual lane " + al : "lane " + first;
    return el("span", {
      cls: "lane lane-" + ((first - 1) % LANE_COLOURS),
      text: "lane " + (both ? gl + "/" + al : first),
      title: title + ": " + LANE_HELP,
    });
  }

  // --- timelines ------------------------------------------------------------------------------

  class Timeline {
    constructor(side) {
      this.side = side;
      this.canvas = el("canvas", {
        attrs: { "data-side": side, "aria-label": side + " timeline: click or drag to pick a step", role: "slider" },
      });
      this.row = el("div", { cls: "tl-row" }, el("span", { cls: "tl-label", text: side }), this.canvas);
      this.dragging = false;
      this.canvas.addEventListener("pointerdown", (e) => {
        this.dragging = true;
        try {
          this.canvas.setPointerCapture(e.pointerId);
        } catch (err) {
          /* synthetic pointers have no capture */
        }
        this.pick(e);
      });
      this.canvas.addEventListener("pointermove", (e) => {
        if (this.dragging) this.pick(e);
      });
      const stop = () => {
        this.dragging = false;
      };
      this.canvas.addEventListener("pointerup", stop);
      this.canvas.addEventListener("pointercancel", stop);
    }

    span() {
      return [state.from, Math.max(state.from, state.to || state.total)];
    }

    pick(e) {
      const rect = this.canvas.getBoundingClientRect();
      const [from, to] = this.span();
      const count = to - from + 1;
      const x = Math.min(Math.max(e.clientX - rect.left, 0), rect.width - 1);
      const n = from + Math.floor((x / Math.max(rect.width, 1)) * count);
      goto(nearestVisible(Math.min(Math.max(n, from), to)));
    }

    draw() {
      const view = state.entry[this.side];
      const canvas = this.canvas;
      const dpr = window.devicePixelRatio || 1;
      const width = Math.max(canvas.clientWidth, 50);
      const height = canvas.clientHeight || 36;
      canvas.width = Math.round(width * dpr);
      canvas.height = Math.round(height * dpr);
      const ctx = canvas.getContext("2d");
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, width, height);
      if (!view) return;
      const [from, to] = this.span();
      const count = to - from + 1;
      const w = width / count;
      const maxMs = view.max_ms || 0;
      const diff = new Set(state.entry.diff_steps);
      for (let n = from; n <= to && n <= state.total; n++) {
        const row = rowOf(this.side, n);
        if (!row) continue; // the other side's step alone: a gap, so both stay aligned
        const x = (n - from) * w;
        const scale = maxMs > 0 && row.ms ? Math.sqrt(row.ms / maxMs) : 0;
        const h = Math.max(4, height * 0.3 + (height - 10) * 0.7 * scale);
        ctx.globalAlpha = state.filter.has(row.cat) ? 1 : 0.15;
        ctx.fillStyle = COLORS[row.cat] || "#888";
        ctx.fillRect(x, height - h, Math.max(w - (w > 4 ? 1 : 0), 1), h);
        if (row.notes.length) {
          ctx.fillStyle = COLORS.state;
          ctx.fillRect(x, 0, Math.max(w - 1, 1), 2);
        }
        if (diff.has(n)) {
          ctx.fillStyle = COLORS.error;
          ctx.fillRect(x, 3, Math.max(w - 1, 1), 2);
        }
      }
      ctx.globalAlpha = 1;
      const div = state.entry.divergence;
      if (div && div >= from && div <= to) {
        const x = (div - from + 0.5) * w;
        ctx.fillStyle = COLORS.error;
        ctx.beginPath();
        ctx.moveTo(x - 5, 0);
        ctx.lineTo(x + 5, 0);
        ctx.lineTo(x, 7);
        ctx.closePath();
        ctx.fill();
      }
      if (state.step >= from && state.step <= to) {
        const x = (state.step - from) * w;
        ctx.strokeStyle = "#1d2330";
        ctx.lineWidth = 2;
        ctx.strokeRect(x, 1, Math.max(w, 2), height - 2);
      }
    }
  }

  function renderTimelines() {
    const box = $("timelines");
    timelines.length = 0;
    timelines.push(new Timeline("golden"));
    if (state.entry.actual) timelines.push(new Timeline("actual"));
    box.replaceChildren(...timelines.map((t) => t.row));
    drawTimelines();
  }

  function drawTimelines() {
    for (const t of timelines) t.draw();
  }

  // --- steps -----------------------------------------------------------------------------------

  // A position k is a row of the compare view: the golden step and the actual step on it
  // (entry.rows, built by build_data: a served call beside the golden step it answered as,
  // snapshots paired in order between them). A golden without a run has one row per step.
  function stepAt(side, k) {
    const entry = state.entry;
    const view = entry[side];
    if (!view || k < 1) return 0;
    if (!entry.rows) return k <= view.steps.length ? k : 0;
    const row = entry.rows[k - 1];
    return row ? row[side === "golden" ? 0 : 1] : 0;
  }

  function rowOf(side, k) {
    const n = stepAt(side, k);
    return n ? state.entry[side].steps[n - 1] : null;
  }

  function posOf(side, n) {
    const at = state.positions[side];
    return at && at.has(n) ? at.get(n) : n;
  }

  function findingAt(f) {
    return posOf(f.run_step ? "actual" : "golden", f.step);
  }

  function positions(entry) {
    const out = { golden: null, actual: null };
    if (!entry.rows) return out;
    out.golden = new Map();
    out.actual = new Map();
    entry.rows.forEach(([g, a], i) => {
      if (g) out.golden.set(g, i + 1);
      if (a) out.actual.set(a, i + 1);
    });
    return out;
  }

  function passes(n) {
    const g = rowOf("golden", n);
    const a = rowOf("actual", n);
    return (g && state.filter.has(g.cat)) || (a && state.filter.has(a.cat)) || false;
  }

  function computeVisible() {
    const to = Math.min(state.to || state.total, state.total);
    const out = [];
    for (let n = Math.max(1, state.from); n <= to; n++) if (passes(n)) out.push(n);
    state.visible = out;
  }

  function nearestVisible(n) {
    const list = state.visible;
    if (!list.length) return n;
    let lo = 0;
    let hi = list.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid] < n) lo = mid + 1;
      else hi = mid;
    }
    const after = list[lo];
    const before = lo > 0 ? list[lo - 1] : after;
    return Math.abs(after - n) < Math.abs(n - before) ? after : before;
  }

  function stepRow(n) {
    const entry = state.entry;
    const g = rowOf("golden", n);
    const a = rowOf("actual", n);
    const row = g || a;
    const view = g ? entry.golden : entry.actual;
    const differs = entry.diff_steps.includes(n);
    const unreached = (entry.unreached_steps || []).includes(n);
    const only = unreached ? "(not reached) " : "(golden only) ";
    const text = g ? (entry.actual && !a ? only : "") + label(g) : "(actual only) " + label(a);
    const gn = stepAt("golden", n);
    const an = stepAt("actual", n);
    const number = g && a && gn !== an ? "#" + gn + "/" + an : "#" + (gn || an);
    const labelText = entry.actual && differs && a && g ? text + "  ≠  " + label(a) : text;
    const bar = el("span", { cls: row.slow ? "bar slow" : "bar" });
    bar.style.width = view.max_ms > 0 && row.ms ? Math.max(2, (100 * row.ms) / view.max_ms) + "%" : "0";
    const cbar = el("span", { cls: row.unpriced ? "cbar unpriced" : "cbar" });
    cbar.style.width = view.max_cost > 0 && row.cost ? Math.max(2, (100 * row.cost) / view.max_cost) + "%" : "0";
    const flags = [];
    if (entry.divergence === n) {
      const title = entry.stopped ? "the run was stopped here" : "first divergence";
      flags.push(el("span", { cls: "flag div", text: "◆", title: title }));
    }
    else if (differs) flags.push(el("span", { cls: "flag diff", text: "≠", title: "golden and actual differ" }));
    if ((g && g.err) || (a && a.err)) flags.push(el("span", { cls: "flag err", text: "✖", title: "error" }));
    if (row.notes.length) flags.push(el("span", { cls: "flag note", text: "✎", title: row.notes.join("\n") }));
    if (row.slow) flags.push(el("span", { cls: "badge slow", text: "slow" }));
    const costNote = row.cost ? " · " + fmtCost(row.cost) : row.unpriced ? " · " + unpriced(row) : "";
    return el(
      "button",
      {
        cls: "step-row",
        attrs: { type: "button", "data-n": n, "aria-current": n === state.step ? "true" : "false" },
        title: row.desc || labelText,
        on: { click: () => goto(n) },
      },
      el("span", { cls: "n", text: number, title: a && gn !== an ? "golden step " + (gn || "–") + ", actual step " + an : null }),
      el("span", { cls: "swatch cat-" + row.cat }),
      el("span", { cls: "label", text: labelText }),
      ...flags,
      laneTag(g, a),
      el("span", { cls: "bar-wrap", title: fmtMs(row.ms) + costNote }, bar, cbar),
      el("span", { cls: "ms", text: fmtMs(row.ms) }),
    );
  }

  function refreshSteps() {
    computeVisible();
    stepList.setItems(state.visible);
    stepList.reveal(state.visible.indexOf(state.step));
  }

  // --- inspector -------------------------------------------------------------------------------

  function messageBlock(m) {
    if (m === null || typeof m !== "object") return el("div", { cls: "msg" }, el("div", { cls: "content", text: jsonText(m) }));
    const role = String(m.role || m.type || "message");
    // a Responses call's `instructions`: a system message marked so, labelled so
    const instructions = m.role === "system" && m.type === "instructions";
    const label = instructions ? "system · instructions" : role;
    const box = el("div", { cls: "msg role-" + role.replace(/[^a-z_]/gi, "") }, el("div", { cls: "role", text: label }));
    const content = m.content;
    if (typeof content === "string") box.append(el("div", { cls: "content", text: content }));
    else if (Array.isArray(content)) {
      for (const part of content) {
        if (part && typeof part === "object" && typeof part.text === "string") box.append(el("div", { cls: "content", text: part.text }));
        else box.append(pre(part));
      }
    } else if (content !== undefined && content !== null) box.append(pre(content));
    const rest = {};
    for (const [key, value] of Object.entries(m)) {
      if (key === "type" && instructions) continue;
      if (key !== "role" && key !== "content" && value !== null && value !== undefined) rest[key] = value;
    }
    if (Object.keys(rest).length) box.append(pre(rest));
    return box;
  }

  function conversation(messages) {
    const box = el("div", { cls: "conversation" });
    let limit = MAX_MESSAGES;
    const paint = () => {
      const shown = messages.slice(0, limit).map(messageBlock);
      box.replaceChildren(...shown);
      if (messages.length > limit) {
        box.append(
          el("button", {
            text: "show " + Math.min(messages.length - limit, MAX_MESSAGES) + " more of " + (messages.length - limit) + " messages",
            attrs: { type: "button" },
            on: {
              click: () => {
                limit += MAX_MESSAGES;
                paint();
              },
            },
          }),
        );
      }
    };
    paint();
    return box;
  }

  function stepContent(row) {
    const d = row.data;
    const out = [];
    const meta = [];
    if (row.ms !== null && row.ms !== undefined) meta.push("duration " + fmtMs(row.ms));
    if (row.cost !== null && row.cost !== undefined) meta.push("cost " + fmtCost(row.cost));
    else if (row.unpriced) meta.push(unpriced(row));
    if (row.tok !== null && row.tok !== undefined) meta.push(fmtNum(row.tok) + " tokens");
    if (row.ts) meta.push(row.ts);
    if (row.lane) meta.push("lane " + row.lane);
    out.push(el("div", { cls: "meta-line" }, ...meta.map((m) => el("span", { text: m })), row.slow ? el("span", { cls: "badge slow", text: "slow" }) : null));
    if (row.desc) out.push(el("div", { cls: "text", text: row.desc }));
    for (const note of row.notes) out.push(el("div", { cls: "note", text: "note: " + note }));
    if (row.err) out.push(el("div", { cls: "error-text", text: row.err }));
    if (d.type === "llm_call") {
      const input = d.input || {};
      const about = [d.provider, d.api, d.model].filter(Boolean).join(" · ");
      out.push(section("request" + (about ? " · " + about : "")));
      if (input.params) out.push(pre(input.params));
      if (input.tools && input.tools.length) out.push(details(input.tools.length + " tool definitions", false, pre(input.tools)));
      out.push(conversation(input.messages || []));
      const output = d.output || {};
      const response = [];
      if (typeof output.content === "string") response.push(el("div", { cls: "msg role-assistant" }, el("div", { cls: "role", text: "assistant" }), el("div", { cls: "content", text: output.content })));
      else if (output.content !== undefined && output.content !== null) response.push(pre(output.content));
      for (const call of output.tool_calls || []) {
        const fn = call && (call.function || call);
        const name = (fn && fn.name) || "tool call";
        response.push(el("div", { cls: "msg role-tool" }, el("div", { cls: "role", text: "calls " + name }), pre(fn && fn.arguments !== undefined ? fn.arguments : call)));
      }
      if (output.finish_reason) response.push(el("div", { cls: "muted", text: "finish reason: " + output.finish_reason }));
      out.push(section("response", ...response));
      if (d.usage) out.push(section("usage", pre(d.usage)));
      if (d.cost_source) out.push(el("div", { cls: "muted", text: "cost source: " + d.cost_source }));
    } else if (d.type === "tool_call") {
      out.push(el("div", { cls: "muted", text: "tool " + d.tool + (d.call_id ? " · call id " + d.call_id : "") }));
      out.push(section("arguments", pre(d.input === undefined ? null : d.input)));
      if (d.error) out.push(section("error", el("div", { cls: "error-text", text: d.error.type + (d.error.message ? ": " + d.error.message : "") })));
      else out.push(section("result", pre(d.output === undefined ? null : d.output)));
    } else if (d.type === "user_input") {
      out.push(section("user input", el("div", { cls: "msg role-user" }, el("div", { cls: "content", text: jsonText(d.content === undefined ? null : d.content) }))));
    } else {
      const snap = {};
      for (const [key, value] of Object.entries(d)) {
        if (!["step", "type", "timestamp", "duration_ms", "lane", "description", "error", "attributes"].includes(key)) snap[key] = value;
      }
      out.push(section("snapshot", pre(snap)));
    }
    if (d.attributes) out.push(details("attributes", false, pre(d.attributes)));
    out.push(details("step as recorded", false, pre(d)));
    return out;
  }

  function sideColumn(side, view, k) {
    const n = stepAt(side, k);
    const row = rowOf(side, k);
    const col = el("div", { cls: "side", attrs: { "data-side": side } });
    const total = view.steps.length;
    const head = row ? "step " + n + " of " + total + " · " + label(row) : "no step here (" + total + " steps)";
    if (state.entry.actual) col.append(el("div", { cls: "side-title", text: side + ": " + head }));
    if (!row) return col;
    col.append(...stepContent(row));
    const compare = section("compare steps · step " + (n - 1) + " → step " + n, row.chg.length ? lines(row.chg) : el("div", { cls: "muted", text: "no state change" }));
    compare.classList.add("compare");
    const current = details("state at step " + n, true, pre(shownState(view, n)));
    current.classList.add("state");
    col.append(compare, current);
    return col;
  }

  function analysisBlock(a, view) {
    const box = el("div", { cls: "analysis" });
    box.append(el("h3", { text: "error analysis · " + (a.side === "actual" ? "actual: " : "") + a.title }));
    box.append(el("div", { cls: "error-text", text: a.error }));
    if (a.kind === "step_error" && a.call && a.call.tool) box.append(section("call", pre(a.call)));
    if (a.leads.length) {
      const list = el("ul");
      for (const lead of a.leads) {
        list.append(
          el(
            "li",
            null,
            el("button", {
              cls: "linkish",
              text: "step " + lead.step,
              attrs: { type: "button" },
              on: { click: () => goto(posOf(a.side, lead.step)) },
            }),
            " " + (lead.name ? lead.type + " " + lead.name : lead.type) + ": " + lead.why,
          ),
        );
      }
      box.append(section("steps that led to it", list));
    }
    box.append(details("state before it (step " + a.state_step + ")", false, pre(shownState(view, a.state_step))));
    box.append(el("div", { cls: "fix" }, el("strong", { text: "suggested fix: " }), a.fix));
    return box;
  }

  function renderInspector() {
    const entry = state.entry;
    const n = state.step;
    const box = $("inspector");
    const parts = [];
    if (!state.total) {
      box.replaceChildren(el("div", { cls: "empty", text: entry.golden.stub ? "not recorded yet: no steps" : "this session has no steps" }));
      return;
    }
    const g = rowOf("golden", n);
    const gn = stepAt("golden", n);
    const an = stepAt("actual", n);
    let title = "step " + n + " of " + state.total;
    if (entry.actual && gn !== an) {
      title += " · " + (gn ? "golden step " + gn : "not in the golden") + " · " + (an ? "actual step " + an : "not in the actual");
    }
    parts.push(el("h3", { text: title + " · " + label(g || rowOf("actual", n)) }));
    const here = entry.findings.filter((f) => f.step && findingAt(f) === n);
    for (const f of here) parts.push(findingBlock(f));
    const diff = entry.step_diffs[String(n)];
    if (diff && !here.length) {
      parts.push(section("golden vs actual", lines(diff)));
    }
    for (const a of entry.analyses) {
      if (a.step !== null && posOf(a.side, a.step) === n) parts.push(analysisBlock(a, entry[a.side] || entry.golden));
    }
    const cols = el("div", { cls: "columns" }, sideColumn("golden", entry.golden, n));
    if (entry.actual) cols.append(sideColumn("actual", entry.actual, n));
    parts.push(cols);
    box.replaceChildren(...parts);
    box.scrollTop = 0;
  }

  // --- selection, hash, keyboard, playback -------------------------------------------------------

  // Browsers throttle history updates (Chromium: 200 per 10 s), and holding → or playing
  // fast would hit that: the hash is written at most every HASH_EVERY ms, the last one kept.
  let hashTimer = null;
  let hashWritten = -Infinity;
  // The hash as this page last wrote or read it. A pending write must not undo a hash set
  // from outside (a link, the address bar, a test) whose hashchange event has not run yet.
  let hashSeen = location.hash;

  function writeHash() {
    if (hashTimer !== null) return; // the pending write will take the latest position
    const wait = HASH_EVERY - (performance.now() - hashWritten);
    if (wait <= 0) flushHash();
    else hashTimer = setTimeout(flushHash, wait);
  }

  function flushHash() {
    hashTimer = null;
    hashWritten = performance.now();
    if (!state.entry) return;
    if (location.hash !== hashSeen) {
      onHash(); // changed from outside since we last looked: it wins
      return;
    }
    const hash = "#golden=" + encodeURIComponent(state.entry.id) + "&step=" + state.step;
    if (location.hash === hash) return;
    try {
      history.replaceState(null, "", hash);
    } catch (err) {
      location.replace(hash);
    }
    hashSeen = location.hash;
  }

  function readHash() {
    const out = {};
    for (const part of location.hash.replace(/^#/, "").split("&")) {
      const eq = part.indexOf("=");
      if (eq > 0) {
        try {
          out[decodeURIComponent(part.slice(0, eq))] = decodeURIComponent(part.slice(eq + 1));
        } catch (err) {
          /* a malformed hash selects nothing */
        }
      }
    }
    return out;
  }

  function totalOf(entry) {
    if (entry.rows) return entry.rows.length;
    return Math.max(entry.golden.steps.length, entry.actual ? entry.actual.steps.length : 0);
  }

  // The step number column: as wide as its longest label (`#1299/1300` where the sides
  // number a row apart), so no label is clipped and short sessions keep a narrow column.
  function numberColumn() {
    let widest = 2;
    for (let n = 1; n <= state.total; n++) {
      const gn = stepAt("golden", n);
      const an = stepAt("actual", n);
      const text = gn && an && gn !== an ? "#" + gn + "/" + an : "#" + (gn || an);
      if (text.length > widest) widest = text.length;
    }
    $("steps").style.setProperty("--n-width", widest + 1 + "ch");
  }

  function select(entry, step) {
    stop();
    const changed = state.entry !== entry;
    state.entry = entry;
    state.total = totalOf(entry);
    if (changed) state.positions = positions(entry);
    if (changed) {
      numberColumn();
      state.from = 1;
      state.to = null;
      $("range-from").value = "";
      $("range-to").value = "";
      renderHead();
      renderTimelines();
      indexList.paint(true);
    }
    state.step = Math.min(Math.max(1, step || 1), Math.max(state.total, 1));
    refreshSteps();
    show();
  }

  function goto(n) {
    if (!state.total) return;
    state.step = Math.min(Math.max(1, n), state.total);
    show();
  }

  function show() {
    const total = state.total;
    $("position").textContent = total ? "step " + state.step + " of " + total : "no steps";
    writeHash();
    drawTimelines();
    stepList.reveal(state.visible.indexOf(state.step));
    renderInspector();
  }

  function move(delta) {
    const list = state.visible;
    if (!list.length) return;
    const n = state.step;
    if (delta > 0) {
      const next = list.find((x) => x > n);
      if (next !== undefined) goto(next);
      else stop();
    } else {
      for (let i = list.length - 1; i >= 0; i--) {
        if (list[i] < n) {
          goto(list[i]);
          return;
        }
      }
    }
  }

  function edge(last) {
    const list = state.visible;
    if (list.length) goto(last ? list[list.length - 1] : list[0]);
  }

  function delayOf(n) {
    const side = rowOf("golden", n) ? "golden" : "actual";
    const row = rowOf(side, n);
    const next = rowOf(side, n + 1);
    let ms = row && row.ms ? row.ms : 0;
    if (row && next && row.ts && next.ts) {
      const gap = Date.parse(next.ts) - Date.parse(row.ts);
      if (gap > 0) ms = gap;
    }
    const speed = $("speed").value;
    if (speed === "fast") return 80;
    if (speed === "x10") ms = ms / 10;
    return Math.min(Math.max(ms, 40), 4000);
  }

  function play() {
    if (state.timer !== null) {
      stop();
      return;
    }
    if (state.visible.length && state.step >= state.visible[state.visible.length - 1]) edge(false);
    $("play").textContent = "pause";
    const tick = () => {
      const before = state.step;
      move(1);
      if (state.step === before || state.timer === null) {
        stop();
        return;
      }
      state.timer = setTimeout(tick, delayOf(state.step));
    };
    state.timer = setTimeout(tick, delayOf(state.step));
  }

  function stop() {
    if (state.timer !== null) clearTimeout(state.timer);
    state.timer = null;
    $("play").textContent = "play";
  }

  function onKey(e) {
    const tag = e.target && e.target.tagName;
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") return;
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === "ArrowRight") move(1);
    else if (e.key === "ArrowLeft") move(-1);
    else if (e.key === "Home") edge(false);
    else if (e.key === "End") edge(true);
    else if (e.key === " ") play(); // also over a focused button: Space is play/pause here
    else return;
    e.preventDefault();
  }

  function onHash() {
    hashSeen = location.hash;
    const h = readHash();
    const entry = DATA.goldens.find((g) => g.id === h.golden);
    const step = parseInt(h.step, 10);
    if (!entry) return;
    if (entry !== state.entry) select(entry, step || entry.start);
    else if (step && step !== state.step) goto(step);
  }

  // --- filters -------------------------------------------------------------------------------------

  function renderTypeFilter() {
    const box = $("type-filter");
    for (const cat of CATS) {
      const input = el("input", { attrs: { type: "checkbox", "data-cat": cat, "aria-label": CAT_NAMES[cat] } });
      input.checked = true;
      input.addEventListener("change", () => {
        if (input.checked) state.filter.add(cat);
        else state.filter.delete(cat);
        onFilter();
      });
      box.append(el("label", { cls: "type-toggle" }, input, el("span", { cls: "swatch cat-" + cat }), CAT_NAMES[cat]));
    }
  }

  function onFilter() {
    const from = parseInt($("range-from").value, 10);
    const to = parseInt($("range-to").value, 10);
    state.from = from > 0 ? from : 1;
    state.to = to > 0 ? Math.max(to, state.from) : null;
    computeVisible();
    stepList.setItems(state.visible);
    if (state.visible.length && !state.visible.includes(state.step)) {
      state.step = nearestVisible(state.step);
    }
    show();
  }

  // --- start -------------------------------------------------------------------------------------

  function start() {
    renderSummary();
    renderTypeFilter();
    indexList = new VList($("index-list"), INDEX_ROW, (entry) => indexRow(entry));
    stepList = new VList($("steps"), STEP_ROW, (n) => stepRow(n));
    $("index-filter").addEventListener("input", filterIndex);
    $("index-status").addEventListener("change", filterIndex);
    $("first").addEventListener("click", () => edge(false));
    $("prev").addEventListener("click", () => move(-1));
    $("play").addEventListener("click", play);
    $("next").addEventListener("click", () => move(1));
    $("last").addEventListener("click", () => edge(true));
    for (const id of ["range-from", "range-to"]) {
      $(id).addEventListener("input", onFilter);
      $(id).addEventListener("change", onFilter);
    }
    $("range-reset").addEventListener("click", () => {
      $("range-from").value = "";
      $("range-to").value = "";
      onFilter();
    });
    document.addEventListener("keydown", onKey);
    window.addEventListener("hashchange", onHash);
    window.addEventListener("resize", () => {
      drawTimelines();
      indexList.paint(true);
      stepList.paint(true);
    });
    filterIndex();
    if (!DATA.goldens.length) {
      $("head").replaceChildren(el("div", { cls: "empty", text: "no goldens in this report" }));
      return;
    }
    const h = readHash();
    const wanted = DATA.goldens.find((g) => g.id === h.golden);
    const entry = wanted || DATA.goldens.find((g) => g.status === "failed" || g.status === "error") || DATA.goldens[0];
    const step = wanted ? parseInt(h.step, 10) || entry.start : entry.start;
    select(entry, step);
    indexList.reveal(state.indexRows.indexOf(entry));
  }

  start();
  document.documentElement.setAttribute("data-ready", "1");
  window.__opswaldReady = performance.now();
})();
