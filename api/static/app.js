// citeqa playground: plain JavaScript over the public HTTP API (README, "HTTP API").
// Answers stream from POST /v1/chat/completions (Server-Sent Events); every [n] marker
// becomes a button that shows its quote highlighted in the cited document version, with
// its PDF page and a link into the original when the API gives them. Files are uploaded
// as multipart/form-data (file picker or drag and drop). Everything happens in the
// collection picked at the top (GET /v1/collections): asked, listed, added and uploaded
// there, through the API's `collection` field or `?collection=` parameter.
"use strict";

const $ = (id) => document.getElementById(id);
const DEFAULT_COLLECTION = "default";
const el = {
  generator: $("generator"), generatorHint: $("generator-hint"),
  collection: $("collection"), collectionNew: $("collection-new"), collectionHint: $("collection-hint"),
  conversation: $("conversation"), askForm: $("ask-form"), question: $("question"),
  ask: $("ask"), stop: $("stop"), clear: $("clear"), status: $("status"),
  quote: $("quote-view"),
  docList: $("doc-list"), docCount: $("doc-count"), docMore: $("doc-more"),
  docForm: $("doc-form"), docAdd: $("doc-add"), docTitle: $("doc-title"), docText: $("doc-text"), docMessage: $("doc-message"),
  docFile: $("doc-file"), dropZone: $("drop-zone"), uploadMessage: $("upload-message"),
};

const state = {
  messages: [],           // finished turns, sent again with each question so follow-ups work
  controller: null,       // AbortController of the answer being streamed, if any
  generators: new Map(),  // name -> {description, available, reason, ...}
  documents: new Map(),   // "doc_id@version" -> Promise of the document (versions never change)
  nextOffset: null,       // of the document list, null when it is all shown
  collection: DEFAULT_COLLECTION,  // where questions, listings and new documents go
};
const citationsOf = new WeakMap();  // answer element -> Map(marker number -> citation)
const MARKER_GROUP = /\[\s*\d+(?:\s*,\s*\d+)*\s*\]/g;  // "[1]", "[1, 2]" as in qa/citations.py
const CONTEXT = 300;  // code points of document text shown on each side of a quote
const COLLECTION_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;  // index/scope.py

// ---- helpers -------------------------------------------------------------------------

/** h("button", {class: "x", disabled: true}, "text", child) builds an element; strings
 * become text nodes, so nothing from the server is ever parsed as HTML. */
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value == null) continue;
    node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children);
  return node;
}

/** fetch JSON (or send a FormData as multipart/form-data: the browser sets its boundary);
 * a non-2xx throws the API's {"error": {"message"}} as an Error. */
async function api(path, { method = "GET", body, form } = {}) {
  const init = { method };
  if (body !== undefined) {
    init.headers = { "Content-Type": "application/json" };
    init.body = JSON.stringify(body);
  } else if (form !== undefined) {
    init.body = form;
  }
  const response = await fetch(path, init);
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new Error(data?.error?.message || `${response.status} ${response.statusText}`);
  return data;
}

/** Parse a text/event-stream body: yields each event's data as JSON, stops at [DONE]. */
async function* readEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "", data = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buffer += done ? "\n\n" : value;  // the end of the body ends the last event
      const lines = buffer.split("\n");
      buffer = lines.pop();  // a partial line waits for the next read
      for (const raw of lines) {
        const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
        if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
        if (line === "" && data.length) {  // a blank line ends an event
          const payload = data.join("\n");
          data = [];
          if (payload === "[DONE]") return;
          yield JSON.parse(payload);
        }
      }
      if (done) return;
    }
  } finally {
    reader.cancel().catch(() => {});  // the reader stopped early (an error, Stop): close the stream
  }
}

/** The request field naming the picked collection: none for `default`, so a server that
 * knows no collections gets the requests it always got. */
const inCollection = () => (state.collection === DEFAULT_COLLECTION ? {} : { collection: state.collection });

/** `path` with `?collection=` (or `&collection=`) added for a collection other than default. */
function withCollection(path) {
  if (state.collection === DEFAULT_COLLECTION) return path;
  return `${path}${path.includes("?") ? "&" : "?"}collection=${encodeURIComponent(state.collection)}`;
}

const fmt = (x) => (typeof x === "number" ? x.toFixed(2) : "–");

/** "p. 3", "pp. 3–4", or "" for a citation without a page (not from a PDF). */
function pagesOf(citation) {
  if (citation.page == null) return "";
  return citation.end_page != null && citation.end_page !== citation.page
    ? `pp. ${citation.page}–${citation.end_page}` : `p. ${citation.page}`;
}

/** The API only links http(s) URLs; checked again so no other scheme becomes a link here. */
const isWebLink = (link) => typeof link === "string" && /^https?:\/\//i.test(link);

// ---- generators ----------------------------------------------------------------------

async function loadGenerators() {
  const { generators, default: fallback } = await api("/v1/generators");
  state.generators = new Map(generators.map((g) => [g.name, g]));
  el.generator.replaceChildren(...generators.map((g) => h("option", {
    value: g.name, selected: g.name === fallback, disabled: !g.available,
    title: g.available ? g.description : g.reason,
  }, g.available ? g.name : `${g.name} (unavailable)`)));
  showGeneratorHint();
}

function showGeneratorHint() {
  const chosen = state.generators.get(el.generator.value);
  const missing = [...state.generators.values()].filter((g) => !g.available);
  el.generatorHint.replaceChildren(chosen ? chosen.description : "",
    ...missing.map((g) => h("span", { class: "unavailable" }, `${g.name} is unavailable: ${g.reason}`)));
}

// ---- collections ---------------------------------------------------------------------

/** Fill the picker from GET /v1/collections, keeping the current choice. A server without
 * the route (or one that refuses it) leaves `default` alone in the picker. */
async function loadCollections() {
  let collections;
  try {
    ({ collections } = await api("/v1/collections"));
  } catch (err) {
    collections = [{ name: DEFAULT_COLLECTION, documents: null }];
  }
  if (!collections.some((c) => c.name === state.collection)) collections.push({ name: state.collection, documents: 0 });
  el.collection.replaceChildren(...collections.map((c) => h("option", {
    value: c.name, selected: c.name === state.collection,
  }, c.documents == null ? c.name : `${c.name} (${c.documents})`)));
}

function chooseCollection(name) {
  if (name === state.collection) return;
  state.collection = name;
  el.collection.value = name;
  clearConversation(`Now asking in “${name}”.`);
  el.quote.replaceChildren(h("p", { class: "empty" }, "Pick a citation marker in an answer to see its quote in the document."));
  el.collectionHint.textContent = "";
  loadDocuments().catch((err) => (el.docMessage.textContent = `Could not list documents: ${err.message}`));
}

/** Ask for a name and create the collection (POST /v1/collections); if the server cannot,
 * it is still picked: the first document added to it creates it. */
async function newCollection() {
  const name = (prompt("Name of the new collection (letters, digits, '.', '_' or '-'):") ?? "").trim();
  if (!name) return;
  if (!COLLECTION_NAME.test(name)) {
    el.collectionHint.textContent = `“${name}” is not a collection name: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.`;
    return;
  }
  let note = `Created “${name}”: add documents to it below.`;
  try {
    await api("/v1/collections", { method: "POST", body: { name } });
  } catch (err) {
    note = /already exists/.test(err.message) ? `“${name}” exists already.`
      : `“${name}” will be created with its first document (${err.message}).`;
  }
  chooseCollection(name);
  await loadCollections();
  el.collectionHint.textContent = note;
}

// ---- asking --------------------------------------------------------------------------

/** Append a user turn and an empty assistant turn; the new answer takes id="answer". */
function addTurn(question) {
  el.conversation.querySelector(".empty")?.remove();
  $("answer")?.removeAttribute("id");
  const answer = h("div", { class: "answer", id: "answer" });
  const meta = h("p", { class: "meta" });
  el.conversation.append(h("div", { class: "turn user" }, h("p", {}, question)),
                         h("div", { class: "turn assistant" }, answer, meta));
  el.conversation.scrollTop = el.conversation.scrollHeight;
  return { answer, meta };
}

/** Render answer text with each verified marker group as superscript buttons. A group
 * whose citations have not arrived (yet) stays plain text. */
function renderAnswer(answerEl, text, citations) {
  const byMarker = new Map(citations.map((c) => [c.marker, c]));
  citationsOf.set(answerEl, byMarker);
  const nodes = [];
  let last = 0;
  for (const group of text.matchAll(MARKER_GROUP)) {
    const numbers = group[0].match(/\d+/g).map(Number);
    if (!numbers.every((n) => byMarker.has(n))) continue;
    nodes.push(text.slice(last, group.index), ...numbers.map((n) => {
      const pages = pagesOf(byMarker.get(n));
      return h("sup", {}, h("button", { type: "button", class: "marker", "data-marker": n,
        "aria-label": pages ? `Source ${n}, ${pages}` : `Source ${n}`, title: pages || false }, String(n)));
    }));
    last = group.index + group[0].length;
  }
  nodes.push(text.slice(last));
  const log = el.conversation;  // follow the growing answer unless the reader scrolled up
  const following = log.scrollHeight - log.scrollTop - log.clientHeight < 48;
  answerEl.replaceChildren(...nodes);
  if (following) log.scrollTop = log.scrollHeight;
}

function setStatus(kind, text) {
  el.status.dataset.state = kind;  // idle | streaming | answered | partial | unsupported | error | stopped
  el.status.replaceChildren(...(text ? [h("span", { class: `badge ${kind}` }, kind), " ", text] : []));
}

function setBusy(busy) {
  el.ask.disabled = busy;
  el.stop.hidden = !busy;
  el.conversation.setAttribute("aria-busy", String(busy));  // announce the answer once, when done
}

async function ask(question) {
  const turn = addTurn(question);
  const messages = [...state.messages, { role: "user", content: question }];
  const controller = (state.controller = new AbortController());
  setBusy(true);
  setStatus("streaming", "answering…");
  let text = "", citations = [], final = null;
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST", signal: controller.signal, headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model: el.generator.value || "citeqa", messages, stream: true, ...inCollection() }),
    });
    if (!response.ok) {
      const data = await response.json().catch(() => null);
      throw new Error(data?.error?.message || `${response.status} ${response.statusText}`);
    }
    for await (const chunk of readEvents(response)) {
      if (chunk.error) throw new Error(chunk.error.message || "the answer failed");
      const choice = chunk.choices?.[0] ?? {};
      text += choice.delta?.content ?? "";
      citations.push(...(choice.delta?.citations ?? []));
      if (choice.finish_reason) {  // the last chunk carries the whole, authoritative answer
        final = chunk;
        text = chunk.answer ?? text;
        citations = chunk.citations ?? citations;
      }
      renderAnswer(turn.answer, text, citations);
    }
    if (!final) throw new Error("the answer stream ended early");
    state.messages = [...messages, { role: "assistant", content: text }];
    const dropped = final.dropped_citations ?? 0;
    const summary = `${citations.length} citation${citations.length === 1 ? "" : "s"}, ${dropped} dropped`;
    setStatus(final.status, summary);
    turn.meta.textContent = `${final.status} · ${summary}`;
  } catch (err) {
    if (!turn.answer.isConnected) return;  // "New conversation" cleared it
    const stopped = err.name === "AbortError";
    setStatus(stopped ? "stopped" : "error", stopped ? "not part of the conversation" : err.message);
    turn.meta.textContent = stopped ? "stopped" : `error: ${err.message}`;
  } finally {
    if (state.controller === controller) state.controller = null;
    setBusy(false);
  }
}

// ---- the quote in its document ---------------------------------------------------------

function getDocument(docId, version, collection) {
  const key = `${collection}\u001f${docId}@${version}`;  // the same doc_id may be in two collections
  if (!state.documents.has(key)) {
    const where = collection === DEFAULT_COLLECTION ? "" : `&collection=${encodeURIComponent(collection)}`;
    const request = api(`/v1/documents/${encodeURIComponent(docId)}?version=${encodeURIComponent(version)}${where}`);
    request.catch(() => state.documents.delete(key));  // let a failed fetch be retried
    state.documents.set(key, request);
  }
  return state.documents.get(key);
}

async function showQuote(citation) {
  el.quote.replaceChildren(h("p", { class: "empty" }, "Loading the source…"));
  try {
    const doc = await getDocument(citation.doc_id, citation.doc_version, citation.collection ?? state.collection);
    // The API counts offsets in code points; JS strings index UTF-16 units, so an emoji
    // before the quote would shift a plain slice(). Array.from splits into code points.
    const chars = Array.from(doc.text);
    const { start, end } = citation;
    let from = Math.max(0, start - CONTEXT), to = Math.min(chars.length, end + CONTEXT);
    while (from > 0 && from < start && !/\s/.test(chars[from - 1])) from++;  // whole words only
    while (to < chars.length && to > end && !/\s/.test(chars[to])) to--;
    const quote = chars.slice(start, end).join("");
    el.quote.dataset.docId = doc.doc_id;
    el.quote.dataset.docVersion = doc.doc_version;
    el.quote.dataset.start = start;
    el.quote.dataset.end = end;
    const mark = h("mark", {}, quote);
    const pages = pagesOf(citation);
    el.quote.replaceChildren(
      h("p", { class: "source" }, h("strong", {}, doc.title || doc.doc_id),
        ...(pages ? [" ", h("span", { class: "page" }, pages)] : []),
        h("span", { class: "doc-id" }, ` ${doc.doc_id} @ ${doc.doc_version}`),
        ...(isWebLink(citation.link) ? [h("a", { class: "open-source", href: citation.link, target: "_blank",
          rel: "noopener noreferrer" }, "Open in source")] : [])),
      h("blockquote", {}, from > 0 ? "…" : "", chars.slice(from, start).join(""), mark,
        chars.slice(end, to).join(""), to < chars.length ? "…" : ""),
      h("p", { class: "meta" }, `[${citation.marker}] sentence ${citation.sentence_id} · score ${fmt(citation.score)}`
        + ` · support ${fmt(citation.support)} · ${citation.origin === "verifier" ? "found by the verifier" : "cited by the generator"}`),
      ...(quote === citation.quote ? [] : [h("p", { class: "error" }, "The stored text differs from the quote.")]),
    );
    mark.scrollIntoView({ block: "nearest" });
  } catch (err) {
    el.quote.replaceChildren(h("p", { class: "error" }, `Could not load the source: ${err.message}`));
  }
}

// ---- documents -----------------------------------------------------------------------

async function loadDocuments(more = false) {
  const asked = state.collection;
  const page = await api(withCollection(`/v1/documents?limit=50&offset=${more ? state.nextOffset : 0}`));
  if (asked !== state.collection) return;  // another collection was picked meanwhile
  const items = page.documents.map((d) => h("li", { "data-doc-id": d.doc_id },
    h("span", { class: "doc-title" }, d.title || d.doc_id),
    h("span", { class: "doc-id" }, d.doc_id),
    h("button", { type: "button", class: "delete", "data-doc-id": d.doc_id, "data-title": d.title || d.doc_id,
                  "aria-label": `Delete ${d.title || d.doc_id}` }, "Delete")));
  if (more) el.docList.append(...items);
  else el.docList.replaceChildren(...(items.length ? items : [h("li", { class: "empty" }, "No documents yet.")]));
  state.nextOffset = page.next_offset;
  el.docMore.hidden = page.next_offset == null;
  el.docCount.textContent = `(${page.total})`;
}

async function addDocument() {
  const title = el.docTitle.value.trim(), text = el.docText.value;
  el.docAdd.disabled = true;
  try {
    const out = await api("/v1/documents", { method: "POST",
                                             body: { text, ...(title ? { title } : {}), ...inCollection() } });
    el.docMessage.textContent = out.created
      ? `Added “${title || out.doc_id}” (${out.sentence_count} sentences).`
      : `“${title || out.doc_id}” is already stored with this text.`;
    el.docForm.reset();
    await Promise.all([loadDocuments(), loadCollections()]);
  } catch (err) {
    el.docMessage.textContent = `Not added: ${err.message}`;
  } finally {
    el.docAdd.disabled = false;
  }
}

/** Upload files one by one as multipart/form-data (field "file"); each result or error shows. */
async function uploadFiles(files) {
  if (!files.length) return;
  el.docFile.disabled = true;
  const results = [];
  try {
    for (const file of files) {
      el.uploadMessage.textContent = `Uploading “${file.name}”…`;
      const form = new FormData();
      form.append("file", file, file.name);
      if (state.collection !== DEFAULT_COLLECTION) form.append("collection", state.collection);
      try {
        const out = await api("/v1/documents", { method: "POST", form });
        const count = (n, what) => `${n} ${what}${n === 1 ? "" : "s"}`;
        const pages = out.source?.page_count ? `, ${count(out.source.page_count, "page")}` : "";
        results.push(out.created
          ? `Uploaded “${file.name}” as ${out.doc_id} (${count(out.sentence_count, "sentence")}${pages}).`
          : `“${file.name}” is already stored as ${out.doc_id}.`);
      } catch (err) {
        results.push(`Not uploaded “${file.name}”: ${err.message}`);
      }
    }
    el.uploadMessage.textContent = results.join(" ");
    await loadDocuments().catch((err) => (el.docMessage.textContent = `Could not list documents: ${err.message}`));
    await loadCollections();
  } finally {
    el.docFile.disabled = false;
    el.docFile.value = "";
  }
}

async function deleteDocument(docId, title) {
  if (!confirm(`Delete “${title}”? Its sentences will no longer be cited.`)) return;
  try {
    await api(withCollection(`/v1/documents/${encodeURIComponent(docId)}`), { method: "DELETE" });
    el.docMessage.textContent = `Deleted “${title}”.`;
    await Promise.all([loadDocuments(), loadCollections()]);
  } catch (err) {
    el.docMessage.textContent = `Not deleted: ${err.message}`;
  }
}

// ---- wiring --------------------------------------------------------------------------

el.askForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const question = el.question.value.trim();
  if (!question || state.controller) return;
  el.question.value = "";
  ask(question);
});
el.question.addEventListener("keydown", (event) => {  // Enter sends, Shift+Enter is a new line
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    el.askForm.requestSubmit();
  }
});
el.stop.addEventListener("click", () => state.controller?.abort());
/** Forget the conversation (a follow-up never mixes two collections' answers). */
function clearConversation(note) {
  state.controller?.abort();
  state.messages = [];
  el.conversation.replaceChildren(h("p", { class: "empty" }, note));
  setStatus("idle", "");
}

el.clear.addEventListener("click", () => {
  clearConversation("New conversation. Ask a question.");
  el.question.focus();
});
el.collection.addEventListener("change", () => chooseCollection(el.collection.value));
el.collectionNew.addEventListener("click", () => newCollection());
el.conversation.addEventListener("click", (event) => {
  const button = event.target.closest("button.marker");
  if (!button) return;
  const citation = citationsOf.get(button.closest(".answer"))?.get(Number(button.dataset.marker));
  if (citation) showQuote(citation);
});
el.generator.addEventListener("change", showGeneratorHint);
el.docForm.addEventListener("submit", (event) => { event.preventDefault(); addDocument(); });
el.docMore.addEventListener("click", () => loadDocuments(true).catch((err) => (el.docMessage.textContent = err.message)));
el.docFile.addEventListener("change", () => uploadFiles([...el.docFile.files]));
// Files dropped anywhere on the page are uploaded; text dragged within the page is not a file.
const carriesFiles = (event) => [...(event.dataTransfer?.types ?? [])].includes("Files");
let dragDepth = 0;  // dragenter/dragleave fire for every child crossed
document.addEventListener("dragenter", (event) => {
  if (!carriesFiles(event)) return;
  event.preventDefault();
  dragDepth += 1;
  el.dropZone.dataset.active = "true";
});
document.addEventListener("dragover", (event) => {
  if (!carriesFiles(event)) return;
  event.preventDefault();  // allows the drop
  event.dataTransfer.dropEffect = "copy";
});
document.addEventListener("dragleave", (event) => {
  if (!carriesFiles(event)) return;
  dragDepth = Math.max(0, dragDepth - 1);
  if (!dragDepth) delete el.dropZone.dataset.active;
});
document.addEventListener("drop", (event) => {
  if (!carriesFiles(event)) return;
  event.preventDefault();  // the browser would otherwise open the file in place of the page
  dragDepth = 0;
  delete el.dropZone.dataset.active;
  uploadFiles([...event.dataTransfer.files]);
});
el.docList.addEventListener("click", (event) => {
  const button = event.target.closest("button.delete");
  if (button) deleteDocument(button.dataset.docId, button.dataset.title);
});

loadGenerators().catch((err) => {
  el.generator.replaceChildren(h("option", { value: "citeqa" }, "default"));
  el.generatorHint.textContent = `Could not list generators: ${err.message}`;
});
loadCollections();
loadDocuments().catch((err) => (el.docMessage.textContent = `Could not list documents: ${err.message}`));
