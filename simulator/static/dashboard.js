// shipper-sim dashboard: reads and acts through the control API (/_sim/...).
//
// Every second it asks /_sim/changes for one mark per kind of state and
// fetches again only the kinds whose mark moved. Lists are reconciled by key:
// a row whose data did not change is left alone, so focus, scroll position
// and open <details> survive the updates.
"use strict";

(() => {
  const POLL_MS = Number(document.body.dataset.pollMs) || 1000;
  const LADDER = JSON.parse(document.getElementById("ladder").textContent);
  const STEPS = LADDER.steps;
  const CODE_NAMES = LADDER.wms_codes;
  const FINAL = new Set(LADDER.final);
  const EDITABLE = new Set(LADDER.editable);
  // The built-in fixtures' demo client. The page opens on it rather than on
  // the lowest id, which may be a client a test or a script added.
  const DEMO_CLIENT_ID = 112233;
  const CARDS_PER_COLUMN = 40;
  const ORDERS_FETCHED = 300;
  const REQUESTS_SHOWN = 80;
  const TIME = new Intl.DateTimeFormat("en-GB", {
    timeZone: "Asia/Jakarta", hour: "2-digit", minute: "2-digit", second: "2-digit",
    hour12: false,
  });
  const DATE_TIME = new Intl.DateTimeFormat("en-GB", {
    timeZone: "Asia/Jakarta", dateStyle: "medium", timeStyle: "medium",
  });

  const state = {
    generation: 0,      // bumped when the client changes; late answers are dropped
    config: null,
    clients: [],
    clientId: null,
    marks: {},
    orders: [],
    selected: null,     // {warehouse_id, order_no}
    timeline: null,
    requests: [],
    lastOk: 0,
    timer: null,
  };

  const $ = (id) => document.getElementById(id);
  const cardPool = new Map();

  // ------------------------------------------------------------- helpers

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (name === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(child));
    }
    return node;
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function time(ts) { return ts ? TIME.format(new Date(ts * 1000)) : "—"; }
  function dateTime(ts) { return ts ? DATE_TIME.format(new Date(ts * 1000)) : ""; }
  function ms(value) {
    if (value === null || value === undefined) return "";
    return `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`;
  }
  function json(value) { return JSON.stringify(value, null, 2); }
  function orderKey(o) { return `${o.warehouse_id}/${o.order_no}`; }
  function stepIndex(name) { return name ? STEPS.findIndex((s) => s.name === name) : -1; }
  function codeLabel(code) { return code ? `${code} ${CODE_NAMES[code] || ""}`.trim() : ""; }

  async function api(path, options = {}) {
    const init = { method: options.method || "GET", headers: {} };
    if (options.body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    const response = await fetch(path, init);
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    return { status: response.status, ok: response.ok, body };
  }

  // Reconcile container's children with items, by key. Nodes come from
  // `pool` (a Map key -> node) so that a card can move between columns as
  // the same element. A node is rebuilt only when its signature changed.
  function sync(container, items, options) {
    if (options.pool) syncInto(container, items, options);
    else keepFocus(container, () => syncInto(container, items, options));
  }

  function syncInto(container, items, { key, sig, render, pool }) {
    const own = pool || new Map(
      Array.from(container.children, (c) => [c.dataset.key, c]),
    );
    const wanted = new Set();
    items.forEach((item, index) => {
      const k = String(key(item));
      const s = sig(item);
      wanted.add(k);
      let node = own.get(k);
      if (!node || node.dataset.sig !== s) {
        const fresh = render(item, node);
        fresh.dataset.key = k;
        fresh.dataset.sig = s;
        if (node) {
          carryState(node, fresh);
          if (node.parentNode) node.replaceWith(fresh);
        }
        own.set(k, fresh);
        node = fresh;
      }
      const at = container.children[index];
      if (at !== node) container.insertBefore(node, at || null);
    });
    for (const child of Array.from(container.children).slice(items.length)) {
      if (!pool || !wanted.has(child.dataset.key)) child.remove();
    }
    if (!pool) {
      for (const k of Array.from(own.keys())) if (!wanted.has(k)) own.delete(k);
    }
  }

  // Keep open <details> of a node that is being rebuilt.
  function carryState(old, fresh) {
    for (const d of old.querySelectorAll("details[data-dk][open]")) {
      const twin = fresh.querySelector(`details[data-dk="${d.dataset.dk}"]`);
      if (twin) twin.open = true;
    }
    if (old.matches("details[open]") && fresh.matches("details")) fresh.open = true;
    const details = old.querySelector(":scope > details[open]");
    const freshDetails = fresh.querySelector(":scope > details");
    if (details && freshDetails) freshDetails.open = true;
  }

  // Run fn, then put the focus back where it was: on the same element if it
  // is still there (moving a node blurs it), else on its rebuilt twin, found
  // by the row's data-key and the control's data-fk.
  function keepFocus(root, fn) {
    const active = document.activeElement;
    const holder = active && active !== document.body ? active.closest("[data-key]") : null;
    const key = holder && root.contains(holder) ? holder.dataset.key : null;
    const fk = active && active.dataset ? active.dataset.fk : undefined;
    fn();
    if (!active || active === document.body || document.activeElement === active) return;
    if (active.isConnected) {
      active.focus({ preventScroll: true });
      return;
    }
    if (key === null) return;
    const twinHolder = root.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (!twinHolder) return;
    const twin = (fk && twinHolder.querySelector(`[data-fk="${fk}"]`)) ||
      twinHolder.querySelector("button, summary, [tabindex]");
    if (twin) twin.focus({ preventScroll: true });
  }

  function showResult(target, tone, head, ...rest) {
    target.replaceChildren(el("p", { class: "result-head" }, head), ...rest);
    target.dataset.tone = tone;
  }

  // ------------------------------------------------------------- loading

  async function loadConfig() {
    const { body } = await api("/_sim/config");
    state.config = body;
  }

  async function loadClients() {
    const { body } = await api("/_sim/clients");
    state.clients = fixtureClientsFirst(body.clients);
    if (!state.clients.some((c) => c.client_id === state.clientId)) {
      const fromHash = Number(new URLSearchParams(location.hash.slice(1)).get("client"));
      const known = state.clients.find((c) => c.client_id === fromHash);
      state.clientId = (known || state.clients[0] || {}).client_id ?? null;
    }
    renderClients();
  }

  // Clients from the fixtures first (by id, as the API lists them), then
  // those added later. Without a from_fixtures field, the demo client is
  // the one known to come from them.
  function fixtureClientsFirst(clients) {
    const isFixture = (c) => ("from_fixtures" in c
      ? Boolean(c.from_fixtures) : c.client_id === DEMO_CLIENT_ID);
    return [...clients].sort((a, b) => isFixture(b) - isFixture(a));
  }

  async function loadOrders() {
    const generation = state.generation;
    const { body } = await api(`/_sim/orders?client_id=${state.clientId}&limit=${ORDERS_FETCHED}`);
    if (generation !== state.generation) return;
    state.orders = body.orders;
    renderBoard();
    if (state.timeline) renderOrder();
  }

  async function loadStock() {
    const generation = state.generation;
    const { body } = await api(`/_sim/stock?client_id=${state.clientId}`);
    if (generation !== state.generation) return;
    renderStock(body.stock || []);
  }

  async function loadRequests() {
    const generation = state.generation;
    // This client's requests, and those that came with no valid key: a new
    // client's first mistake is often the key itself.
    const [own, all] = await Promise.all([
      api(`/_sim/requests?client_id=${state.clientId}&limit=${REQUESTS_SHOWN}`),
      api(`/_sim/requests?limit=${REQUESTS_SHOWN}`),
    ]);
    if (generation !== state.generation) return;
    const byId = new Map();
    for (const r of own.body.requests) byId.set(r.id, r);
    for (const r of all.body.requests) if (r.client_id === null) byId.set(r.id, r);
    state.requests = Array.from(byId.values()).sort((a, b) => b.id - a.id)
      .slice(0, REQUESTS_SHOWN);
    renderRequests();
  }

  async function loadTimeline() {
    const selected = state.selected;
    if (!selected) return;
    const generation = state.generation;
    const { status, body } = await api(
      `/_sim/orders/${encodeURIComponent(selected.warehouse_id)}/` +
      `${encodeURIComponent(selected.order_no)}?client_id=${state.clientId}`,
    );
    if (generation !== state.generation || state.selected !== selected) return;
    if (status === 404) {
      selectOrder(null);
      return;
    }
    state.timeline = body;
    renderOrder();
  }

  async function refresh(kinds) {
    const tasks = [];
    if (!state.config) tasks.push(loadConfig());
    if (kinds.has("clients") || state.clientId === null) tasks.push(loadClients());
    if (state.clientId === null) {
      await Promise.all(tasks);
      return;
    }
    if (kinds.has("orders")) tasks.push(loadOrders());
    if (kinds.has("stock") || kinds.has("orders")) tasks.push(loadStock());
    if (kinds.has("requests")) tasks.push(loadRequests());
    if (state.selected && (kinds.has("orders") || kinds.has("webhooks"))) {
      tasks.push(loadTimeline());
    }
    await Promise.all(tasks);
  }

  const ALL_KINDS = ["clients", "orders", "stock", "requests", "webhooks"];

  async function poll() {
    clearTimeout(state.timer);
    try {
      const generation = state.generation;
      const query = state.clientId === null ? "" : `?client_id=${state.clientId}`;
      const { status, body } = await api(`/_sim/changes${query}`);
      if (status === 401) {
        setLive("offline", "Needs the admin token: open this page with ?token=…");
        return;
      }
      const changed = new Set(ALL_KINDS.filter((k) => body.marks[k] !== state.marks[k]));
      await refresh(changed);
      if (generation === state.generation) state.marks = body.marks;
      state.lastOk = Date.now();
      setLive("live", "Live");
    } catch (error) {
      setLive("offline", "Offline, retrying…");
    } finally {
      state.timer = setTimeout(poll, POLL_MS);
    }
  }

  // After an action: look again now rather than at the next tick.
  function pollSoon() {
    clearTimeout(state.timer);
    state.timer = setTimeout(poll, 50);
  }

  function setLive(kind, text) {
    const live = $("live");
    if (live.dataset.state !== kind) live.dataset.state = kind;
    setText($("live-text"), text);
  }

  // ------------------------------------------------------------- clients

  function currentClient() {
    return state.clients.find((c) => c.client_id === state.clientId) || null;
  }

  function renderClients() {
    const select = $("client-select");
    const options = state.clients.map((c) => ({
      value: String(c.client_id), label: `${c.tenant_name} (${c.client_id})`,
    }));
    const sig = JSON.stringify(options);
    if (select.dataset.sig !== sig) {
      select.replaceChildren(...options.map((o) => el("option", { value: o.value }, o.label)));
      select.dataset.sig = sig;
    }
    select.value = String(state.clientId);
    const client = currentClient();
    if (!client) return;
    setText($("client-codes"),
      `OMS shop ${client.oms_customer_id} · WMS owner ${client.wms_customer_id}`);
    renderSetup(client);
    renderProgressionNote(client);
  }

  function renderProgressionNote(client) {
    let text;
    if (state.config && state.config.auto) {
      text = `Orders move on their own, one step every ${state.config.step_delay}s.`;
    } else if (client.progression === "auto") {
      text = `New orders move on their own, one step every ${client.step_delay}s.`;
    } else {
      text = "Orders move only when told: pick one and advance it.";
    }
    setText($("progression-note"), text);
  }

  function switchClient(clientId) {
    state.generation += 1;
    state.clientId = clientId;
    state.marks = {};
    state.orders = [];
    state.requests = [];
    for (const node of cardPool.values()) node.remove();
    cardPool.clear();
    $("requests").replaceChildren();
    $("stock").replaceChildren();
    selectOrder(null);
    writeHash();
    renderClients();
    pollSoon();
  }

  function writeHash() {
    const params = new URLSearchParams();
    if (state.clientId !== null) params.set("client", state.clientId);
    if (state.selected) params.set("order", orderKey(state.selected));
    history.replaceState(null, "", `#${params}`);
  }

  // ------------------------------------------------------------- the board

  function renderBoard() {
    const byStatus = new Map(LADDER.api_statuses.map((s) => [s, []]));
    for (const order of state.orders) {
      (byStatus.get(order.so_status) || byStatus.get("CREATED")).push(order);
    }
    const shown = new Set();
    keepFocus($("board"), () => {
      for (const column of document.querySelectorAll(".column")) {
        const all = byStatus.get(column.dataset.status) || [];
        const items = all.slice(0, CARDS_PER_COLUMN);
        items.forEach((o) => shown.add(orderKey(o)));
        sync(column.querySelector(".cards"), items, {
          key: orderKey, sig: cardSig, render: renderCard, pool: cardPool,
        });
        setText(column.querySelector(".column-count .count"), String(all.length));
        const more = column.querySelector(".column-more");
        more.hidden = all.length <= items.length;
        setText(more, `and ${all.length - items.length} older`);
      }
      for (const [k, node] of cardPool) {
        if (!shown.has(k)) { node.remove(); cardPool.delete(k); }
      }
    });
    const count = state.orders.length;
    let summary = "No orders yet: send one to Shipper's API.";
    if (count >= ORDERS_FETCHED) summary = `the newest ${count} orders`;
    else if (count) summary = `${count} order${count === 1 ? "" : "s"}`;
    setText($("board-summary"), summary);
  }

  function cardSig(o) {
    const selected = state.selected && orderKey(state.selected) === orderKey(o);
    return [o.so_status, o.wms_code, o.delivery_no, selected].join("|");
  }

  function renderCard(o, previous) {
    const code = o.wms_code;
    const name = code ? CODE_NAMES[code] : LADDER.pending_audit;
    const selected = !!state.selected && orderKey(state.selected) === orderKey(o);
    const label = `Order ${o.order_no}, ${o.kind}, ` +
      (code ? `WMS ${code} ${name}` : name) + `, warehouse ${o.warehouse_id}`;
    const card = el("button", {
      type: "button",
      class: "card",
      "aria-pressed": selected ? "true" : "false",
      "aria-label": label,
      dataset: { status: o.so_status, orderNo: o.order_no, warehouse: o.warehouse_id, fk: "card" },
      onclick: () => selectOrder({ warehouse_id: o.warehouse_id, order_no: o.order_no }),
    },
      el("span", { class: "card-no" }, o.order_no),
      el("span", { class: "card-code" },
        el("span", { class: `kind kind-${o.kind}` }, o.kind), " ",
        code ? el("b", {}, code) : null, code ? " " : null, name),
      el("span", { class: "card-meta" },
        `${o.warehouse_id} · ${time(o.updated)}`));
    const li = el("li", { dataset: { status: o.so_status } }, card);
    if (previous && previous.dataset.status !== o.so_status) {
      card.classList.add("just-moved");
    }
    return li;
  }

  // ------------------------------------------------------------- one order

  function selectOrder(selected) {
    state.selected = selected;
    state.timeline = null;
    $("short-form").hidden = true;
    $("short-open").setAttribute("aria-expanded", "false");
    $("action-result").replaceChildren();
    $("timeline").replaceChildren();
    $("order-lines").replaceChildren();
    $("created-by").replaceChildren();
    $("order-head").replaceChildren();
    delete $("order-head").dataset.sig;
    delete $("created-by").dataset.sig;
    $("order-body").hidden = !selected;
    $("order-empty").hidden = !!selected;
    writeHash();
    renderBoard();
    if (selected) loadTimeline();
  }

  function selectedSummary() {
    if (!state.selected) return null;
    const k = orderKey(state.selected);
    return state.orders.find((o) => orderKey(o) === k) || null;
  }

  // The last step run: from the order list, or read off the timeline for
  // an order too old to be on the board.
  function lastStep() {
    const summary = selectedSummary();
    if (summary) return summary.last_step || null;
    const events = (state.timeline && state.timeline.events) || [];
    for (let i = events.length - 1; i >= 0; i -= 1) {
      const step = STEPS.find((s) => [s.full_code, s.partial_code].includes(events[i].code));
      if (step) return step.name;
    }
    return null;
  }

  function renderOrder() {
    const t = state.timeline;
    if (!t) return;
    const order = t.order;
    const summary = selectedSummary();
    const status = summary ? summary.so_status : order.so_status;
    const code = summary ? summary.wms_code : "";
    renderOrderHead(t, status, code);
    renderActions(status, summary);
    renderLines(order.details);
    renderTimeline(t);
    renderCreatedBy(t.created_by);
  }

  function renderOrderHead(t, status, code) {
    const order = t.order;
    const facts = [
      ["Warehouse", order.warehouse_id],
      ["Client", String(t.client_id)],
      ["Group key", t.group_key],
      ["Carrier", order.carrier_name],
      ["AWB", order.delivery_no === "*" ? "not yet" : order.delivery_no],
      ["Consignee", [order.consignee_name, order.consignee_city].filter(Boolean).join(", ")],
    ];
    if (t.kind === "B2C") facts.splice(3, 0, ["FO number", order.so_reference_1]);
    const sig = JSON.stringify([status, code, facts, t.kind]);
    const head = $("order-head");
    if (head.dataset.sig === sig) return;
    head.dataset.sig = sig;
    head.replaceChildren(
      el("h2", { id: "order-title" }, order.order_no),
      el("span", { class: `kind kind-${t.kind}` }, t.kind === "B2C" ? "B2C · OMS" : "B2B · WMS"),
      el("span", { class: "pill", dataset: { status } },
        status, code ? ` · ${codeLabel(code)}` : (status === "REGISTERED" ? ` · ${LADDER.pending_audit}` : "")),
      el("dl", { class: "order-facts" },
        facts.filter(([, v]) => v).map(([k, v]) =>
          el("div", {}, el("dt", {}, k), el("dd", { class: k === "Group key" || k === "AWB" || k === "FO number" ? "mono" : null }, v)))),
    );
  }

  function renderActions(status, summary) {
    const last = stepIndex(lastStep());
    const next = STEPS[last + 1];
    const isFinal = FINAL.has(status) || !next;

    const advance = $("advance-next");
    advance.disabled = isFinal;
    setText(advance, isFinal ? "Advance one step" : `Advance one step: ${next.name}`);
    advance.setAttribute("aria-label", isFinal
      ? `Nothing follows ${status}` : `Advance one step: run ${next.name}, in full`);

    const target = $("advance-target");
    const choices = isFinal ? [] : STEPS.slice(last + 1).map((s) => ({
      value: s.full_code, label: `${s.status} · ${s.full_code} ${CODE_NAMES[s.full_code]}`,
    }));
    const sig = JSON.stringify(choices);
    if (target.dataset.sig !== sig) {
      const before = target.value;
      target.replaceChildren(...(choices.length
        ? choices.map((c) => el("option", { value: c.value }, c.label))
        : [el("option", { value: "" }, "nothing follows")]));
      target.dataset.sig = sig;
      const keep = choices.find((c) => c.value === before);
      const shipped = choices.find((c) => c.value === "80");
      target.value = (keep || shipped || choices[choices.length - 1] || {}).value || "";
    }
    target.disabled = isFinal;
    $("advance-to").disabled = isFinal;
    $("short-open").disabled = isFinal || !next.quantity;

    const mode = $("order-progression");
    if (summary && document.activeElement !== mode) mode.value = summary.progression;
    mode.disabled = isFinal;

    renderCancel(status);
  }

  // Cancel stays open after allocation, so that Shipper's refusal (3020) can
  // be seen; a cancelled or closed order has nothing left to cancel.
  function renderCancel(status) {
    const done = FINAL.has(status);
    const cancel = $("cancel-order");
    cancel.disabled = done;
    $("cancel-reason").disabled = done;
    let why = "Sends Shipper's cancel for this order, as the client would.";
    if (status === "CANCELLED") why = "This order is already cancelled.";
    else if (done) why = `This order is ${status}: there is nothing left to cancel.`;
    else if (!EDITABLE.has(status)) {
      why = "Stock is allocated: Shipper refuses this cancel with 3020. " +
        "Send it to see the answer.";
    }
    if (cancel.title !== why) cancel.title = why;
  }

  function renderLines(details) {
    sync($("order-lines"), details, {
      key: (d) => d.order_line,
      sig: (d) => [d.qty_ordered, d.qty_released, d.qty_allocated, d.qty_picked, d.qty_shipped].join("|"),
      render: (d) => el("tr", {},
        el("td", {}, el("div", { class: "sku" }, d.sku), el("div", { class: "descr" }, d.sku_descr)),
        ...["qty_ordered", "qty_released", "qty_allocated", "qty_picked", "qty_shipped"].map((f) =>
          el("td", { class: `num${f !== "qty_ordered" && d[f] > 0 && d[f] < d.qty_ordered ? " short-qty" : ""}` },
            String(d[f])))),
    });
  }

  function renderTimeline(t) {
    const items = [
      ...t.events.map((e, i) => ({ kind: "event", key: `e${i}`, time: e.time, order: 0, e })),
      ...t.webhooks.map((w) => ({ kind: "webhook", key: `w${w.id}`, time: w.created, order: 1, w })),
    ].sort((a, b) => a.time - b.time || a.order - b.order);
    sync($("timeline"), items, {
      key: (item) => item.key,
      sig: (item) => item.kind === "event" ? "event"
        : [item.w.state, item.w.attempts.length, item.w.next_attempt_at].join("|"),
      render: (item) => item.kind === "event" ? renderEvent(item.e) : renderWebhook(item.w),
    });
  }

  function renderEvent(e) {
    const what = e.note === "registered" ? "Registered in the OMS"
      : e.note === "updated" ? "Updated by the client"
      : codeLabel(e.code);
    return el("li", { class: "tl-item tl-event", dataset: { status: e.status } },
      el("div", { class: "tl-line" },
        el("span", { class: "tl-time", title: dateTime(e.time) }, time(e.time)),
        e.code && e.note === "status" ? el("span", { class: "tl-code" }, e.code) : null,
        el("span", { class: "tl-what" },
          e.note === "status" ? (CODE_NAMES[e.code] || e.name) : what),
        el("span", { class: "tl-api" }, e.status === "REGISTERED" ? LADDER.pending_audit : e.status)));
  }

  function webhookSummary(w) {
    const p = w.payload || {};
    if (w.event === "status") return `status ${p.status_code} ${p.status}`;
    if (w.event === "pgi") {
      const lines = p.details || [];
      const units = lines.reduce((sum, d) => sum + (d.qty_shipped || 0), 0);
      return `PGI · ${units} unit${units === 1 ? "" : "s"} on ${lines.length} line${lines.length === 1 ? "" : "s"} · AWB ${p.delivery_no}`;
    }
    if (w.event === "so_created") return "SO created";
    return w.event;
  }

  function stateText(w) {
    if (w.state === "no_url") return "no webhook URL";
    if (w.state === "pending" && w.attempts.length) return `retry at ${time(w.next_attempt_at)}`;
    return w.state;
  }

  function renderWebhook(w) {
    const summary = webhookSummary(w);
    const li = el("li", { class: "tl-item tl-webhook", dataset: { state: w.state, deliveryId: w.id } },
      el("div", { class: "tl-line tl-line-webhook" },
        el("span", { class: "tl-time", title: dateTime(w.created) }, time(w.created)),
        el("span", { class: "tl-body" },
          el("span", { class: "tl-what" }, `Webhook #${w.id}`), " ", summary,
          w.redelivery_of ? el("span", { class: "tl-api" }, ` · redelivery of #${w.redelivery_of}`) : null),
        el("span", { class: `state state-${w.state}` }, stateText(w)),
        el("button", {
          type: "button", class: "button button-small tl-redeliver",
          "aria-label": `Redeliver webhook ${w.id} (${summary})`,
          dataset: { fk: "redeliver" },
          onclick: () => redeliver(w.id),
        }, "Redeliver")),
      w.attempts.length ? el("ol", { class: "attempts", "aria-label": `Attempts of webhook ${w.id}` },
        w.attempts.map((a) => {
          const good = a.status_code !== null && a.status_code >= 200 && a.status_code < 300;
          return el("li", { class: "attempt", title: a.url },
            el("span", {}, `#${a.n}`),
            el("span", {}, time(a.time)),
            el("span", { class: good ? "attempt-status-ok" : "attempt-status-bad" },
              a.status_code === null ? "—" : String(a.status_code)),
            el("span", {}, ms(a.duration_ms)),
            el("span", { class: "attempt-error", title: a.error || null }, a.error || ""));
        })) : null,
      el("details", { dataset: { dk: "payload" } },
        el("summary", { class: "tl-api" }, "payload"),
        el("pre", { class: "body" }, json(w.payload))));
    return li;
  }

  function renderCreatedBy(entry) {
    const box = $("created-by");
    const sig = entry ? String(entry.id) : "none";
    if (box.dataset.sig === sig) return;
    box.dataset.sig = sig;
    if (!entry) {
      box.replaceChildren(el("p", { class: "muted" }, "Not in the journal any more (or made by a scenario)."));
      return;
    }
    box.replaceChildren(
      el("p", {},
        el("span", { class: "req-method" }, entry.method), " ",
        el("code", {}, entry.path), " → ",
        el("b", {}, String(entry.status)), ` at ${time(entry.time)} · ${ms(entry.duration_ms)}`),
      el("p", { class: "muted" }, "request id ", el("code", {}, entry.request_id)),
      el("details", { dataset: { dk: "request" } }, el("summary", {}, "Request body"),
        el("pre", { class: "body" }, json(entry.request_body))),
      el("details", { dataset: { dk: "response" } }, el("summary", {}, "Response body"),
        el("pre", { class: "body" }, json(entry.response_body))));
  }

  // ------------------------------------------------------------- actions

  function orderPath(suffix) {
    const s = state.selected;
    return `/_sim/orders/${encodeURIComponent(s.warehouse_id)}/` +
      `${encodeURIComponent(s.order_no)}/${suffix}?client_id=${state.clientId}`;
  }

  async function advance(body, what) {
    const result = $("action-result");
    const { ok, body: answer } = await api(orderPath("advance"), { method: "POST", body });
    if (ok) {
      const outbound = answer.data.outbound;
      showResult(result, "ok", `${what}: the order is now ${outbound.so_status}.`);
    } else {
      showResult(result, "bad", `${what} was refused.`,
        el("p", {}, (answer && answer.error) || "The simulator gave no reason."));
    }
    pollSoon();
    return ok;
  }

  async function cancelOrder() {
    const reason = $("cancel-reason").value.trim() || "cancelled from the dashboard";
    const { ok, body } = await api(orderPath("cancel"), {
      method: "POST", body: { cancel_reason: reason },
    });
    const result = $("action-result");
    if (!ok) {
      showResult(result, "bad", "The cancel could not be sent.", el("p", {}, body && body.error));
      return;
    }
    const shipperBody = el("pre", { "aria-label": "Shipper's answer, as the client gets it" },
      json(body.shipper_body));
    if (body.shipper_status === 200) {
      showResult(result, "ok", "Cancelled. Shipper answered HTTP 200 OK.", shipperBody);
    } else {
      const error = (body.shipper_body.metadata.errors || [])[0] || {};
      showResult(result, "bad",
        el("span", {}, `Refused. Shipper answered HTTP ${body.shipper_status} with code `,
          el("span", { class: "error-code" }, String(error.code)), `: ${error.message}`),
        body.reason ? el("p", {}, `Why: ${body.reason}.`) : null,
        shipperBody);
    }
    pollSoon();
  }

  async function redeliver(id) {
    const { ok, body } = await api(`/_sim/webhooks/${id}/redeliver`, { method: "POST" });
    const result = $("action-result");
    if (ok) showResult(result, "ok", `Webhook #${id} queued again as #${body.id}.`);
    else showResult(result, "bad", `Webhook #${id} could not be redelivered.`, el("p", {}, body && body.error));
    pollSoon();
  }

  function openShortForm() {
    const last = stepIndex(lastStep());
    const step = STEPS[last + 1];
    if (!step || !step.quantity || !state.timeline) return;
    const form = $("short-form");
    form.dataset.step = step.name;
    setText($("short-title"),
      `Run ${step.name} one step short: set what each line reaches. ` +
      "Lines left as they are run in full.");
    const rows = state.timeline.order.details.map((d) => {
      const known = d[step.capped_by];
      // The order view shows no packed or loaded quantities: for load and
      // ship the picked quantity is the best bound the page has.
      const cap = known !== undefined ? known : d.qty_picked;
      const input = el("input", {
        type: "number", min: "0", max: String(cap), value: String(cap),
        "aria-label": `${step.name} quantity for line ${d.order_line} (${d.sku})`,
        dataset: { line: d.order_line, full: cap },
      });
      return el("tr", {},
        el("td", {}, String(d.order_line)),
        el("td", { class: "sku" }, d.sku),
        el("td", { class: "num" }, String(d.qty_ordered)),
        el("td", { class: "num" }, known !== undefined ? String(cap) : `≤ ${cap}`),
        el("td", { class: "num" }, input));
    });
    $("short-lines").replaceChildren(...rows);
    form.hidden = false;
    $("short-open").setAttribute("aria-expanded", "true");
    const first = form.querySelector("input");
    if (first) { first.focus(); first.select(); }
  }

  function closeShortForm() {
    $("short-form").hidden = true;
    $("short-open").setAttribute("aria-expanded", "false");
    $("short-open").focus();
  }

  async function submitShortForm(event) {
    event.preventDefault();
    const form = $("short-form");
    const lines = {};
    for (const input of form.querySelectorAll("input[data-line]")) {
      const value = Number(input.value);
      if (input.value !== "" && value !== Number(input.dataset.full)) {
        lines[input.dataset.line] = value;
      }
    }
    const ok = await advance({ step: form.dataset.step, lines }, `${form.dataset.step} (short)`);
    if (ok) closeShortForm();
  }

  async function setOrderProgression() {
    const mode = $("order-progression").value;
    const { ok, body } = await api(orderPath("progression"), { method: "PUT", body: { mode } });
    const result = $("action-result");
    if (ok) {
      showResult(result, "ok", mode === "auto"
        ? "This order now moves on its own." : "This order now moves only when told.");
    } else {
      showResult(result, "bad", "The progression was not changed.", el("p", {}, body && body.error));
    }
    pollSoon();
  }

  let resetTimer = null;
  async function resetDemo() {
    const button = $("reset-button");
    if (!button.hasAttribute("data-armed")) {
      button.setAttribute("data-armed", "");
      button.textContent = "Click again to reset";
      resetTimer = setTimeout(disarmReset, 4000);
      return;
    }
    disarmReset();
    await api("/_sim/reset", { method: "POST" });
    switchClient(state.clientId);
    setLive("live", "Reset: fixtures reloaded");
  }
  function disarmReset() {
    clearTimeout(resetTimer);
    const button = $("reset-button");
    button.removeAttribute("data-armed");
    button.textContent = "Reset demo";
  }

  // ------------------------------------------------------------- side panel

  function renderRequests() {
    const onlyRejected = $("rejected-only").checked;
    const items = state.requests.filter((r) => !onlyRejected || r.status >= 400);
    sync($("requests"), items, {
      key: (r) => r.id, sig: () => "1", render: renderRequest,
    });
    $("requests-empty").hidden = items.length > 0;
    const rejected = state.requests.filter((r) => r.status >= 400).length;
    const badge = $("rejected-count");
    badge.hidden = rejected === 0;
    setText(badge, String(rejected));
    badge.setAttribute("aria-label", `${rejected} rejected`);
  }

  function renderRequest(r) {
    const rejected = r.status >= 400;
    return el("li", { class: `req${rejected ? " req-rejected" : ""}`, dataset: { requestId: r.id } },
      el("details", {},
        el("summary", {},
          el("span", { class: "req-time", title: dateTime(r.time) }, time(r.time)),
          el("span", { class: "req-method" }, r.method),
          el("span", { class: "req-path" }, r.path,
            r.client_id === null ? el("span", { class: "req-client" }, "  (no valid key)") : null),
          el("span", { class: "req-status" }, r.code ? `${r.status} · ${r.code}` : String(r.status))),
        el("p", { class: "muted" }, `request id ${r.request_id} · ${ms(r.duration_ms)}`),
        el("pre", { class: "body", "aria-label": "request body" }, json(r.request_body)),
        el("pre", { class: "body", "aria-label": "response body" }, json(r.response_body))),
      rejected && r.reason ? el("p", { class: "req-reason" }, r.reason) : null);
  }

  function renderStock(rows) {
    let previous = null;
    const items = rows.map((r) => {
      const first = r.warehouse_id !== previous;
      previous = r.warehouse_id;
      return { ...r, first };
    });
    sync($("stock"), items, {
      key: (r) => `${r.warehouse_id}/${r.sku}`,
      sig: (r) => [r.qty_on_hand, r.qty_allocated, r.qty_sellable, r.first].join("|"),
      render: (r) => el("tr", { class: r.first ? "wh-first" : null },
        el("td", { class: "sku" }, r.first ? r.warehouse_id : ""),
        el("td", {}, el("div", { class: "sku" }, r.sku), el("div", { class: "descr" }, r.sku_descr)),
        el("td", { class: "num" }, String(r.qty_on_hand)),
        el("td", { class: "num" }, String(r.qty_allocated)),
        el("td", { class: `num${r.qty_sellable < 5 ? " low" : ""}` }, String(r.qty_sellable))),
    });
  }

  function renderSetup(client) {
    const facts = [
      ["API key", client.api_key],
      ["client_id", String(client.client_id)],
      ["OMS shop", client.oms_customer_id],
      ["WMS owner", client.wms_customer_id],
      ["Warehouses", client.warehouses.join(", ")],
    ];
    const box = $("client-facts");
    const sig = JSON.stringify(facts);
    if (box.dataset.sig !== sig) {
      box.dataset.sig = sig;
      box.replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    }
    // Never overwrite what someone is typing.
    const url = $("webhook-url");
    if (document.activeElement !== url && url.dataset.server !== client.webhook_url) {
      url.value = client.webhook_url;
      url.dataset.server = client.webhook_url;
    }
    const form = $("progression-form");
    if (!form.contains(document.activeElement) && form.dataset.server !== `${client.progression}|${client.step_delay}`) {
      form.dataset.server = `${client.progression}|${client.step_delay}`;
      for (const radio of form.querySelectorAll("input[name=progression]")) {
        radio.checked = radio.value === client.progression;
      }
      $("step-delay").value = String(client.step_delay);
    }
    $("auto-note").hidden = !(state.config && state.config.auto);
  }

  async function saveClient(changes, what) {
    const { ok, body } = await api(`/_sim/clients/${state.clientId}`, {
      method: "PATCH", body: changes,
    });
    const result = $("setup-result");
    if (ok) showResult(result, "ok", `${what} saved.`);
    else showResult(result, "bad", `${what} not saved.`, el("p", {}, body && body.error));
    pollSoon();
  }

  function selectTab(tab, focus) {
    for (const other of document.querySelectorAll("[role=tab]")) {
      const on = other === tab;
      other.setAttribute("aria-selected", on ? "true" : "false");
      other.tabIndex = on ? 0 : -1;
      $(other.getAttribute("aria-controls")).hidden = !on;
    }
    if (focus) tab.focus();
  }

  // ------------------------------------------------------------- wiring

  function wire() {
    $("client-select").addEventListener("change", (e) => switchClient(Number(e.target.value)));
    $("reset-button").addEventListener("click", resetDemo);
    $("advance-next").addEventListener("click", () => {
      const next = STEPS[stepIndex(lastStep()) + 1];
      if (next) advance({ step: next.name }, next.name);
    });
    $("advance-to").addEventListener("click", () => {
      const target = $("advance-target");
      const label = target.selectedOptions[0] ? target.selectedOptions[0].textContent : target.value;
      advance({ to: target.value }, `Advance to ${label}`);
    });
    $("short-open").addEventListener("click", () => {
      if ($("short-form").hidden) openShortForm(); else closeShortForm();
    });
    $("short-close").addEventListener("click", closeShortForm);
    $("short-form").addEventListener("submit", submitShortForm);
    $("short-form").addEventListener("keydown", (e) => { if (e.key === "Escape") closeShortForm(); });
    $("cancel-order").addEventListener("click", cancelOrder);
    $("order-progression").addEventListener("change", setOrderProgression);
    $("rejected-only").addEventListener("change", renderRequests);

    $("webhook-form").addEventListener("submit", (e) => {
      e.preventDefault();
      saveClient({ webhook_url: $("webhook-url").value.trim() }, "Webhook URL");
    });
    $("progression-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const checked = e.target.querySelector("input[name=progression]:checked");
      const changes = { step_delay: Number($("step-delay").value) };
      if (checked) changes.progression = checked.value;
      saveClient(changes, "Progression");
    });

    const tabs = Array.from(document.querySelectorAll("[role=tab]"));
    tabs.forEach((tab, i) => {
      tab.addEventListener("click", () => selectTab(tab, false));
      tab.addEventListener("keydown", (e) => {
        const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
        if (step) {
          e.preventDefault();
          selectTab(tabs[(i + step + tabs.length) % tabs.length], true);
        }
      });
    });
  }

  // The hash names the client and the order (#client=112233&order=WH/NO),
  // so a link shows the same thing to someone else.
  function followHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    const clientId = Number(params.get("client"));
    if (clientId && clientId !== state.clientId &&
        state.clients.some((c) => c.client_id === clientId)) {
      switchClient(clientId);
    }
    const wanted = params.get("order") || "";
    const current = state.selected ? orderKey(state.selected) : "";
    if (wanted !== current) {
      const [warehouse_id, ...rest] = wanted.split("/");
      selectOrder(rest.length ? { warehouse_id, order_no: rest.join("/") } : null);
    }
  }

  async function start() {
    wire();
    try {
      await loadConfig();
      await loadClients();
    } catch (error) {
      setLive("offline", "Offline, retrying…");
    }
    followHash();
    window.addEventListener("hashchange", followHash);
    poll();
  }

  start();
})();
