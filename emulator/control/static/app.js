// The emulator's web page: reads the control API (/_emulator/...) and draws conversations,
// per-recipient statuses and callback timelines. No framework and no build step, because the
// emulator must work offline. Every piece of data reaches the DOM through text nodes
// (h() below): message text, tags and numbers are whatever the app under test sent.
//
// Live (docs/ui.md, 'Live updates'): the page holds one page of conversations and one page of
// the chosen conversation's messages, filtered by the emulator. An event stream
// (/_emulator/ui/events) names the messages that changed and their conversations; the page
// re-reads only those rows, so an open page costs what it shows, not what is stored.
"use strict";

const API = "/_emulator";
const CLOCK_MS = 1000; // the clock is read once a second; everything else comes as events
const PAGE = 50; // conversations, and messages of a conversation, per page
const MAX_NAMED = 100; // rows the page re-reads by name at once; more changed: read the page again

const state = {
  conversations: [], // rows of /ui/conversations, most recently active first
  next: null, // cursor of the next page of conversations (null: none)
  totals: { messages: 0, conversations: 0, matching: 0 },
  accounts: [],
  tags: [],
  thread: [], // the chosen conversation's messages (with their callbacks), oldest first
  threadKey: null, // the conversation those are of: the one shown as chosen
  threadBefore: null, // cursor of the page of earlier messages (null: none)
  clock: null,
  scenario: null,
  selected: null, // conversation key the user chose
  rbmTarget: null, // the RBM message the handset's answer form replies to
  open: new Set(), // message ids whose timeline is expanded
  filters: { account: "", number: "", tag: "", state: "", q: "" },
};

// -- DOM helpers -----------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child)); // strings become text nodes
  }
  return el;
}

// Only http(s) URLs become links: a media URL like "javascript:..." stays plain text.
function safeHref(url) {
  try {
    const parsed = new URL(url, location.href);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

// -- time ------------------------------------------------------------------------------------

function ms(iso) {
  return iso ? Date.parse(iso) : NaN;
}

function fmtDateTime(iso) {
  if (!iso) return "";
  return iso.replace("T", " ").replace(/\.\d+Z$/, " UTC").replace(/Z$/, " UTC");
}

function fmtTime(iso) {
  if (!iso) return "";
  const m = /T(\d\d:\d\d:\d\d)(\.\d+)?Z$/.exec(iso);
  return m ? m[1] + (m[2] && m[2] !== ".000" ? m[2] : "") : iso;
}

function fmtDuration(milliseconds) {
  if (!Number.isFinite(milliseconds)) return "";
  const sign = milliseconds < 0 ? "-" : "+";
  let s = Math.abs(milliseconds) / 1000;
  if (s < 60) return `${sign}${Number(s.toFixed(3))} s`;
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hr = Math.floor(s / 3600); s -= hr * 3600;
  const mi = Math.floor(s / 60); s -= mi * 60;
  const parts = [];
  if (d) parts.push(`${d} d`);
  if (hr) parts.push(`${hr} h`);
  if (mi) parts.push(`${mi} min`);
  if (Math.round(s)) parts.push(`${Math.round(s)} s`);
  return sign + parts.join(" ");
}

// -- the control API ---------------------------------------------------------------------------

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(API + path, init);
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!resp.ok) {
    const what = (data && (data.error || data.description)) || `${resp.status} ${resp.statusText}`;
    const details = data && data.details ? data.details : [];
    const lines = Array.isArray(details) ? details.map((d) => (typeof d === "string" ? d : JSON.stringify(d))) : [JSON.stringify(details)];
    throw new Error([what, ...lines].join("\n"));
  }
  return data;
}

function notify(message, kind) {
  const box = $("notice");
  if (!message) {
    box.hidden = true;
    box.textContent = "";
    return;
  }
  box.hidden = false;
  box.className = "notice " + (kind || "error");
  box.textContent = message;
}

// -- conversations -----------------------------------------------------------------------------

// A conversation is one of your numbers with the set of handsets on the other side, per account,
// like a phone's messaging app. Inbound: `owner` is the number that received it. The emulator
// groups them the same way (emulator/live.py) and names each by this key.
function conversationOf(m) {
  let ours, others;
  if (m.direction === "out") {
    ours = m.from;
    others = m.to;
  } else {
    ours = m.owner;
    others = [m.from, ...m.to.filter((n) => n !== m.owner)];
  }
  others = [...new Set(others)].sort();
  return { key: `${m.accountId}|${ours}|${others.join(",")}`, accountId: m.accountId, ours, others };
}

function filtersActive() {
  return Object.values(state.filters).some(Boolean);
}

// The filters as the emulator's query parameters; it filters, the page only shows.
function filterParams(extra) {
  const f = state.filters;
  const params = new URLSearchParams();
  if (f.account) params.set("accountId", f.account);
  if (f.number) params.set("number", f.number);
  if (f.tag) params.set("tag", f.tag);
  if (f.state) params.set("state", f.state);
  if (f.q) params.set("q", f.q);
  for (const [key, value] of extra || []) params.append(key, value);
  return params.toString();
}

function selectedRow() {
  return state.conversations.find((c) => c.key === state.selected);
}

// The conversation whose messages are shown: the chosen one once its messages are read.
function shownRow() {
  return state.conversations.find((c) => c.key === state.threadKey);
}

// -- rendering ---------------------------------------------------------------------------------

function renderClock() {
  const clock = state.clock;
  if (!clock) return;
  $("clock-now").textContent = fmtDateTime(clock.now);
  $("clock-now").setAttribute("datetime", clock.now);
  const scale = clock.mode === "realtime" && clock.timeScale && clock.timeScale !== 1 ? ` ×${clock.timeScale}` : "";
  $("clock-mode").textContent = clock.mode + scale;
  const pending = clock.pending ? `${clock.pending} planned` : "nothing planned";
  const wait = clock.nextDue ? ms(clock.nextDue) - ms(clock.now) : NaN;
  const next = clock.nextDue ? ` · next ${wait > 0 ? "in " + fmtDuration(wait).slice(1) : "due now"}` : "";
  $("clock-pending").textContent = pending + next;
  // Bandwidth's era for a message sent now (docs/scenarios.md, "Bandwidth's timeline").
  const era = clock.era;
  if (era) {
    const hours = Math.round(era.deliveryReceiptWindow / 360) / 10;
    $("clock-era").textContent = `Bandwidth ${era.era}${era.pinned ? " (pinned)" : ""}`;
    $("clock-era").dataset.era = era.era;
    $("clock-era").title =
      `Delivery-receipt window ${hours} h; ` +
      (era.messageSending ? "MMS and group get message-sending" : "no message-sending") +
      (era.next ? `; from ${era.next.at.slice(0, 10)}: ${era.next.era}` : "");
  }
  $("advance").hidden = clock.mode !== "manual";
  $("advance-next").disabled = !clock.nextDue;
}

function fillSelect(select, values, allLabel) {
  const current = select.value;
  // Unchanged choices keep their elements: the list is drawn again as changes come in, while
  // the user may be choosing from it.
  const wanted = ["", ...values];
  if (current && !values.includes(current)) wanted.push(current);
  const have = [...select.options].map((o) => o.value);
  if (have.length === wanted.length && have.every((v, i) => v === wanted[i])) return;
  const options = [h("option", { value: "" }, allLabel), ...values.map((v) => h("option", { value: v }, v))];
  select.replaceChildren(...options);
  // Keep a chosen value even while no message carries it any more (e.g. after a reset).
  if (current && !values.includes(current)) select.append(h("option", { value: current }, current));
  select.value = current;
}

function renderFilters() {
  fillSelect($("filter-account"), state.accounts, "all");
  fillSelect($("filter-tag"), state.tags, "any");
  $("reset").textContent = state.filters.account ? `Reset account ${state.filters.account}` : "Reset";
}

function renderSummary() {
  const total = state.totals.messages;
  const matching = state.totals.matching;
  $("filter-summary").textContent =
    !filtersActive() || matching === undefined
      ? `${total} message${total === 1 ? "" : "s"}`
      : `${matching} of ${total} messages match`;
}

function statusChip(status) {
  return h("span", { class: `chip status-${status.toLowerCase()}` }, status.toLowerCase());
}

function callbackSummary(callbacks) {
  const counts = {};
  for (const c of callbacks) counts[c.state] = (counts[c.state] || 0) + 1;
  return Object.entries(counts).map(([s, n]) => `${n} ${s}`).join(", ");
}

function renderConversationList() {
  const list = $("conversation-list");
  list.replaceChildren(
    ...state.conversations.map((conv) => {
      const last = conv.last;
      const located = last && last.multichannel && last.multichannel.locationResponse;
      const preview = !last
        ? ""
        : last.text || (last.media.length ? `${last.media.length} media` : located ? "Shared location" : "(empty)");
      const count = filtersActive() ? conv.matching : conv.messages;
      return h(
        "li",
        {},
        h(
          "button",
          {
            type: "button",
            class: "conversation" + (conv.key === state.threadKey ? " selected" : ""),
            "aria-current": conv.key === state.threadKey ? "true" : null,
            dataset: { key: conv.key },
            onclick: () => selectConversation(conv.key),
          },
          h("span", { class: "pair" }, h("span", { class: "ours" }, conv.ours), " ↔ ", h("span", { class: "others" }, conv.others.join(", "))),
          h("span", { class: "preview" }, (last && last.direction === "out" ? "You: " : "") + preview),
          h(
            "span",
            { class: "conv-meta" },
            h("span", { class: "muted" }, `acct ${conv.accountId} · ${count} msg · ${last ? fmtTime(last.time) : ""}`),
            conv.failed ? h("span", { class: "chip status-failed" }, `${conv.failed} failed`) : null,
            conv.exhausted ? h("span", { class: "chip cb-exhausted" }, `${conv.exhausted} exhausted`) : null,
          ),
        ),
      );
    }),
  );
  $("no-conversations").hidden = state.conversations.length > 0;
  $("more-conversations").hidden = state.next === null;
  renderSummary();
}

// Media stored in the emulator (…/users/{accountId}/media/{mediaId}) is shown as a thumbnail
// through the page's own media route; anything else is a plain link.
function mediaItem(url) {
  const stored = /\/users\/([^/]+)\/media\/(.+)$/.exec((() => {
    try {
      return new URL(url).pathname;
    } catch {
      return "";
    }
  })());
  const name = url.split("/").pop() || url;
  if (stored) {
    const local = `${API}/ui/media/${stored[1]}/${stored[2]}`;
    const img = h("img", { src: local, alt: name, loading: "lazy" });
    const link = h("a", { class: "media thumb", href: local, target: "_blank", rel: "noopener", title: url }, img);
    img.addEventListener("error", () =>
      link.replaceWith(h("span", { class: "media media-name", title: `${url} is not in the media store` }, name, " (not stored)")),
    );
    return link;
  }
  const href = safeHref(url);
  return href
    ? h("a", { class: "media", href, target: "_blank", rel: "noopener noreferrer" }, name)
    : h("span", { class: "media" }, url);
}

// `number` is the scheduled attempt a POST belongs to: a challenge-mode 401 and its resend
// share one, and so do the extra deliveries of `duplicates`.
function attemptNumber(a, index) {
  return Number.isInteger(a.number) ? a.number : index + 1;
}

function attemptRow(a, index, origin) {
  const ok = a.error === null && a.statusCode !== null && a.statusCode >= 200 && a.statusCode < 300;
  const outcome = a.error ? a.error : a.statusCode !== null ? `HTTP ${a.statusCode}` : "no answer";
  return h(
    "li",
    { class: "attempt " + (ok ? "ok" : "bad") + (a.duplicate ? " duplicate" : "") + (a.replay ? " replay" : "") },
    h("span", { class: "attempt-n" }, `#${attemptNumber(a, index)}`),
    h("time", { datetime: a.time }, fmtTime(a.time)),
    h("span", { class: "muted" }, fmtDuration(ms(a.time) - origin)),
    h(
      "span",
      { class: "outcome" },
      outcome,
      a.duplicate ? h("span", { class: "chip", title: "the same event delivered again (duplicates)" }, "duplicate") : null,
      a.replay ? h("span", { class: "chip", title: "delivered again on demand (Replay)" }, "replay") : null,
      a.authorization ? h("span", { class: "chip", title: "sent with Basic credentials" }, "auth") : null,
    ),
    Number.isFinite(a.durationMs) ? h("span", { class: "muted" }, `${Math.round(a.durationMs)} ms`) : null,
  );
}

function timeline(message, callbacks) {
  const byId = new Map(callbacks.map((c) => [c.id, c]));
  const origin = ms(message.time);
  const now = state.clock ? ms(state.clock.now) : NaN;
  const sorted = [...callbacks].sort((a, b) => ms(a.plannedAt) - ms(b.plannedAt) || a.recipient.localeCompare(b.recipient));
  return h(
    "ol",
    { class: "timeline" },
    sorted.map((c) =>
      h(
        "li",
        { class: `callback cb-${c.state}`, dataset: { callbackId: c.id, state: c.state, type: c.type } },
        h(
          "div",
          { class: "callback-head" },
          h("span", { class: "event" }, c.type),
          h("span", { class: "callback-to" }, "→ ", c.recipient),
          h("span", { class: `chip cb-${c.state}` }, c.state),
          h("span", { class: "muted" }, `planned ${fmtTime(c.plannedAt)} (${fmtDuration(ms(c.plannedAt) - origin)})`),
        ),
        h(
          "div",
          { class: "callback-url muted" },
          c.url ? `POST ${c.url}` : "no callback URL configured",
          // Replay: deliver the event again now, e.g. after fixing the webhook; the scheduled
          // attempts are left as they were (docs/callbacks.md, 'Replay').
          c.url && c.attempts.length
            ? h(
                "button",
                {
                  type: "button",
                  class: "replay",
                  title: "deliver this callback again now; the retry schedule is not changed",
                  onclick: () => action(() => api("POST", `/callbacks/${encodeURIComponent(c.id)}/replay`)),
                },
                "Replay",
              )
            : null,
        ),
        c.attempts.length ? h("ol", { class: "attempts" }, c.attempts.map((a, i) => attemptRow(a, i, origin))) : null,
        c.heldBy
          ? h(
              "div",
              { class: "held" },
              "held (ordering: hold) until ",
              byId.has(c.heldBy) ? `${byId.get(c.heldBy).type} → ${byId.get(c.heldBy).recipient}` : c.heldBy,
              " is delivered",
            )
          : null,
        c.state === "pending" && c.nextAttemptAt
          ? h(
              "div",
              { class: "next-attempt" },
              `${c.attempts.length ? "next retry" : "first attempt"} at ${fmtTime(c.nextAttemptAt)} (${fmtDuration(ms(c.nextAttemptAt) - now)} from now)`,
            )
          : null,
        c.state === "exhausted"
          ? h(
              "div",
              { class: "exhausted-note" },
              `gave up after ${Math.max(0, ...c.attempts.map(attemptNumber))} attempts: the webhook never answered 2xx`,
            )
          : null,
      ),
    ),
  );
}

// -- RBM (docs/multichannel.md): rich content as a handset shows it, and the handset's taps --

// The channelList entry that went out: the message's own channel and sender.
function sentChannel(m) {
  const list = (m.multichannel && m.multichannel.channelList) || [];
  return list.find((c) => c.channel === m.channel && c.from === m.from) || null;
}

// A file of RBM content: a thumbnail when the emulator stores it, else a link (the page's
// policy loads no image from elsewhere, as for MMS media).
function rbmFile(file, height) {
  return h("div", { class: `rbm-media${height ? " h-" + height.toLowerCase() : ""}` }, mediaItem(file.fileUrl));
}

function suggestionChips(m, suggestions, canTap) {
  if (!suggestions || !suggestions.length) return null;
  // What a chip does besides answering, as the handset's label says it.
  const kind = { DIAL_PHONE: "call", SHOW_LOCATION: "map", CREATE_CALENDAR_EVENT: "calendar", OPEN_URL: "link", REQUEST_LOCATION: "share location" };
  return h(
    "div",
    { class: "suggestions" },
    suggestions.map((sg) =>
      h(
        "button",
        {
          type: "button",
          class: "suggestion",
          disabled: !canTap,
          title: canTap ? `tap: the handset answers with postbackData ${sg.postbackData}` : "the message is not delivered",
          dataset: { suggestion: sg.text, type: sg.type },
          onclick: () => action(() => api("POST", `/messages/${encodeURIComponent(m.id)}/reply`, { suggestion: sg.text })),
        },
        sg.text,
        kind[sg.type] ? h("span", { class: "suggestion-kind" }, ` · ${kind[sg.type]}`) : null,
      ),
    ),
  );
}

function rbmCard(m, card, canTap, extraClass) {
  return h(
    "div",
    { class: `rbm-card${extraClass ? " " + extraClass : ""}` },
    card.media ? rbmFile(card.media, card.media.height) : null,
    card.title ? h("div", { class: "rbm-title" }, card.title) : null,
    card.description ? h("div", { class: "rbm-description" }, card.description) : null,
    suggestionChips(m, card.suggestions, canTap),
  );
}

function rbmContent(m) {
  const entry = sentChannel(m);
  if (!entry) return null;
  const c = entry.content || {};
  const canTap = m.recipients.some((r) => r.status === "DELIVERED");
  let body;
  if (c.cardContents) {
    body = h(
      "div",
      { class: `rbm-carousel w-${(c.cardWidth || "medium").toLowerCase()}` },
      c.cardContents.map((card) => rbmCard(m, card, canTap)),
    );
  } else if (c.cardContent) {
    const layout = c.orientation === "HORIZONTAL" ? `horizontal thumb-${(c.thumbnailImageAlignment || "left").toLowerCase()}` : "vertical";
    body = rbmCard(m, c.cardContent, canTap, layout);
  } else if (c.media) {
    body = h("div", { class: "media-list" }, c.media.map((f) => rbmFile(f)));
  } else {
    body = h("p", { class: "text" }, c.text || "");
  }
  return h("div", { class: "rbm", dataset: { channel: "RBM" } }, body, suggestionChips(m, c.suggestions, canTap));
}

// What the handset sent back over RBM: a tapped suggestion, a location, or a text.
function rbmAnswer(m) {
  const d = m.multichannel || {};
  if (d.suggestionResponse) {
    return h("p", { class: "text rbm-answer" }, "Tapped “", d.suggestionResponse.text, "”");
  }
  if (d.locationResponse) {
    return h("p", { class: "text rbm-answer" }, "Shared location ", d.locationResponse.latitude, ", ", d.locationResponse.longitude);
  }
  return null;
}

function channelChips(m) {
  if (!m.channel) return null;
  const attempts = (m.multichannel && m.multichannel.attempts) || [];
  const skipped = attempts.filter((a) => a.outcome !== "delivered" && a.outcome !== "sent" && attempts.at(-1) !== a);
  const title = attempts.map((a) => `${a.channel}: ${a.outcome}${a.errorCode ? " " + a.errorCode : ""}`).join(", ");
  const readAt = m.multichannel && m.multichannel.readAt;
  return [
    h(
      "span",
      { class: "chip channel", title: title || undefined, dataset: { channel: m.channel } },
      `via ${m.channel}`,
      skipped.length ? ` (fallback from ${skipped.map((a) => a.channel).join(", ")})` : "",
    ),
    readAt ? h("span", { class: "chip read", title: fmtDateTime(readAt) }, `Read ${fmtTime(readAt)}`) : null,
    m.direction === "out" && m.channel === "RBM" && !readAt && m.recipients.some((r) => r.status === "DELIVERED")
      ? h(
          "button",
          {
            type: "button",
            class: "mark-read",
            title: "the handset reads it: message-read",
            onclick: () => action(() => api("POST", `/messages/${encodeURIComponent(m.id)}/read`)),
          },
          "Mark read",
        )
      : null,
  ];
}

function bubble(m, callbacks) {
  const outbound = m.direction === "out";
  const exhausted = callbacks.filter((c) => c.state === "exhausted").length;
  const details = h(
    "details",
    {
      class: "callbacks",
      open: state.open.has(m.id),
      ontoggle: (ev) => (ev.target.open ? state.open.add(m.id) : state.open.delete(m.id)),
    },
    h(
      "summary",
      {},
      callbacks.length ? `Callbacks: ${callbackSummary(callbacks)}` : "No callbacks",
      exhausted ? h("span", { class: "chip cb-exhausted" }, "exhausted") : null,
    ),
    callbacks.length ? timeline(m, callbacks) : null,
  );
  return h(
    "li",
    {
      class: `bubble ${outbound ? "out" : "in"}` + (exhausted ? " has-exhausted" : ""),
      dataset: { messageId: m.id, direction: m.direction },
    },
    h("div", { class: "bubble-from muted" }, outbound ? `${m.from} → ${m.to.join(", ")}` : `${m.from} → ${m.owner}`),
    ...(m.channel === "RBM" && m.direction === "out"
      ? [rbmContent(m)]
      : [
          rbmAnswer(m) || (m.text ? h("p", { class: "text" }, m.text) : null),
          m.media.length ? h("div", { class: "media-list" }, m.media.map(mediaItem)) : null,
        ]),
    h(
      "div",
      { class: "bubble-meta" },
      h("time", { datetime: m.time, title: fmtDateTime(m.time) }, fmtTime(m.time)),
      h("span", {}, m.channel === "RBM" ? "RCS" : m.kind.toUpperCase()),
      h("span", { class: "segments" }, `${m.segmentCount} segment${m.segmentCount === 1 ? "" : "s"}`),
      h("span", { class: "muted" }, m.encoding),
      m.tag !== null && m.tag !== undefined ? h("span", { class: "chip tag" }, "tag: ", m.tag) : null,
      channelChips(m),
      h("span", { class: "muted id" }, m.id),
    ),
    h(
      "ul",
      { class: "recipients" },
      m.recipients.map((r) =>
        h(
          "li",
          { class: "recipient", dataset: { to: r.to, status: r.status } },
          h("span", {}, r.to),
          statusChip(r.status),
          r.errorCode !== null && r.errorCode !== undefined ? h("span", { class: "error-code" }, `error ${r.errorCode}`) : null,
          r.description && r.status === "FAILED" ? h("span", { class: "error-description" }, r.description) : null,
        ),
      ),
    ),
    details,
  );
}

let bubbleCache = new Map(); // message id -> {sig, el}: the bubbles drawn last

function renderThread() {
  const conv = shownRow();
  const thread = $("thread");
  const nearBottom = thread.scrollHeight - thread.scrollTop - thread.clientHeight < 40;
  if (!conv) {
    $("thread-title").textContent = "No conversation selected";
    thread.replaceChildren();
    state.rbmTarget = null;
    $("rbm-reply").hidden = true;
    $("inbound").hidden = false;
    $("earlier-messages").hidden = true;
    return;
  }
  $("thread-title").replaceChildren(
    h("span", { class: "ours" }, conv.ours),
    " ↔ ",
    h("span", { class: "others" }, conv.others.join(", ")),
    h("span", { class: "muted" }, ` · account ${conv.accountId}`),
  );
  // A message that did not change keeps its element, so that what the user looks at (a
  // selection, a hovered button) stays put while other messages change around it.
  const kept = new Map();
  const bubbles = state.thread.map((m) => {
    const pendingNow = m.callbacks.some((c) => c.state === "pending") && state.clock ? state.clock.now : "";
    const sig = JSON.stringify(m) + state.open.has(m.id) + pendingNow;
    const cached = bubbleCache.get(m.id);
    const el = cached && cached.sig === sig ? cached.el : bubble(m, m.callbacks);
    kept.set(m.id, { sig, el });
    return el;
  });
  bubbleCache = kept;
  const current = [...thread.children];
  if (current.length !== bubbles.length || current.some((el, i) => el !== bubbles[i])) thread.replaceChildren(...bubbles);
  $("earlier-messages").hidden = state.threadBefore === null;
  // The RBM answer form targets the conversation's last message that went out over RBM.
  const lastRbm = state.thread.findLast((m) => m.direction === "out" && m.channel === "RBM");
  state.rbmTarget = lastRbm ? lastRbm.id : null;
  $("rbm-reply").hidden = !lastRbm;
  // An RBM agent is no number a handset can text: its conversation is answered over RBM only.
  $("inbound").hidden = Boolean(lastRbm) && !conv.ours.startsWith("+");
  if (nearBottom) thread.scrollTop = thread.scrollHeight;
}

// The composer answers as the handset in the chosen conversation: the sender of its latest
// inbound message (in a group that texted several of your numbers, the others are yours too),
// else the first recipient. The fields stay editable so a brand-new handset can text in too.
function prefillComposer() {
  const conv = shownRow();
  if (!conv) return;
  const lastInbound = state.thread.findLast((m) => m.direction === "in");
  const from = lastInbound ? lastInbound.from : conv.others[0] || "";
  $("inbound-from").value = from;
  $("inbound-to").value = [conv.ours, ...conv.others.filter((n) => n !== from)].join(" ");
  $("inbound-account").value = conv.accountId;
}

// -- reading: pages, and the rows an event names -------------------------------------------------

async function readThread() {
  const key = state.selected;
  let messages = [];
  let before = null;
  if (selectedRow()) {
    try {
      const page = await api("GET", `/ui/thread?${filterParams([["conversation", key], ["limit", PAGE]])}`);
      messages = page.messages;
      before = page.before;
    } catch {
      // reset meanwhile: the event that says so reads the page again
    }
  }
  if (state.selected !== key) return false; // another conversation was chosen meanwhile
  state.thread = messages;
  state.threadBefore = before;
  state.threadKey = key;
  return true;
}

// Everything the page shows, read again: on start, when a filter changes, after a reset, and
// when the event stream was interrupted or fell behind.
async function readAll() {
  const page = await api("GET", `/ui/conversations?${filterParams([["limit", PAGE], ["count", 1]])}`);
  state.conversations = page.conversations;
  state.next = page.next;
  state.totals = page.totals;
  state.accounts = page.accounts;
  state.tags = page.tags;
  const previous = state.threadKey;
  if (!selectedRow()) state.selected = state.conversations.length ? state.conversations[0].key : null;
  if (!(await readThread())) return; // a conversation was chosen meanwhile, and is drawn
  renderFilters();
  renderConversationList();
  renderThread();
  if (state.threadKey !== previous) prefillComposer();
  document.body.dataset.loaded = "true";
}

async function moreConversations() {
  if (state.next === null) return;
  const page = await api("GET", `/ui/conversations?${filterParams([["limit", PAGE], ["before", state.next]])}`);
  const known = new Set(state.conversations.map((c) => c.key));
  state.conversations.push(...page.conversations.filter((c) => !known.has(c.key)));
  state.next = page.next;
  renderConversationList();
}

async function earlierMessages() {
  const key = state.threadKey;
  if (state.threadBefore === null || !key) return;
  const params = filterParams([["conversation", key], ["limit", PAGE], ["before", state.threadBefore]]);
  const page = await api("GET", `/ui/thread?${params}`);
  if (state.threadKey !== key) return;
  const thread = $("thread");
  const fromBottom = thread.scrollHeight - thread.scrollTop;
  state.thread = [...page.messages, ...state.thread];
  state.threadBefore = page.before;
  renderThread();
  thread.scrollTop = thread.scrollHeight - fromBottom; // what was shown stays in place
}

// Conversations whose rows changed: re-read them and put each where its activity puts it.
async function readRows(keys) {
  const data = await api("GET", `/ui/conversations?${filterParams(keys.map((k) => ["key", k]))}`);
  const gone = new Set(data.gone);
  const fresh = new Map(data.conversations.map((c) => [c.key, c]));
  const oldest = state.next === null ? -Infinity : state.conversations.at(-1)?.seq ?? -Infinity;
  const rows = state.conversations.filter((c) => !gone.has(c.key) && !fresh.has(c.key));
  // A row older than the last one shown belongs to a page not read yet.
  for (const row of fresh.values()) if (row.seq >= oldest) rows.push(row);
  rows.sort((a, b) => b.seq - a.seq);
  state.conversations = rows;
  state.totals = { ...state.totals, messages: data.totals.messages, conversations: data.totals.conversations };
  if (!filtersActive()) state.totals.matching = data.totals.messages;
}

// Messages of the chosen conversation that changed (or arrived): re-read them.
async function readMessages(ids) {
  const data = await api("GET", `/ui/messages?${filterParams(ids.map((id) => ["id", id]))}`);
  const gone = new Set(data.gone);
  const byId = new Map(state.thread.map((m) => [m.id, m]));
  for (const id of gone) byId.delete(id);
  for (const m of data.messages) if (m.conversation === state.threadKey) byId.set(m.id, m);
  state.thread = [...byId.values()].sort((a, b) => ms(a.time) - ms(b.time));
}

let recount = null;

// With filters on, how many messages match is a pass over the conversations on the server:
// asked for at most once a second while changes flow, not on every event.
function scheduleRecount() {
  if (!filtersActive() || recount) return;
  recount = setTimeout(async () => {
    try {
      const page = await api("GET", `/ui/conversations?${filterParams([["limit", 0], ["count", 1]])}`);
      state.totals = page.totals;
      state.accounts = page.accounts;
      state.tags = page.tags;
      renderFilters();
      renderSummary();
    } catch {
      // the next change asks again
    } finally {
      recount = null;
    }
  }, 1000);
}

// -- live updates ------------------------------------------------------------------------------

// What the events said and the page has not read yet; one reader works at a time, so a burst
// of events while it reads becomes one more read.
const pending = { all: false, keys: new Set(), ids: new Set() };
let reading = null;

function changed(data) {
  if (data.resync || (data.resets && data.resets.length)) {
    pending.all = true;
  } else {
    for (const m of data.messages) {
      if (m.conversation) pending.keys.add(m.conversation);
      if (m.conversation === state.threadKey || m.conversation === null) pending.ids.add(m.id);
    }
  }
  if (pending.keys.size > MAX_NAMED || pending.ids.size > MAX_NAMED) pending.all = true;
  catchUp();
}

function catchUp() {
  if (reading) return reading;
  reading = (async () => {
    while (pending.all || pending.keys.size || pending.ids.size) {
      const all = pending.all;
      const keys = [...pending.keys];
      const ids = [...pending.ids];
      pending.all = false;
      pending.keys.clear();
      pending.ids.clear();
      try {
        if (all) {
          await readAll();
          continue;
        }
        const rowsBefore = JSON.stringify(state.conversations);
        const threadBefore = JSON.stringify(state.thread);
        await Promise.all([keys.length ? readRows(keys) : null, ids.length ? readMessages(ids) : null]);
        let threadChanged = JSON.stringify(state.thread) !== threadBefore;
        if (!selectedRow()) {
          // The chosen conversation no longer matches (or is gone): choose the first one.
          state.selected = state.conversations.length ? state.conversations[0].key : null;
          if (await readThread()) {
            threadChanged = true;
            prefillComposer();
          }
        }
        // Only what changed is drawn again, so that what the user looks at stays put.
        const rowsChanged = JSON.stringify(state.conversations) !== rowsBefore;
        if (rowsChanged) renderConversationList();
        else renderSummary();
        if (threadChanged || (rowsChanged && keys.includes(state.threadKey))) renderThread();
        if (keys.length) {
          scheduleRecount();
          if (!filtersActive()) refreshFacets();
        }
      } catch (err) {
        pending.all = true; // read everything once the emulator answers again
        notify(`Cannot reach the emulator: ${err.message}`);
        $("notice").dataset.source = "poll";
        break;
      }
    }
    reading = null;
  })();
  return reading;
}

// New accounts and tags for the filters' choices, at most once a second while changes flow.
let facets = null;
function refreshFacets() {
  if (facets) return;
  facets = setTimeout(async () => {
    try {
      const page = await api("GET", "/ui/conversations?limit=0");
      state.accounts = page.accounts;
      state.tags = page.tags;
      renderFilters();
    } catch {
      // the next change asks again
    } finally {
      facets = null;
    }
  }, 1000);
}

let events = null;

function subscribe() {
  events = new EventSource(`${API}/ui/events`);
  let first = true;
  events.addEventListener("hello", () => {
    if ($("notice").dataset.source === "poll") {
      notify(null);
      delete $("notice").dataset.source;
    }
    // Reconnected after the stream broke: what changed meanwhile is unknown, read it all.
    if (!first) changed({ resync: true });
    first = false;
  });
  for (const name of ["change", "reset", "resync"]) {
    events.addEventListener(name, (ev) => changed(JSON.parse(ev.data)));
  }
  events.addEventListener("error", () => {
    if (events.readyState === EventSource.CLOSED) setTimeout(subscribe, 1000);
  });
}

// The clock moves on its own (realtime) or by the buttons; its "next retry in ..." texts too.
async function readClock() {
  try {
    const clock = await api("GET", "/clock");
    const moved = state.clock && clock.now !== state.clock.now;
    state.clock = clock;
    renderClock();
    if (moved && clock.mode === "manual") renderThread(); // "next retry in ..." changed
    if ($("notice").dataset.source === "clock") {
      notify(null);
      delete $("notice").dataset.source;
    }
  } catch (err) {
    notify(`Cannot reach the emulator: ${err.message}`);
    $("notice").dataset.source = "clock";
  }
}

async function action(run) {
  notify(null);
  try {
    await run();
  } catch (err) {
    notify(err.message);
  }
  // What the action changed arrives as events too; reading now shows it at once.
  await readClock();
  pending.all = true;
  await catchUp();
}

async function selectConversation(key) {
  if (key === state.threadKey && key === state.selected) return; // shown already
  state.selected = key;
  if (!(await readThread())) return; // another one was chosen meanwhile
  renderConversationList();
  renderThread();
  prefillComposer();
}

// -- scenario ----------------------------------------------------------------------------------

async function loadScenario() {
  const scenario = await api("GET", "/scenario");
  state.scenario = scenario;
  $("scenario-name").textContent = scenario.name || "(unnamed)";
}

async function showScenario(format) {
  $("scenario-tab-yaml").setAttribute("aria-selected", String(format === "yaml"));
  $("scenario-tab-json").setAttribute("aria-selected", String(format === "json"));
  if (format === "json") {
    $("scenario-text").textContent = JSON.stringify(await api("GET", "/scenario"), null, 2);
  } else {
    const resp = await fetch(`${API}/ui/scenario.yaml`);
    $("scenario-text").textContent = await resp.text();
  }
}

// -- filters in the URL, so a view can be shared ---------------------------------------------

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  for (const key of Object.keys(state.filters)) state.filters[key] = params.get(key) || "";
}

function writeHash() {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(state.filters)) if (value) params.set(key, value);
  const hash = params.toString();
  history.replaceState(null, "", hash ? `#${hash}` : location.pathname);
}

function syncFilterInputs() {
  for (const key of Object.keys(state.filters)) {
    const input = $(`filter-${key}`);
    if (input.tagName === "SELECT" && state.filters[key] && ![...input.options].some((o) => o.value === state.filters[key])) {
      input.append(h("option", { value: state.filters[key] }, state.filters[key]));
    }
    input.value = state.filters[key];
  }
}

// -- wiring ------------------------------------------------------------------------------------

function init() {
  readHash();
  syncFilterInputs();

  $("filters").addEventListener("submit", (ev) => ev.preventDefault());
  // The emulator filters: a changed filter reads the first page again (typing is let settle).
  let typing = null;
  const onFilter = (ev) => {
    const key = ev.target.name;
    if (!(key in state.filters) || state.filters[key] === ev.target.value.trim()) return;
    state.filters[key] = ev.target.value.trim();
    writeHash();
    clearTimeout(typing);
    typing = setTimeout(() => {
      pending.all = true;
      catchUp();
    }, ev.target.tagName === "SELECT" ? 0 : 150);
  };
  $("filters").addEventListener("input", onFilter);
  $("filters").addEventListener("change", onFilter);

  for (const button of $("advance").querySelectorAll("button[data-seconds]")) {
    button.addEventListener("click", () =>
      action(() => api("POST", "/clock/advance", { seconds: Number(button.dataset.seconds) })),
    );
  }
  $("advance-next").addEventListener("click", () =>
    action(async () => {
      const clock = await api("GET", "/clock");
      if (clock.nextDue) await api("POST", "/clock/advance", { seconds: Math.max(0, (ms(clock.nextDue) - ms(clock.now)) / 1000) });
    }),
  );

  $("reset").addEventListener("click", () => {
    const account = state.filters.account;
    const what = account ? `messages, callbacks and media of account ${account}` : "all messages, callbacks and media";
    if (!confirm(`Forget ${what}?`)) return;
    action(async () => {
      await api("POST", "/reset" + (account ? `?accountId=${encodeURIComponent(account)}` : ""));
      state.open.clear();
    });
  });

  $("inbound").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const split = (s) => s.split(/[\s,]+/).filter(Boolean);
    const body = { from: $("inbound-from").value.trim(), to: split($("inbound-to").value), text: $("inbound-text").value };
    const media = split($("inbound-media").value);
    if (media.length) body.media = media;
    const account = $("inbound-account").value.trim();
    if (account) body.accountId = account;
    action(async () => {
      const result = await api("POST", "/inbound", body);
      $("inbound-text").value = "";
      $("inbound-media").value = "";
      const first = result.messages[0];
      if (first) state.selected = conversationOf(first).key;
    });
  });

  const rbmReply = (body) =>
    action(async () => {
      if (!state.rbmTarget) throw new Error("no RBM message in this conversation");
      await api("POST", `/messages/${encodeURIComponent(state.rbmTarget)}/reply`, body);
    });
  $("rbm-reply").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("rbm-reply-text").value;
    rbmReply({ text }).then(() => ($("rbm-reply-text").value = ""));
  });
  $("rbm-share-location").addEventListener("click", () =>
    rbmReply({ location: { latitude: $("rbm-latitude").value.trim(), longitude: $("rbm-longitude").value.trim() } }),
  );

  const dialog = $("scenario-dialog");
  $("scenario-name").addEventListener("click", () =>
    action(async () => {
      await loadScenario();
      await showScenario("yaml");
      dialog.showModal();
    }),
  );
  $("scenario-tab-yaml").addEventListener("click", () => action(() => showScenario("yaml")));
  $("scenario-tab-json").addEventListener("click", () => action(() => showScenario("json")));
  $("scenario-close").addEventListener("click", () => dialog.close());

  loadScenario().catch((err) => notify(err.message));
  // The scenario can be replaced through PUT /_emulator/scenario while the page is open.
  setInterval(() => loadScenario().catch(() => {}), 5000);

  $("more-conversations").addEventListener("click", () => moreConversations().catch((err) => notify(err.message)));
  $("earlier-messages").addEventListener("click", () => earlierMessages().catch((err) => notify(err.message)));
  subscribe(); // first, so that nothing stored after the first read is missed
  pending.all = true;
  catchUp();
  readClock();
  setInterval(readClock, CLOCK_MS);
}

document.addEventListener("DOMContentLoaded", init);
