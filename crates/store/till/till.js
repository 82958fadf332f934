// The till screen: sign-in, shift, selling, payment, receipts, returns, parked sales and the
// customer display feed. The node prices every cart; this script never adds up money.
"use strict";

(() => {
  const { state: K, t, translate, money, quantity, dateTime, uuidTime, newKey, api, el } = Kassa;
  const $ = (id) => document.getElementById(id);

  /** What the till holds between requests. */
  const S = {
    signInAvailable: true,
    staffList: [],
    chosenStaff: null,
    staff: null,
    permissions: [],
    shift: null,
    lines: [], // {code, quantity, discount, embedded, sku, name, unit}
    discount: null,
    approval: null,
    view: null,
    selected: -1,
    pendingQty: null,
    tenders: [],
    settle: null,
    saleKey: null,
    lastItem: null,
    screen: "loading",
  };

  /** Timings of scans, read by the benchmark: ms from the scan's Enter to the line drawn. */
  window.kassaScanTimings = [];

  // ---------------------------------------------------------------------------------------
  // Screens, dialogs and messages

  function show(screen) {
    S.screen = screen;
    for (const name of ["loading", "error", "signin", "shift", "sell"]) {
      $("screen-" + name).hidden = name !== screen;
    }
    $("btn-signout").hidden = !(S.staff && S.signInAvailable);
    $("btn-shift").hidden = !(S.signInAvailable && screen === "sell");
    document.body.dataset.screen = screen;
  }

  function openDialog(id) {
    // Errors of an earlier visit do not stay beside new ones.
    $(id).querySelectorAll(".error").forEach((e) => (e.textContent = ""));
    $(id).hidden = false;
    const first = $(id).querySelector("input:not([type=radio]):not([hidden]), select");
    if (first) setTimeout(() => first.focus(), 0);
  }

  function closeDialog(id, confirmed) {
    // A return whose card refund is still outstanding would leave the customer without the
    // money: the cashier confirms before the dialog goes.
    if (id === "dlg-return" && S.cardRefund && !$(id).hidden && !confirmed) {
      askConfirm(t("card.refund_outstanding"), t("btn.close_anyway")).then((ok) => ok && closeDialog(id, true));
      return;
    }
    $(id).hidden = true;
    if (document.activeElement && $(id).contains(document.activeElement)) {
      document.activeElement.blur();
    }
  }

  function openDialogs() {
    return Array.from(document.querySelectorAll(".dialog")).filter((d) => !d.hidden);
  }

  let messageTimer = null;
  function message(text, kind) {
    const box = $("message");
    box.textContent = text;
    box.className = "message " + (kind || "error");
    box.hidden = !text;
    clearTimeout(messageTimer);
    if (text) messageTimer = setTimeout(() => (box.hidden = true), 6000);
  }

  /**
   * What the node answered, in the till's language: its stable `code` translated where the
   * till knows it, else the node's own message.
   */
  function errorText(r) {
    if (!r) return t("error.network");
    const b = r.body || {};
    if (b.code) {
      // The error's own fields fill the text: tries left, minutes locked, the digit expected.
      const vars = {
        ...b,
        field: b.field || "",
        permission: permissionName(b.permission),
        minimum_role: roleName(b.minimum_role),
        minutes: Math.max(1, Math.ceil((b.retry_after_seconds || 0) / 60)),
        due: b.due ? money(b.due) : "",
      };
      for (const key of [b.reason ? `code.${b.code}.${b.reason}` : null, "code." + b.code]) {
        if (!key) continue;
        const text = t(key, vars);
        if (text !== key) return text;
      }
    }
    return b.message || b.code || String(r.status);
  }

  /**
   * Why the terminal refused, in the till's language: its nexo `condition` translated where the
   * till knows it, else the terminal's own words.
   */
  function cardReason(body) {
    const b = body || {};
    const key = "card.condition." + b.condition;
    if (b.condition && (window.KASSA_I18N[K.lang] || {})[key]) return t(key);
    return b.reason || b.condition || "";
  }

  /** A permission (an approval's reason) in words. */
  function permissionName(permission) {
    if (!permission) return "";
    const key = "permission." + permission;
    const text = t(key);
    return text === key ? permission : text;
  }

  /** A role in words. */
  function roleName(role) {
    if (!role) return "";
    const key = "role." + role;
    const text = t(key);
    return text === key ? role : text;
  }

  /**
   * A decimal number typed by a person, with the locale's decimal separator or a point, as the
   * node reads it ("1,234" in German is "1.234"); null when it is not a number. Grouping
   * separators are not accepted: "1.234,5" is ambiguous at a till.
   */
  function typedDecimal(text) {
    const value = String(text || "").trim().replace(/\s+/g, "");
    if (!/^-?\d*([.,]\d*)?$/.test(value) || !/\d/.test(value)) return null;
    return value.replace(",", ".");
  }

  // A question with two answers, on screen (a touch till has no keyboard for window.confirm).
  let confirmResolve = null;
  function askConfirm(text, yes, no) {
    $("confirm-text").textContent = text;
    $("confirm-yes").textContent = yes || t("btn.ok");
    $("confirm-no").textContent = no || t("btn.cancel");
    openDialog("dlg-confirm");
    return new Promise((resolve) => (confirmResolve = resolve));
  }
  function confirmDone(value) {
    $("dlg-confirm").hidden = true;
    const r = confirmResolve;
    confirmResolve = null;
    if (r) r(value);
  }

  // ---------------------------------------------------------------------------------------
  // Keypads: every `.keypad` types into the input named by `data-target` (touch entry)

  function buildKeypads() {
    document.querySelectorAll(".keypad").forEach((pad) => {
      // The numeric-pad order (7 8 9 / 4 5 6 / 1 2 3 / 0), the actions in a column beside it.
      const keys = pad.classList.contains("sell-pad")
        ? ["7", "8", "9", "C", "4", "5", "6", "⌫", "1", "2", "3", "×", "0", ".", "⏎"]
        : ["7", "8", "9", "4", "5", "6", "1", "2", "3", "0", ".", "⌫"];
      for (const key of keys) {
        const name = { "×": "times", "⌫": "back", "⏎": "enter", ".": "dot", C: "clear" }[key] || key;
        pad.append(
          el("button", {
            class: "key" + (key === "0" && pad.classList.contains("sell-pad") ? " wide" : ""),
            type: "button",
            tabindex: "-1",
            "data-test": "key-" + name,
            "data-key": key,
            text: key,
          }),
        );
      }
      pad.addEventListener("pointerdown", (e) => e.preventDefault());
      pad.addEventListener("click", (e) => {
        const key = e.target.dataset && e.target.dataset.key;
        if (!key) return;
        if (pad.classList.contains("sell-pad")) {
          sellKey(key);
          return;
        }
        const input = $(pad.dataset.target);
        if (key === "⌫") input.value = input.value.slice(0, -1);
        else input.value += key === "." ? decimalSeparator() : key;
        input.dispatchEvent(new Event("input"));
      });
    });
  }

  // ---------------------------------------------------------------------------------------
  // Keyboard: a scan buffer independent of focus. Barcode scanners type the code and Enter
  // within a few milliseconds; every key is handled synchronously here, so none is lost, and
  // each Enter ends exactly one code.

  // A scanner types faster than any person: on average under 50 ms a key, Enter included.
  // One slow key (a busy machine) does not break a scan; a pause of 300 ms starts a new one.
  const BURST_KEY_MS = 50;
  const PAUSE_MS = 300;
  const scan = { buf: "", last: 0, start: 0, owner: null, fieldStart: null };

  function isField(node) {
    return (
      node &&
      (node.tagName === "INPUT" || node.tagName === "TEXTAREA" || node.tagName === "SELECT") &&
      node.type !== "radio" &&
      node.type !== "checkbox"
    );
  }

  function resetScan() {
    scan.buf = "";
    scan.owner = null;
    scan.fieldStart = null;
    renderEntry();
  }

  /** Selling with nothing focused and no dialog: every key goes to the entry line. */
  function manualEntry(inField) {
    return !inField && S.screen === "sell" && openDialogs().length === 0;
  }

  function onKeyDown(e) {
    if (e.ctrlKey || e.altKey || e.metaKey) return;
    const now = performance.now();
    const active = document.activeElement;
    const inField = isField(active);
    const manual = manualEntry(inField);
    const gap = now - scan.last;
    scan.last = now;
    if (e.key.length === 1) {
      const owner = inField ? active : null;
      if (scan.owner !== owner) {
        scan.buf = "";
        scan.owner = owner;
      }
      // Outside the entry line the buffer holds only the current burst: anything slower is a
      // person typing into a field, which the field keeps.
      if (!manual && gap > PAUSE_MS) scan.buf = "";
      if (!scan.buf) {
        scan.start = now;
        scan.fieldStart = inField ? active.value : null;
      }
      if (manual) {
        e.preventDefault();
        e.stopPropagation();
        if ((e.key === "*" || e.key === "x" || e.key === "X") && /^\d+([.,]\d{1,3})?$/.test(scan.buf)) {
          takeQuantity();
          return;
        }
        scan.buf += e.key;
        renderEntry();
        return;
      }
      if (!inField && S.screen === "signin" && !$("signin-pin").hidden && /\d/.test(e.key)) {
        e.preventDefault();
        $("pin-input").value += e.key;
        return;
      }
      scan.buf += e.key;
      return;
    }
    if (e.key === "Enter") {
      const code = scan.buf;
      const burst = code.length >= 4 && gap <= PAUSE_MS && now - scan.start <= BURST_KEY_MS * code.length;
      const field = inField && scan.owner === active ? active : null;
      const fieldStart = scan.fieldStart;
      resetScan();
      if (!manual && !burst) return; // Enter typed by hand: the field's or button's own business.
      if (!code) return;
      if (field && field.dataset.scan === "off") return;
      e.preventDefault();
      e.stopPropagation();
      if (field && fieldStart !== null) {
        // A scanner typed into a field: take the code back out of it.
        field.value = fieldStart;
        field.dispatchEvent(new Event("input"));
      }
      routeScan(code, now);
      return;
    }
    if (e.key === "Backspace" && manual) {
      e.preventDefault();
      scan.buf = scan.buf.slice(0, -1);
      renderEntry();
      return;
    }
    if (e.key === "Escape") {
      const dialogs = openDialogs();
      if (dialogs.length) {
        e.preventDefault();
        const top = dialogs[dialogs.length - 1];
        if (top.id === "dlg-confirm") confirmDone(false);
        else if (top.id === "dlg-approval") approvalDone(null);
        else if (top.id === "dlg-qty") qtyDone(null);
        else if (top.id === "dlg-receipt") newSale();
        else closeDialog(top.id);
      } else if (!inField) {
        S.pendingQty = null;
        resetScan();
      } else {
        active.blur();
      }
      return;
    }
    if (S.screen === "sell" && openDialogs().length === 0) shortcut(e, inField);
  }

  /** Function keys of the selling screen. */
  function shortcut(e, inField) {
    const actions = {
      F2: () => $("search-input").focus(),
      F3: () => $("btn-qty").click(),
      F4: () => $("btn-pay").click(),
      F5: () => $("btn-price-check").click(),
      F6: () => $("btn-park").click(),
      F7: () => $("btn-resume").click(),
      F8: () => $("btn-return").click(),
      F9: () => $("btn-void").click(),
      F10: () => $("btn-line-discount").click(),
      F11: () => $("btn-cart-discount").click(),
      F12: () => $("btn-gift-card").click(),
    };
    if (!inField) {
      actions.ArrowUp = () => select(Math.max(0, S.selected - 1));
      actions.ArrowDown = () => select(Math.min(S.lines.length - 1, S.selected + 1));
      actions.Delete = () => $("btn-remove").click();
    }
    const action = actions[e.key];
    if (action) {
      e.preventDefault();
      action();
    }
  }

  /** Sends a scanned or typed code where it belongs: an open dialog that takes codes, or the sale. */
  function routeScan(code, at) {
    let dialogs = openDialogs();
    if (dialogs.length === 1 && dialogs[0].id === "dlg-receipt") {
      // The next customer's first item closes the last receipt.
      newSale();
      dialogs = [];
    }
    if (dialogs.length) {
      const top = dialogs[dialogs.length - 1];
      const target = top.dataset.scanTarget;
      if (top.id === "dlg-return" && returnMode() === "receipt") {
        $("return-receipt").value = code;
        loadReturnReceipt();
      } else if (target) {
        $(target).value = code;
        if (top.id === "dlg-price-check") priceCheck(code);
        if (top.id === "dlg-stored-value") checkBalance();
        if (top.id === "dlg-orders") findOrder();
      }
      return;
    }
    if (S.screen !== "sell") return;
    if (document.activeElement === $("search-input")) $("search-input").blur();
    enqueue(code, S.pendingQty, at);
    S.pendingQty = null;
    renderEntry();
  }

  function takeQuantity() {
    if (!/^\d+([.,]\d{1,3})?$/.test(scan.buf)) {
      resetScan();
      return;
    }
    S.pendingQty = scan.buf.replace(",", ".");
    resetScan();
  }

  function sellKey(key) {
    if (key === "⏎") {
      const code = scan.buf;
      resetScan();
      if (code) routeScan(code, performance.now());
    } else if (key === "×") takeQuantity();
    else if (key === "C") {
      S.pendingQty = null;
      resetScan();
    } else if (key === "⌫") {
      scan.buf = scan.buf.slice(0, -1);
      renderEntry();
    } else {
      scan.buf += key === "." ? decimalSeparator() : key;
      renderEntry();
    }
  }

  /** The decimal separator of the store's locale, which the keypads type. */
  function decimalSeparator() {
    const part = new Intl.NumberFormat((K.config && K.config.locale) || "en").formatToParts(1.5).find((p) => p.type === "decimal");
    return part ? part.value : ".";
  }

  function renderEntry() {
    // Only what was typed on the entry line itself shows there, never a field's keys.
    const typed = scan.owner ? "" : scan.buf;
    const entry = $("scan-entry");
    entry.textContent = typed || (S.screen === "sell" ? t("scan.placeholder") : "");
    entry.classList.toggle("placeholder", !typed);
    $("pending-qty").textContent = S.pendingQty ? t("qty.pending", { qty: S.pendingQty }) : "";
  }

  // ---------------------------------------------------------------------------------------
  // Adding codes: one at a time in arrival order; the cart is priced once a burst is through.

  const queue = [];
  let pumping = false;

  function enqueue(code, qty, at) {
    queue.push({ code, qty, at });
    if (!pumping) pump();
  }

  async function pump() {
    pumping = true;
    const started = [];
    try {
      while (queue.length) {
        const job = queue.shift();
        started.push(job.at);
        await addCode(job.code, job.qty);
        if (!queue.length) {
          await reprice();
          const drawn = performance.now();
          for (const at of started) window.kassaScanTimings.push(drawn - at);
          started.length = 0;
        }
      }
    } finally {
      pumping = false;
    }
  }

  /** Milli-units of a decimal quantity string; quantities are counts, not money. */
  function milli(q) {
    const [whole, frac = ""] = String(q).split(".");
    return parseInt(whole || "0", 10) * 1000 + parseInt((frac + "000").slice(0, 3), 10);
  }

  function fromMilli(m) {
    const whole = Math.floor(m / 1000);
    const frac = String(m % 1000).padStart(3, "0").replace(/0+$/, "");
    return frac ? `${whole}.${frac}` : String(whole);
  }

  async function addCode(code, qty) {
    let r;
    try {
      r = await api("GET", "/v1/items/" + encodeURIComponent(code));
    } catch (e) {
      message(t("error.network"));
      return;
    }
    if (r.status === 404) {
      message(t("scan.unknown", { code }));
      return;
    }
    if (r.status !== 200) {
      message(t("error.generic", { message: errorText(r) }));
      return;
    }
    const item = r.body;
    if (!item.sold_in_store) {
      message(t("scan.online_only", { name: item.name }));
      return;
    }
    if (item.open_price) {
      // A department key: the cashier types the price (the node checks it).
      const price = await askQuantity(t("price.typed", { name: item.name }), "");
      if (!price) return;
      S.lines.push({ code, quantity: qty || "1", discount: null, embedded: false, sku: item.sku, name: item.name, unit: item.unit, price });
      S.selected = S.lines.length - 1;
      S.lastItem = item;
      renderItem({ ...item, price });
      return;
    }
    if (item.price === null) {
      message(t("scan.no_price", { name: item.name }));
      return;
    }
    S.lastItem = item;
    const embedded = item.embedded !== null && item.embedded !== undefined;
    if (embedded) {
      S.lines.push({ code, quantity: null, discount: null, embedded, sku: item.sku, name: item.name, unit: item.unit });
      S.selected = S.lines.length - 1;
    } else if (item.unit !== "each" && !qty) {
      // Loose goods without a label: ask for the weight.
      const weight = await askQuantity(t("qty.weight", { name: item.name }), "");
      if (!weight) return;
      S.lines.push({ code, quantity: weight, discount: null, embedded, sku: item.sku, name: item.name, unit: item.unit });
      S.selected = S.lines.length - 1;
    } else {
      const same = S.lines.findIndex((l) => l.sku === item.sku && !l.embedded && !l.discount && item.unit === "each");
      if (same >= 0) {
        S.lines[same].quantity = fromMilli(milli(S.lines[same].quantity) + milli(qty || "1"));
        S.selected = same;
      } else {
        S.lines.push({ code, quantity: qty || "1", discount: null, embedded, sku: item.sku, name: item.name, unit: item.unit });
        S.selected = S.lines.length - 1;
      }
    }
    renderItem(item);
    refreshStock(item.sku);
  }

  async function refreshStock(sku) {
    try {
      const r = await api("GET", "/v1/stock/" + encodeURIComponent(sku));
      if (r.status === 200 && S.lastItem && S.lastItem.sku === sku) {
        S.lastItem.on_hand = r.body.on_hand;
        S.lastItem.reserved = r.body.reserved;
        renderItem(S.lastItem);
      }
    } catch (e) {
      /* the status poll shows the node is down */
    }
  }

  /** On hand, and what HQ reserves of it for web orders and holds, when anything. */
  function stockText(item) {
    const onHand = t("item.on_hand", { qty: quantity(item.on_hand, item.unit) });
    return Number(item.reserved || 0) > 0 ? `${onHand} · ${t("item.reserved", { qty: quantity(item.reserved, item.unit) })}` : onHand;
  }

  function renderItem(item) {
    const box = $("item-info");
    box.replaceChildren();
    if (!item) return;
    box.append(
      el("div", { class: "label", text: t("item.last") }),
      el("div", { class: "name", "data-test": "item-name", text: item.name }),
      el("div", { "data-test": "item-price", text: `${money(item.price)} ${item.unit !== "each" ? t("price_check.per", { unit: t("unit." + item.unit) }) : ""}` }),
      el("div", { "data-test": "stock-on-hand", "data-on-hand": item.on_hand, text: stockText(item) }),
    );
  }

  /** The cart as the node reads it; the approval travels only with writes (and settling). */
  function cartRequest(withApproval) {
    const body = {
      lines: S.lines.map((l) => {
        const line = { code: l.code };
        if (l.quantity !== null) line.quantity = l.quantity;
        if (l.discount) line.discount = l.discount;
        if (l.price) line.price = l.price;
        return line;
      }),
    };
    if (S.discount) body.discount = S.discount;
    if (withApproval && S.approval) body.approval = S.approval;
    return body;
  }

  /** Prices the cart at the node and draws it. A refused line is taken back out. */
  async function reprice() {
    if (!S.lines.length) {
      S.view = null;
      render();
      return true;
    }
    // A discount above the cashier's limit is approved now, while the cashier is giving it.
    const r = await withApproval((approval) => {
      if (approval) S.approval = approval;
      return api("POST", "/v1/carts/price", cartRequest(true));
    });
    if (r === null) {
      message(t("error.network"));
      return false;
    }
    if (r.cancelled) {
      // Not approved: the change is taken back and the cart stays as it was, with the approval
      // it already had.
      undoLast();
      return reprice();
    }
    if (r.status !== 200) {
      // A quantity or typed price the node refuses is asked again, with what was typed and why:
      // what the cashier typed is never silently dropped.
      const typed = /^lines\[(\d+)\]\.(quantity|price)$/.exec((r.body && r.body.field) || "");
      const line = typed && S.lines[Number(typed[1])];
      if (line && line[typed[2]] !== null) {
        const title = typed[2] === "price" ? t("price.typed", { name: line.name }) : `${t("qty.title")}: ${line.name}`;
        const again = await askQuantity(title, line[typed[2]], errorText(r));
        if (again) {
          line[typed[2]] = again;
          return reprice();
        }
      }
      message(t("error.generic", { message: errorText(r) }));
      // Take back what was refused: the last change if there is one, else the line at fault.
      const m = /^lines\[(\d+)\]/.exec((r.body && r.body.field) || "");
      if (undo) undoLast();
      else if (m) S.lines.splice(Number(m[1]), 1);
      else if (((r.body && r.body.field) || "").startsWith("discount")) S.discount = null;
      else S.lines.pop();
      S.selected = Math.min(S.selected, S.lines.length - 1);
      if (S.lines.length) return reprice();
      S.view = null;
      render();
      return false;
    }
    S.view = r.body;
    undo = null;
    render();
    return true;
  }

  let undo = null;
  function remember() {
    undo = JSON.stringify({ lines: S.lines, discount: S.discount, approval: S.approval });
  }
  function undoLast() {
    if (undo) {
      const u = JSON.parse(undo);
      S.lines = u.lines;
      S.discount = u.discount;
      S.approval = u.approval;
      undo = null;
    } else {
      S.lines.pop();
    }
  }

  function render() {
    const list = $("cart-lines");
    const view = S.view;
    const rows = [];
    if (view) {
      view.lines.forEach((line, i) => {
        const local = S.lines[i] || {};
        const discount = line.discount !== "0" && !/^0(\.0+)?$/.test(line.discount);
        rows.push(
          el(
            "li",
            {
              class: "line" + (i === S.selected ? " selected" : ""),
              "data-test": "cart-line",
              "data-index": i,
              "data-sku": line.sku,
              "data-qty": line.quantity,
              "data-gross": line.gross,
              onclick: () => select(i),
            },
            el("span", { class: "name", "data-test": "line-name", text: line.name }),
            el("span", { class: "qty", "data-test": "line-qty", text: `${quantity(line.quantity, line.unit)} × ${money(line.unit_price)}` }),
            discount ? el("span", { class: "disc", "data-test": "line-discount", text: "−" + money(line.discount) }) : null,
            local.embedded ? el("span", { class: "tag", text: "⚖" }) : null,
            el("span", { class: "gross", "data-test": "line-total", text: money(line.gross) }),
          ),
        );
      });
    }
    list.replaceChildren(...rows);
    $("cart-empty").hidden = rows.length > 0;
    const sel = list.querySelector(".selected") || list.lastElementChild;
    if (sel && sel.scrollIntoView) sel.scrollIntoView({ block: "nearest" });
    $("cart-subtotal").textContent = view ? money(view.subtotal) : "";
    $("cart-discount").textContent = view ? money(view.discount_total) : "";
    $("cart-tax").textContent = view ? money(view.tax_total) : "";
    $("cart-total").textContent = money(view ? view.total : "0");
    $("cart-count").textContent = view ? t("sale.items", { count: itemCount(view) }) : "";
    $("cart-count").dataset.count = view ? String(itemCount(view)) : "0";
    $("cart-total").dataset.amount = view ? view.total : "0";
    $("btn-pay").disabled = !view;
    publish(view ? { state: "cart", cart: view } : { state: "idle" });
  }

  /** Items in the cart as a cashier counts them: pieces, and each weighed line as one. */
  function itemCount(view) {
    return view.lines.reduce((n, line) => n + (line.unit === "each" && /^\d+(\.0*)?$/.test(line.quantity) ? parseInt(line.quantity, 10) : 1), 0);
  }

  function select(i) {
    if (i < 0 || i >= S.lines.length) return;
    S.selected = i;
    document.querySelectorAll("#cart-lines .line").forEach((node, j) => node.classList.toggle("selected", j === i));
  }

  // ---------------------------------------------------------------------------------------
  // Customer display: the latest state is posted; posts never overtake each other.

  let displayBusy = false;
  let displayNext = null;
  function publish(payload) {
    displayNext = { ...payload, lang: K.lang, at: Date.now() };
    if (!displayBusy) flushDisplay();
  }
  async function flushDisplay() {
    displayBusy = true;
    while (displayNext) {
      const body = displayNext;
      displayNext = null;
      try {
        await fetch("/v1/display/" + encodeURIComponent(K.terminal), {
          method: "POST",
          headers: { "Content-Type": "application/json", ...(K.session ? { Authorization: "Bearer " + K.session } : {}) },
          body: JSON.stringify(body),
        });
      } catch (e) {
        /* the display is a courtesy; the sale goes on */
      }
    }
    displayBusy = false;
  }

  // ---------------------------------------------------------------------------------------
  // Small dialogs that answer a promise: quantity, approval

  let qtyResolve = null;
  /** Asks for a quantity or weight; answers it as the node reads it ("1,234" is "1.234"), or null. */
  function askQuantity(title, value, error) {
    $("qty-title").textContent = title;
    $("qty-input").value = value ? quantityText(value) : "";
    openDialog("dlg-qty");
    $("qty-error").textContent = error || "";
    return new Promise((resolve) => (qtyResolve = resolve));
  }
  /** A quantity string as the cashier types it in this locale. */
  function quantityText(value) {
    return String(value).replace(".", decimalSeparator());
  }
  function qtyDone(typed) {
    let value = null;
    if (typed !== null) {
      // What the cashier typed is never dropped: a quantity that is not one is said so, and the
      // dialog stays open with it.
      value = typedDecimal(typed);
      if (value === null || milli(value) <= 0) {
        $("qty-error").textContent = t("qty.invalid", { value: typed });
        return;
      }
    }
    closeDialog("dlg-qty");
    const r = qtyResolve;
    qtyResolve = null;
    if (r) r(value);
  }

  /** Whether an answer asks for a supervisor, or refuses the one given (a wrong PIN, a lockout). */
  function approvalAnswer(r) {
    const b = (r && r.body) || {};
    if (r && r.status === 403 && b.code === "approval_required") return "required";
    if (r && r.status >= 400 && String(b.field || "").startsWith("approval")) return "refused";
    return null;
  }

  /**
   * Sends `send(approval)` (first with none). While the node answers that a supervisor must
   * approve, or refuses the approval given, the approval dialog asks (saying why) and the
   * request goes again. The node's answer; `{cancelled: true}` when the cashier takes the
   * action back; null when the node cannot be reached.
   */
  async function withApproval(send) {
    let r;
    let reason = null;
    let approval = null;
    for (;;) {
      try {
        r = await send(approval);
      } catch (e) {
        return null;
      }
      const answer = approvalAnswer(r);
      if (!answer) return r;
      if (answer === "required") reason = r.body;
      approval = await askApproval(reason || r.body, answer === "refused" ? errorText(r) : "");
      if (!approval) return { cancelled: true, status: 0, body: null };
    }
  }

  let approvalResolve = null;
  function askApproval(body, error) {
    $("approval-reason").textContent = t("approval.needed", { message: permissionName(body.permission) || body.message || "" });
    $("approval-pin").value = "";
    const select = $("approval-staff");
    select.replaceChildren(
      ...S.staffList
        .filter((s) => s.role !== "cashier")
        .map((s) => el("option", { value: s.id, "data-test": "approval-staff-" + s.id, text: s.name })),
    );
    openDialog("dlg-approval");
    $("approval-error").textContent = error || "";
    setTimeout(() => $("approval-pin").focus(), 0);
    return new Promise((resolve) => (approvalResolve = resolve));
  }
  function approvalDone(value) {
    closeDialog("dlg-approval");
    const r = approvalResolve;
    approvalResolve = null;
    if (r) r(value);
  }

  // ---------------------------------------------------------------------------------------
  // Sign-in and shifts

  async function loadStaff() {
    let r;
    try {
      r = await api("GET", "/v1/staff");
    } catch (e) {
      fatal(t("error.network"));
      return;
    }
    if (r.status === 404 && r.body && r.body.code === "not_found") {
      // This node predates staff sign-in: sell without a cashier.
      S.signInAvailable = false;
      message(t("signin.unavailable"), "info");
      startSelling();
      return;
    }
    S.staffList = (r.body && r.body.staff) || [];
    showSignIn();
  }

  function showSignIn() {
    S.staff = null;
    K.session = null;
    $("cashier-name").textContent = "";
    $("signin-staff").hidden = false;
    $("signin-pin").hidden = true;
    $("signin-error").textContent = "";
    const list = $("staff-list");
    list.replaceChildren(
      ...S.staffList.map((s) =>
        el("button", { class: "staff", "data-test": "staff-" + s.id, onclick: () => choose(s) }, el("strong", { text: s.name }), el("span", { text: roleName(s.role) })),
      ),
    );
    show("signin");
  }

  function choose(staff) {
    S.chosenStaff = staff;
    $("signin-staff").hidden = true;
    $("signin-pin").hidden = false;
    $("pin-label").textContent = t("signin.pin", { name: staff.name });
    $("pin-input").value = "";
    $("signin-error").textContent = "";
    $("pin-input").focus();
  }

  async function signIn() {
    const pin = $("pin-input").value;
    $("pin-input").value = "";
    let r;
    try {
      r = await api("POST", "/v1/sign-in", { terminal: K.terminal, staff: S.chosenStaff.id, pin });
    } catch (e) {
      $("signin-error").textContent = t("error.network");
      return;
    }
    if (r.status !== 200) {
      $("signin-error").textContent = errorText(r);
      $("signin-error").dataset.code = (r.body && r.body.code) || "";
      return;
    }
    K.session = r.body.session;
    S.staff = r.body.staff;
    S.permissions = r.body.permissions || [];
    S.shift = r.body.shift || null;
    $("cashier-name").textContent = S.staff.name;
    // Roles come only to a signed-in member: the approval dialog offers those who may approve.
    try {
      const staff = await api("GET", "/v1/staff");
      if (staff.status === 200 && staff.body && staff.body.staff) S.staffList = staff.body.staff;
    } catch (e) {
      /* the list from before sign-in still names everyone */
    }
    if (!S.shift) await loadShift();
    if (S.shift) startSelling();
    else showOpenShift();
  }

  async function loadShift() {
    try {
      const r = await api("GET", "/v1/shifts/current?terminal=" + encodeURIComponent(K.terminal));
      S.shift = r.status === 200 ? r.body : null;
    } catch (e) {
      S.shift = null;
    }
  }

  function showOpenShift() {
    $("shift-error").textContent = "";
    show("shift");
    $("float-input").focus();
  }

  async function openShift() {
    const float = typedDecimal($("float-input").value);
    if (float === null) {
      $("shift-error").textContent = t("error.number", { field: t("shift.open.float") });
      return;
    }
    let r;
    try {
      r = await api("POST", "/v1/shifts/open", { terminal: K.terminal, float });
    } catch (e) {
      $("shift-error").textContent = t("error.network");
      return;
    }
    if (r.status !== 201 && r.status !== 200) {
      $("shift-error").textContent = errorText(r);
      return;
    }
    S.shift = r.body;
    startSelling();
  }

  async function signOut() {
    // The next cashier does not inherit a half-paid sale.
    if (S.tenders.some((x) => x.kind === "card" && x.reference)) await giveBackCards();
    try {
      await api("POST", "/v1/sign-out");
    } catch (e) {
      /* signing out locally is enough when the node is away */
    }
    showSignIn();
  }

  function startSelling() {
    show("sell");
    // Card payments still owed to customers are asked for again as soon as someone is signed in.
    if (giveBack.list().length) retryGiveBack();
    renderEntry();
    render();
    if (document.activeElement) document.activeElement.blur();
  }

  // ---------------------------------------------------------------------------------------
  // Quantity, discounts, removing, clearing

  async function changeQuantity() {
    if (S.selected < 0 || !S.lines[S.selected]) {
      // No line chosen: the next scan takes the quantity.
      const q = await askQuantity(t("qty.title"), "");
      if (q) S.pendingQty = q;
      renderEntry();
      return;
    }
    const line = S.lines[S.selected];
    if (line.embedded) return;
    const q = await askQuantity(`${t("qty.title")}: ${line.name}`, line.quantity);
    if (!q) return;
    remember();
    line.quantity = q;
    await reprice();
  }

  let discountTarget = null;
  function openDiscount(target) {
    if (target === "line" && (S.selected < 0 || !S.lines[S.selected])) return;
    discountTarget = target;
    const current = target === "line" ? S.lines[S.selected].discount : S.discount;
    $("discount-title").textContent =
      target === "line" ? t("discount.title.line", { name: S.lines[S.selected].name }) : t("discount.title.cart");
    const kind = current && current.amount ? "amount" : "percent";
    document.querySelector(`input[name=discount-kind][value=${kind}]`).checked = true;
    $("discount-input").value = current ? current.percent || current.amount : "";
    openDialog("dlg-discount");
  }

  async function applyDiscount(remove) {
    const value = typedDecimal($("discount-input").value) || "";
    const kind = document.querySelector("input[name=discount-kind]:checked").value;
    const discount = remove || !value ? null : { [kind]: value };
    closeDialog("dlg-discount");
    remember();
    // An approval covers the cart it was given for: a new discount is approved anew.
    S.approval = null;
    if (discountTarget === "line") S.lines[S.selected].discount = discount;
    else S.discount = discount;
    await reprice();
  }

  async function removeLine() {
    if (S.selected < 0 || !S.lines[S.selected]) return;
    remember();
    S.lines.splice(S.selected, 1);
    S.selected = S.lines.length - 1;
    await reprice();
  }

  /** "Cancel sale": asked first; approved card payments of the sale go back to the card. */
  async function cancelSale() {
    if (!S.lines.length && !S.tenders.length) return;
    const total = S.view ? money(S.view.total) : money("0");
    if (!(await askConfirm(t("sale.cancel_confirm", { count: S.lines.length, total }), t("sale.cancel"), t("btn.keep")))) return;
    await giveBackCards();
    clearSale();
    message(t("sale.cancelled"), "info");
  }

  function clearSale() {
    S.lines = [];
    S.discount = null;
    S.approval = null;
    S.view = null;
    S.selected = -1;
    S.tenders = [];
    S.saleKey = null;
    S.pendingQty = null;
    render();
    renderEntry();
  }

  // ---------------------------------------------------------------------------------------
  // Payment: the node settles the cart against the tenders; the till shows what it answers.

  async function openPay() {
    if (!S.view || !S.lines.length) return;
    // Card payments approved for a payment abandoned before are given back.
    await giveBackCards();
    S.cardSale = null;
    S.saleKey = newKey();
    $("pay-error").textContent = "";
    $("tender-amount").value = "";
    showComplete(false);
    openDialog("dlg-pay");
    await settleNow();
  }

  async function settleNow() {
    let r;
    try {
      r = await api("POST", "/v1/till/settle", { ...cartRequest(true), tenders: S.tenders });
    } catch (e) {
      $("pay-error").textContent = t("error.network");
      return null;
    }
    if (r.status !== 200) {
      $("pay-error").textContent = errorText(r);
      return null;
    }
    S.settle = r.body;
    const s = r.body;
    $("pay-due").textContent = money(S.tenders.length ? s.due : s.cash_due);
    $("pay-due").dataset.amount = S.tenders.length ? s.due : s.cash_due;
    $("pay-tendered").textContent = money(s.tendered);
    $("pay-remaining").textContent = money(S.tenders.length ? s.remaining : s.cash_due);
    $("pay-remaining").dataset.amount = S.tenders.length ? s.remaining : s.cash_due;
    $("pay-tenders").replaceChildren(
      ...S.tenders.map((tender, i) =>
        el("li", { "data-test": "tender-row", "data-kind": tender.kind, "data-amount": tender.amount }, `${t("tender." + tender.kind)} ${money(tender.amount)}`, el("button", { class: "small", "data-test": "tender-remove", onclick: () => removeTender(i), text: "✕" })),
      ),
    );
    if (s.error) $("pay-error").textContent = s.error;
    quickCash(S.tenders.length ? s.remaining : s.cash_due);
    return s;
  }

  /** Shows "Complete sale" when the tenders cover the sale but it is not recorded yet. */
  function showComplete(visible) {
    $("pay-complete").hidden = !visible;
  }

  /** Buttons for the usual notes above what is still open (amounts as strings, no arithmetic). */
  function quickCash(open) {
    const notes = ["5.00", "10.00", "20.00", "50.00", "100.00", "200.00"];
    const openMinor = milli(open);
    const buttons = [el("button", { class: "key", "data-test": "quick-exact", onclick: () => addTender("cash", open), text: t("pay.exact") })];
    for (const note of notes) {
      if (milli(note) > openMinor) {
        buttons.push(el("button", { class: "key", "data-test": "quick-" + note, onclick: () => addTender("cash", note), text: money(note) }));
      }
    }
    $("quick-cash").replaceChildren(...buttons.slice(0, 4));
  }

  async function removeTender(i) {
    const [removed] = S.tenders.splice(i, 1);
    if (removed && removed.kind === "card" && removed.reference) await reverseCard(removed.reference, removed.amount);
    await settleNow();
  }

  async function addTender(kind, fixed, reference) {
    const typed = $("tender-amount").value;
    let amount = fixed || typedDecimal(typed);
    if (!fixed && typed.trim() && amount === null) {
      $("pay-error").textContent = t("error.number", { field: t("pay.amount") });
      return;
    }
    const s = S.settle;
    if (!amount && s) {
      // Nothing typed: the rest (for cash only, what cash would round to).
      amount = S.tenders.length ? s.remaining : kind === "cash" ? s.cash_due : s.cart.total;
    }
    if (!amount || milli(amount) <= 0) return;
    $("tender-amount").value = "";
    S.tenders.push(reference ? { kind, amount, reference } : { kind, amount });
    const settled = await settleNow();
    if (!settled) {
      S.tenders.pop();
      return;
    }
    if (settled.error) {
      const refused = S.tenders.pop();
      if (refused.kind === "card" && refused.reference) await reverseCard(refused.reference, refused.amount);
      await settleNow();
      return;
    }
    if (settled.complete) await completeSale();
  }

  // ---------------------------------------------------------------------------------------
  // Card payments through the till's payment terminal: the node asks the terminal and the
  // tender references the approval. A till without a terminal records the card tender by hand.

  async function payByCard() {
    const s = S.settle;
    let amount = typedDecimal($("tender-amount").value);
    if (!amount && s) amount = S.tenders.length ? s.remaining : s.cart.total;
    if (!amount || milli(amount) <= 0) return;
    if (!S.cardSale) S.cardSale = newKey();
    $("pay-error").textContent = "";
    const card = await chargeCard(amount, S.cardSale, "pay-card-wait", "tender-card", "pay-error");
    if (!card) return;
    $("tender-amount").value = "";
    if (card.manual) return addTender("card", amount);
    if (card.partial) message(t("card.partial", { amount: money(card.authorised) }), "info");
    await addTender("card", card.authorised, card.poi_transaction_id);
  }

  /**
   * Takes `amount` by card for `sale` (a key naming what is paid), after the cashier confirms:
   * through the till's terminal, or `{manual: true}` on a till without one (the card is run
   * by hand). The approved payment (held until a sale or a gift card takes it, so even a reload
   * does not lose what is owed), or null with the reason in `errorBox`.
   */
  async function chargeCard(amount, sale, wait, button, errorBox) {
    // Money leaves the customer's account: the cashier says so before the terminal asks.
    if (!(await askConfirm(t("card.confirm", { amount: money(amount) }), t("card.charge")))) return null;
    const body = { terminal: K.terminal, sale, amount };
    const key = newKey();
    // A lost answer or an outcome still unknown: the same key asks for the same payment.
    const r = await askTerminal(wait, button, () => api("POST", "/v1/card-payments", body, key));
    if (r && r.status === 409 && r.body && r.body.code === "no_payment_terminal") return { manual: true };
    if (!r) {
      $(errorBox).textContent = t("error.network");
      return null;
    }
    if (r.status === 402) {
      $(errorBox).textContent = t("card.declined", { reason: cardReason(r.body) });
      return null;
    }
    if (r.status !== 201) {
      $(errorBox).textContent = errorText(r);
      return null;
    }
    holdCard(r.body.poi_transaction_id, r.body.authorised);
    return r.body;
  }

  /**
   * Asks the till's terminal through the node while `wait` tells the cashier to follow the
   * terminal and `button` is disabled. `send` makes one request, the same one each time: a lost
   * answer or an outcome the node does not know yet is asked again. The answer, or null.
   */
  async function askTerminal(wait, button, send) {
    $(wait).hidden = false;
    $(button).disabled = true;
    let r = null;
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          r = await send();
        } catch (e) {
          r = null;
        }
        if (r && !(r.status === 409 && r.body && r.body.code === "card_request_unresolved")) break;
        await new Promise((done) => setTimeout(done, 1000));
      }
    } finally {
      $(wait).hidden = true;
      $(button).disabled = false;
    }
    return r;
  }

  // Approved card payments no sale has taken yet, and those whose reversal the terminal has not
  // confirmed: kept in this browser per terminal, so neither a closed dialog nor a reload loses
  // the money a customer is owed. The header shows what is still to give back, with a retry.
  const cardStore = (name) => ({
    key: () => `kassa.${name}.${K.terminal}`,
    list() {
      try {
        return JSON.parse(localStorage.getItem(this.key()) || "[]");
      } catch (e) {
        return [];
      }
    },
    save(list) {
      localStorage.setItem(this.key(), JSON.stringify(list));
    },
  });
  const heldCards = cardStore("cards");
  const giveBack = cardStore("giveback");

  function holdCard(reference, amount) {
    heldCards.save([...heldCards.list().filter((c) => c.reference !== reference), { reference, amount }]);
  }
  function releaseCards() {
    heldCards.save([]);
  }

  /**
   * Gives an approved card payment back through the terminal. True once the terminal has
   * confirmed it (or the payment turns out to have paid a sale); otherwise it stays on the
   * list of payments to give back, which the header shows with a retry.
   */
  async function reverseCard(reference, amount) {
    let r = null;
    try {
      r = await api("POST", "/v1/card-payments/" + encodeURIComponent(reference) + "/reverse", { terminal: K.terminal });
    } catch (e) {
      r = null;
    }
    const done = !!r && (r.status === 201 || (r.status === 409 && r.body && r.body.code === "card_payment_used"));
    heldCards.save(heldCards.list().filter((c) => c.reference !== reference));
    const rest = giveBack.list().filter((c) => c.reference !== reference);
    if (!done) {
      rest.push({ reference, amount });
      message(t("card.reverse_failed", { amount: money(amount), reason: r ? errorText(r) : t("error.network") }));
    }
    giveBack.save(rest);
    renderGiveBack();
    return done;
  }

  /** Gives back every approved card payment of the open sale (the sale is abandoned). */
  async function giveBackCards() {
    let all = true;
    for (const tender of S.tenders) {
      if (tender.kind === "card" && tender.reference) all = (await reverseCard(tender.reference, tender.amount)) && all;
    }
    S.tenders = [];
    return all;
  }

  function renderGiveBack() {
    const list = giveBack.list();
    const button = $("give-back");
    button.hidden = !list.length;
    button.dataset.count = String(list.length);
    button.textContent = list.length ? t("card.give_back", { amounts: list.map((c) => money(c.amount)).join(", ") }) : "";
  }

  async function retryGiveBack() {
    for (const c of giveBack.list()) await reverseCard(c.reference, c.amount);
    if (!giveBack.list().length) message(t("card.given_back"), "info");
  }

  async function pollCardQueue() {
    let r;
    try {
      r = await api("GET", "/v1/card-payments/pending?terminal=" + encodeURIComponent(K.terminal));
    } catch (e) {
      return;
    }
    const q = $("card-queue");
    const count = r.status === 200 ? r.body.count : 0;
    q.hidden = !count;
    q.dataset.count = String(count);
    q.textContent = count ? t("card.pending", { count, minutes: Math.floor((r.body.oldest_age_secs || 0) / 60) }) : "";
  }

  async function completeSale() {
    $("pay-error").textContent = "";
    const r = await withApproval(async (approval) => {
      if (approval) {
        // Another approval is another request: a new key, so it is not taken for a retry.
        S.approval = approval;
        S.saleKey = newKey();
      }
      const body = { terminal: K.terminal, ...cartRequest(true), tenders: S.tenders };
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          return await api("POST", "/v1/sales", body, S.saleKey);
        } catch (e) {
          /* Lost answer: the same key makes the retry the same sale. */
        }
      }
      throw new Error("unreachable");
    });
    if (!r) {
      $("pay-error").textContent = t("error.network");
      showComplete(true);
      return;
    }
    if (r.cancelled) {
      // Not approved: the cashier stays at payment, can complete again or take the payment back.
      S.approval = null;
      S.saleKey = newKey();
      $("pay-error").textContent = t("approval.not_given");
      showComplete(true);
      return;
    }
    if (r.status === 409 && r.body && r.body.code === "no_open_shift") {
      closeDialog("dlg-pay");
      showOpenShift();
      return;
    }
    if (r.status !== 200 && r.status !== 201) {
      const at = /^tenders\[(\d+)\]/.exec((r.body && r.body.field) || "");
      const refused = at ? S.tenders[Number(at[1])] : null;
      if (refused && refused.kind !== "card") {
        // A tender the node refused (a gift card that does not cover it) is not paid: it comes
        // off, the rest stays due, and what the card does cover is offered.
        S.tenders.splice(Number(at[1]), 1);
        await settleNow();
        $("pay-error").textContent = errorText(r);
        if (refused.kind === "gift-card" || refused.kind === "store-credit") await offerStoredValue(refused);
        return;
      }
      $("pay-error").textContent = errorText(r);
      showComplete(true);
      return;
    }
    showComplete(false);
    closeDialog("dlg-pay");
    const sale = r.body;
    const cart = sale.cart || {};
    releaseCards();
    clearSale();
    publish({ state: "paid", total: cart.due || cart.total, change: cart.change || "0", currency: cart.currency });
    await showReceipt(sale.receipt, sale);
    pollStatus();
  }

  /**
   * The receipt dialog: the receipt as the printer prints it (the node's preview, with the card
   * details and the legal fields), or drawn from the sale's answer when the preview cannot be
   * had. Print (the first time the original, then a copy) or no receipt.
   */
  async function showReceipt(number, fallback) {
    let receipt = fallback;
    try {
      const r = await api("GET", "/v1/receipts/" + encodeURIComponent(number) + "/preview");
      if (r.status === 200) receipt = { ...fallback, html: r.body.html };
    } catch (e) {
      /* the sale's own answer is the receipt */
    }
    $("receipt-error").textContent = "";
    const cart = receipt.cart || {};
    $("receipt-title").textContent = t("receipt.title", { number });
    $("receipt-title").dataset.number = number;
    $("receipt-change").textContent = money(cart.change || "0");
    $("receipt-change").dataset.amount = cart.change || "0";
    const preview = $("receipt-preview");
    preview.replaceChildren();
    if (receipt.html) {
      // The printer's own HTML: every text in it is escaped by the node.
      const paper = el("div", { class: "paper-html", "data-test": "receipt-html" });
      paper.innerHTML = receipt.html;
      preview.append(paper);
    } else if (receipt.text) {
      preview.append(el("pre", { "data-test": "receipt-text", text: receipt.text }));
    } else {
      preview.append(renderReceipt(number, receipt));
    }
    openDialog("dlg-receipt");
  }

  function renderReceipt(number, receipt) {
    const cart = receipt.cart || { lines: [] };
    const c = K.config || {};
    const rows = [
      el("div", { class: "center strong", text: c.name || "" }),
      el("div", { class: "center", text: c.address || "" }),
      el("div", { class: "center", text: `${number} · ${dateTime(uuidTime(receipt.event_id))}` }),
    ];
    if (receipt.cashier) rows.push(el("div", { class: "center", text: t("receipt.cashier", { name: receipt.cashier }) }));
    rows.push(el("hr"));
    for (const line of cart.lines) {
      rows.push(
        el("div", { class: "rline", "data-test": "receipt-line" }, el("span", { text: line.name }), el("span", { text: money(line.gross, cart.currency) })),
        el("div", { class: "rsub", text: `${quantity(line.quantity, line.unit)} × ${money(line.unit_price, cart.currency)}` }),
      );
      if (!/^0(\.0+)?$/.test(line.discount)) rows.push(el("div", { class: "rsub", text: `${t("cart.discount")} −${money(line.discount, cart.currency)}` }));
    }
    rows.push(el("hr"));
    const pair = (label, amount, test) => el("div", { class: "rline", "data-test": test }, el("span", { text: label }), el("span", { text: money(amount, cart.currency) }));
    rows.push(pair(t("receipt.total"), cart.total, "receipt-total"));
    if (cart.cash_rounding && !/^-?0(\.0+)?$/.test(cart.cash_rounding)) rows.push(pair(t("pay.cash_rounding"), cart.cash_rounding));
    for (const tax of cart.taxes || []) rows.push(pair(`${t("receipt.tax")} ${tax.rate} %`, tax.amount));
    // A gift card's number is all anyone needs to spend it: only its masked form is shown.
    for (const tender of receipt.tenders || []) rows.push(pair(`${t("tender." + tender.kind)} ${tender.masked_reference || ""}`.trim(), tender.amount, "receipt-tender"));
    if (cart.change) rows.push(pair(t("receipt.change"), cart.change));
    return el("div", { class: "paper" }, ...rows);
  }

  async function printReceipt() {
    const number = $("receipt-title").dataset.number;
    if (!number) return;
    $("receipt-error").textContent = "";
    $("receipt-print").disabled = true;
    let r = null;
    try {
      r = await api("POST", "/v1/receipts/" + encodeURIComponent(number) + "/print");
    } catch (e) {
      r = null;
    }
    $("receipt-print").disabled = false;
    if (!r || r.status !== 200) {
      $("receipt-error").textContent = errorText(r);
      return;
    }
    message(t(r.body.copy ? "receipt.copy_printed" : "receipt.printed"), "info");
  }

  /** Opens the drawer without a sale (a supervisor's permission); the node records it. */
  async function noSale() {
    const r = await writeWithApproval("/v1/shifts/no-sale", { terminal: K.terminal });
    if (!r) return;
    if (r.status !== 200 && r.status !== 201) {
      $("shift-dialog-error").textContent = errorText(r);
      return;
    }
    $("shift-report").textContent = t(r.body && r.body.drawer === "opened" ? "shift.no_sale.done" : "shift.no_sale.no_printer");
  }

  /** The fiscal register's own receipts (RKSV): a null receipt, or the basket as training. */
  async function fiscalReceipt(path, body, done) {
    const r = await writeWithApproval(path, { terminal: K.terminal, ...body });
    if (!r) return;
    if (r.status !== 201) {
      $("shift-dialog-error").textContent = errorText(r);
      return;
    }
    $("shift-dialog-error").textContent = "";
    $("shift-report").textContent = done(r.body) + (r.body.qr ? "\n" + r.body.qr : "");
  }

  function nullReceipt() {
    return fiscalReceipt("/v1/fiscal/null-receipt", {}, (b) => t("fiscal.null.done", { receipt: b.receipt }));
  }

  function trainingReceipt() {
    if (!S.lines.length) {
      $("shift-dialog-error").textContent = t("fiscal.training.empty");
      return;
    }
    return fiscalReceipt("/v1/fiscal/training-receipt", cartRequest(false), (b) => {
      clearSale();
      return t("fiscal.training.done", { receipt: b.receipt, total: money(b.cart.total) });
    });
  }

  function newSale() {
    closeDialog("dlg-receipt");
    publish({ state: "idle" });
  }

  // ---------------------------------------------------------------------------------------
  // Price check, search, quick keys

  async function priceCheck(code) {
    const box = $("price-check-result");
    box.replaceChildren();
    if (!code) return;
    let r;
    try {
      r = await api("GET", "/v1/items/" + encodeURIComponent(code));
    } catch (e) {
      box.textContent = t("error.network");
      return;
    }
    if (r.status !== 200) {
      box.textContent = r.status === 404 ? t("scan.unknown", { code }) : errorText(r);
      return;
    }
    const item = r.body;
    // DOM append would print a null as "null": only what exists is added.
    const parts = [
      el("div", { class: "name", "data-test": "price-check-name", text: item.name }),
      el("div", { class: "price", "data-test": "price-check-price", "data-amount": item.price, text: `${money(item.price)} ${item.unit !== "each" ? t("price_check.per", { unit: t("unit." + item.unit) }) : ""}` }),
      item.embedded && item.embedded.price ? el("div", { text: money(item.embedded.price) }) : null,
      item.embedded && item.embedded.weight_kg ? el("div", { text: quantity(item.embedded.weight_kg, "kg") }) : null,
      el("div", { "data-test": "price-check-stock", text: stockText(item) }),
      el("div", { class: "sku", text: item.sku }),
    ];
    box.append(...parts.filter(Boolean));
  }

  let searchTimer = null;
  function onSearchInput() {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, 120);
  }

  let searchSeq = 0;
  async function runSearch() {
    const q = $("search-input").value.trim();
    const box = $("search-results");
    const seq = ++searchSeq;
    if (!q) {
      box.replaceChildren();
      return;
    }
    let r;
    try {
      r = await api("GET", "/v1/till/search?q=" + encodeURIComponent(q));
    } catch (e) {
      return;
    }
    if (seq !== searchSeq) return;
    const items = (r.body && r.body.items) || [];
    box.replaceChildren(
      ...(items.length
        ? items.map((item) =>
            el("button", { class: "result", "data-test": "search-result", "data-sku": item.sku, onclick: () => pickSearch(item) }, el("span", { text: item.name }), el("span", { class: "sku", text: item.sku }), el("span", { text: money(item.price) })),
          )
        : [el("div", { class: "none", text: t("search.none") })]),
    );
  }

  function pickSearch(item) {
    $("search-input").value = "";
    $("search-results").replaceChildren();
    $("search-input").blur();
    enqueue(item.sku, S.pendingQty, performance.now());
    S.pendingQty = null;
    renderEntry();
  }

  // Quick keys: pages (tabs) of keys as the store's reference data lays them out.
  let quickPages = [];
  let quickPage = 0;

  async function loadQuickKeys() {
    try {
      const r = await api("GET", "/v1/till/quick-keys");
      quickPages = (r.status === 200 && r.body && r.body.pages) || [];
    } catch (e) {
      quickPages = []; /* no quick keys when the node is away */
    }
    quickPage = Math.min(quickPage, Math.max(0, quickPages.length - 1));
    renderQuickKeys();
  }

  function renderQuickKeys() {
    const tabs = quickPages.length > 1 || (quickPages[0] && quickPages[0].label);
    $("quick-pages").hidden = !tabs;
    $("quick-pages").replaceChildren(
      ...quickPages.map((page, i) =>
        el("button", { class: "quick-page" + (i === quickPage ? " active" : ""), "data-test": "quick-page", "data-index": i, onclick: () => { quickPage = i; renderQuickKeys(); }, text: page.label || t("quick.plu") }),
      ),
    );
    const page = quickPages[quickPage] || { keys: [] };
    $("quick-keys").replaceChildren(
      ...page.keys.map((k) => {
        const key = el("button", { class: "quick", "data-test": "quick-key", "data-code": k.code, "data-sku": k.sku, "data-position": k.position, onclick: () => { enqueue(k.code, S.pendingQty, performance.now()); S.pendingQty = null; renderEntry(); } }, el("span", { class: "name", text: k.label || k.name }), el("span", { class: "price", text: money(k.price) }));
        if (k.colour) {
          // Dark keys get light text.
          const [r, g, b] = [1, 3, 5].map((i) => parseInt(k.colour.slice(i, i + 2), 16));
          key.style.background = k.colour;
          key.style.color = 0.299 * r + 0.587 * g + 0.114 * b < 140 ? "#fff" : "#111827";
          key.classList.add("coloured");
        }
        return key;
      }),
    );
  }

  // ---------------------------------------------------------------------------------------
  // Returns and voids

  function returnMode() {
    return document.querySelector("input[name=return-mode]:checked").value;
  }

  // ---------------------------------------------------------------------------------------
  // Gift cards and store credit: the number typed or scanned, the balance from the node (HQ's
  // figure when online), a tender of what it covers, issue and top-up. The node decides; the
  // till only compares two amounts to offer the smaller.

  let sv = { mode: "manage", kind: "gift-card", balance: null };

  function openStoredValue(mode, kind) {
    sv = { mode, kind: kind || "gift-card", balance: null };
    $("sv-title").textContent = t(mode === "tender" ? "tender." + sv.kind : "sv.title");
    for (const id of ["sv-number", "sv-amount"]) $(id).value = "";
    $("sv-balance").replaceChildren();
    $("sv-error").textContent = "";
    $("sv-result").textContent = "";
    $("sv-manage").hidden = mode === "tender";
    $("sv-use").hidden = mode !== "tender";
    openDialog("dlg-stored-value");
  }

  async function checkBalance() {
    const number = $("sv-number").value.trim();
    sv.balance = null;
    $("sv-balance").replaceChildren();
    $("sv-error").textContent = "";
    if (!number) return null;
    let r;
    try {
      r = await api("GET", "/v1/stored-value/" + encodeURIComponent(number));
    } catch (e) {
      $("sv-error").textContent = t("error.network");
      return null;
    }
    if (r.status !== 200) {
      $("sv-error").textContent = errorText(r);
      return null;
    }
    const b = r.body;
    sv.balance = b;
    const unknown = b.status === "unknown";
    $("sv-balance").replaceChildren(
      el("div", { "data-test": "sv-balance-amount", "data-amount": b.balance, "data-status": b.status, text: unknown ? t(b.online ? "sv.unknown" : "sv.unknown_offline") : t("sv.balance", { amount: money(b.balance) }) }),
      el("div", { "data-test": "sv-balance-source", "data-source": b.source, text: b.source === "hq" ? t("sv.online") : b.source === "node" ? t("sv.node") : t("sv.offline", { cap: money(b.offline_headroom) }) }),
    );
    return b;
  }

  /**
   * What a gift card or store credit may pay now: its balance when HQ answers (nothing for a card
   * HQ does not know); offline, what is left under the store's offline cap.
   */
  function covers(b) {
    if (!b) return "0";
    if (b.online) return b.status === "unknown" ? "0" : b.balance;
    return b.offline_headroom;
  }

  /** After the node refused `refused`, offers what the card covers; the rest stays due. */
  async function offerStoredValue(refused) {
    let b = null;
    try {
      const r = await api("GET", "/v1/stored-value/" + encodeURIComponent(refused.reference));
      b = r.status === 200 ? r.body : null;
    } catch (e) {
      b = null;
    }
    const can = covers(b);
    if (milli(can) <= 0 || milli(can) >= milli(refused.amount)) return;
    const error = $("pay-error").textContent;
    if (await askConfirm(t("sv.offer", { error, amount: money(can) }), t("sv.use_amount", { amount: money(can) }))) {
      await addTender(refused.kind, can, refused.reference);
    }
  }

  async function useStoredValue() {
    const b = await checkBalance();
    if (!b || !S.settle) return;
    const s = S.settle;
    const remaining = S.tenders.length ? s.remaining : s.cart.total;
    let amount = typedDecimal($("sv-amount").value);
    if (!amount) {
      // As much as the card covers, at most what is still due.
      const can = covers(b);
      amount = milli(can) < milli(remaining) ? can : remaining;
    }
    if (milli(amount) <= 0) {
      $("sv-error").textContent = b.online && b.status === "unknown" ? t("sv.unknown") : t("sv.empty");
      return;
    }
    closeDialog("dlg-stored-value");
    await addTender(sv.kind, amount, b.number);
  }

  async function loadStoredValue(issue) {
    const number = $("sv-number").value.trim();
    const amount = typedDecimal($("sv-amount").value);
    $("sv-error").textContent = "";
    $("sv-result").textContent = "";
    if (!number || !amount) {
      $("sv-error").textContent = t("sv.need");
      return;
    }
    const tender = { kind: $("sv-pay").value, amount };
    if (tender.kind === "card") {
      // Paid by card through the terminal like a sale; a card not taken is given back.
      const card = await chargeCard(amount, newKey(), "sv-card-wait", "sv-issue", "sv-error");
      if (!card) return;
      if (!card.manual) {
        if (milli(card.authorised) !== milli(amount)) {
          await reverseCard(card.poi_transaction_id, card.authorised);
          $("sv-error").textContent = t("sv.card_partial", { amount: money(card.authorised) });
          return;
        }
        tender.reference = card.poi_transaction_id;
      }
    }
    const body = { terminal: K.terminal, amount, tenders: [tender] };
    if (issue) body.number = number;
    const path = issue ? "/v1/gift-cards" : "/v1/gift-cards/" + encodeURIComponent(number) + "/top-up";
    const r = await writeWithApproval(path, body);
    if (!r || r.status !== 201) {
      if (tender.reference) await reverseCard(tender.reference, amount);
      if (r) $("sv-error").textContent = errorText(r);
      return;
    }
    if (tender.reference) heldCards.save(heldCards.list().filter((c) => c.reference !== tender.reference));
    $("sv-amount").value = "";
    await checkBalance();
    $("sv-result").textContent = t(issue ? "sv.issued" : "sv.topped_up", { number: r.body.number, amount: money(r.body.amount) });
    $("sv-result").dataset.number = r.body.number;
    pollStatus();
  }

  function openReturn() {
    S.cardRefund = null;
    returnState("open");
    $("return-card-retry").hidden = true;
    $("return-card-cash").hidden = true;
    $("return-card-result").textContent = "";
    delete $("return-card-result").dataset.amount;
    $("return-error").textContent = "";
    $("return-result").textContent = "";
    delete $("return-result").dataset.refund;
    delete $("return-result").dataset.credit;
    $("return-lines").replaceChildren();
    $("return-receipt").value = "";
    $("return-code").value = "";
    $("return-reason").value = "";
    openDialog("dlg-return");
    syncReturnMode();
  }

  /**
   * Where the return dialog is: `open` (being filled in), `busy` (sent, no answer yet) or `done`
   * (recorded: nothing more can be sent from it; "New return" starts again from scratch).
   */
  function returnState(state) {
    $("dlg-return").dataset.state = state;
    $("return-submit").disabled = state !== "open";
    $("return-submit").hidden = state === "done";
    $("return-new").hidden = state !== "done";
    $("return-load").disabled = state === "done";
    document.querySelectorAll("#dlg-return input, #dlg-return select").forEach((i) => (i.disabled = state === "done"));
  }

  function syncReturnMode() {
    const receipt = returnMode() === "receipt";
    $("return-with").hidden = !receipt;
    $("return-without").hidden = receipt;
    $("dlg-return").dataset.scanTarget = receipt ? "return-receipt" : "return-code";
  }

  let returnReceipt = null;
  let returnSaleCard = null;
  async function loadReturnReceipt() {
    const number = $("return-receipt").value.trim();
    const list = $("return-lines");
    list.replaceChildren();
    $("return-error").textContent = "";
    returnReceipt = null;
    returnSaleCard = null;
    if (!number) return;
    let r;
    try {
      r = await api("GET", "/v1/receipts/" + encodeURIComponent(number));
    } catch (e) {
      $("return-error").textContent = t("error.network");
      return;
    }
    if (r.status !== 200 || !r.body.cart) {
      $("return-error").textContent = errorText(r);
      return;
    }
    returnReceipt = number;
    // A sale paid through a terminal names the card payment in its card tender's reference.
    const card = (r.body.tenders || []).find((x) => x.kind === "card" && x.reference);
    returnSaleCard = card ? card.reference : null;
    r.body.cart.lines.forEach((line, i) => {
      list.append(
        el("li", { "data-test": "return-line", "data-index": i, "data-sku": line.sku }, el("span", { class: "name", text: line.name }), el("span", { text: t("return.sold", { qty: quantity(line.quantity, line.unit) }) }), el("span", { text: money(line.gross) }), el("input", { class: "short", inputmode: "decimal", "data-test": "return-line-qty", value: "0" })),
      );
    });
  }

  async function submitReturn() {
    // One press, one return: a second press while the first is on its way, or after it is
    // recorded, does nothing.
    if ($("dlg-return").dataset.state !== "open") return;
    $("return-error").textContent = "";
    const body = { terminal: K.terminal, refund_tender: $("return-tender").value };
    const reason = $("return-reason").value.trim();
    if (reason) body.reason = reason;
    if (returnMode() === "receipt") {
      if (!returnReceipt) return;
      body.receipt = returnReceipt;
      body.lines = Array.from(document.querySelectorAll("#return-lines li"))
        .map((li) => ({ line: Number(li.dataset.index), quantity: typedDecimal(li.querySelector("input").value) }))
        .filter((l) => l.quantity && milli(l.quantity) > 0);
    } else {
      const code = $("return-code").value.trim();
      if (!code) return;
      body.lines = [{ code, quantity: typedDecimal($("return-qty").value) || "1" }];
    }
    if (body.lines.some((l) => l.quantity === null)) {
      $("return-error").textContent = t("error.number", { field: t("return.quantity") });
      return;
    }
    if (!body.lines.length) {
      $("return-error").textContent = t("return.nothing");
      return;
    }
    returnState("busy");
    const r = await writeWithApproval("/v1/returns", body);
    if (r && r.status === 409 && r.body && r.body.code === "already_returned") {
      // Recorded and paid before (another press, another till): this return is done.
      returnState("done");
      $("return-error").textContent = errorText(r);
      return;
    }
    if (!r || (r.status !== 200 && r.status !== 201)) {
      returnState("open");
      if (r) $("return-error").textContent = errorText(r);
      return;
    }
    returnState("done");
    $("return-result").textContent = t("return.done", { amount: money(r.body.refund), number: r.body.receipt });
    $("return-result").dataset.refund = r.body.refund;
    const credit = (r.body.tenders || []).find((x) => x.kind === "store-credit" && x.reference);
    if (credit) {
      $("return-result").textContent += " " + t("return.credit", { number: credit.reference, amount: money(credit.amount) });
      $("return-result").dataset.credit = credit.reference;
    }
    publish({ state: "refund", total: r.body.refund });
    pollStatus();
    const card = (r.body.tenders || []).find((x) => x.kind === "card");
    if (card) {
      // Until the terminal has given the money back, this return is refunded by asking again,
      // never by recording a second return.
      S.cardRefund = { return: r.body.receipt, amount: card.amount, byReference: !!(body.receipt && returnSaleCard), parts: [] };
      await refundToCard();
    }
  }

  /**
   * Gives a return's card tender back through the till's terminal. With a receipt whose sale was
   * paid through this till's terminal, the node refunds across every card payment of the sale,
   * each by its own reference; what those cannot take (taken at another till, nothing left) goes
   * to the card the customer presents, as does a return without such a sale. A refund the
   * terminal did not finish is asked again (the node never refunds a part twice); every part
   * given back is shown. A till without a terminal refunds by hand.
   */
  async function refundToCard() {
    const c = S.cardRefund;
    if (!c) return;
    $("return-error").textContent = "";
    $("return-card-retry").hidden = true;
    $("return-card-cash").hidden = true;
    const ask = (send) => askTerminal("return-card-wait", "return-card-retry", send);
    const toPresentedCard = () => api("POST", "/v1/card-payments/refund", { terminal: K.terminal, return: c.return });
    let r;
    if (c.byReference) {
      r = await ask(() => api("POST", "/v1/card-payments/refund-return", { terminal: K.terminal, return: c.return }));
      if (r && r.body && Array.isArray(r.body.parts)) c.parts = r.body.parts;
      if (r && r.status === 201 && r.body.status === "partial") {
        // The rest to the card the customer presents.
        c.byReference = false;
        r = await ask(toPresentedCard);
        if (r && r.status === 201) c.parts = [...c.parts, r.body];
      }
    } else {
      r = await ask(toPresentedCard);
      if (r && r.status === 201) c.parts = [...c.parts, r.body];
    }
    if (r && r.status === 409 && r.body && r.body.code === "no_payment_terminal") {
      S.cardRefund = null;
      $("return-error").textContent = t("card.refund_by_hand", { amount: money(c.amount) });
      return;
    }
    if (r && r.status === 201) {
      S.cardRefund = null;
      const amounts = c.parts.map((p) => p.amount);
      $("return-card-result").textContent = t("card.refunded", { amount: amounts.map((a) => money(a)).join(" + ") });
      $("return-card-result").dataset.amount = amounts.join("+");
      $("return-card-result").dataset.parts = String(amounts.length);
      return;
    }
    $("return-error").textContent = !r ? t("error.network") : r.status === 402 ? t("card.refund_refused", { reason: r.body && r.body.condition ? cardReason(r.body) : errorText(r) }) : errorText(r);
    // Asking again helps when the terminal refused, could not be reached, stopped part-way or
    // has not told the outcome yet; any other answer needs the cashier.
    const code = r && r.body && r.body.code;
    $("return-card-retry").hidden = !(!r || r.status === 402 || r.status === 503 || code === "card_request_unresolved" || code === "card_refund_incomplete");
    // What no card takes back the drawer can pay; the node records it, so the ledger never
    // holds more refunded to a card than the cards got.
    $("return-card-cash").hidden = false;
  }

  /** A decimal amount string less others, in the first one's decimals ("3.49" less "1.00"). */
  function amountLess(total, parts) {
    const decimals = (String(total).split(".")[1] || "").length;
    const minor = (x) => Math.round(Number(x) * 10 ** decimals);
    const rest = parts.reduce((left, p) => left - minor(p), minor(total));
    return (rest / 10 ** decimals).toFixed(decimals);
  }

  /**
   * Pays from the drawer what the return's card refund has not given back. The node learns
   * first what the terminal did give back, pays only the rest, and records it once (the key is
   * kept, so a press after a lost answer is the same write).
   */
  async function refundRestInCash() {
    const c = S.cardRefund;
    if (!c) return;
    if (!(await askConfirm(t("card.in_cash_confirm", { amount: money(amountLess(c.amount, c.parts.map((p) => p.amount))) }), t("card.refund_in_cash"), t("btn.cancel")))) return;
    if (!c.cashKey) c.cashKey = newKey();
    $("return-error").textContent = "";
    let r = null;
    try {
      r = await api("POST", "/v1/card-payments/refund-in-cash", { terminal: K.terminal, return: c.return }, c.cashKey);
    } catch (e) {
      r = null;
    }
    if (r && (r.status === 201 || (r.status === 409 && r.body && r.body.code === "nothing_due"))) {
      S.cardRefund = null;
      $("return-card-retry").hidden = true;
      $("return-card-cash").hidden = true;
      const parts = c.parts.map((p) => money(p.amount));
      if (parts.length) $("return-card-result").textContent = t("card.refunded", { amount: parts.join(" + ") }) + " ";
      else $("return-card-result").textContent = "";
      if (r.status === 201) {
        $("return-card-result").textContent += t("card.paid_in_cash", { amount: money(r.body.amount) });
        $("return-card-result").dataset.inCash = r.body.amount;
      } else {
        $("return-error").textContent = errorText(r);
      }
      pollStatus();
      return;
    }
    $("return-error").textContent = errorText(r);
  }

  /**
   * A write that may need a supervisor (see `withApproval`). Null when it was not made: the
   * node could not be reached, the cashier took it back, or a shift must be opened first.
   */
  async function writeWithApproval(path, body) {
    const r = await withApproval((approval) => api("POST", path, approval ? { ...body, approval } : body));
    if (!r) {
      message(t("error.network"));
      return null;
    }
    if (r.cancelled) return null;
    if (r.status === 409 && r.body && r.body.code === "no_open_shift") {
      openDialogs().forEach((d) => closeDialog(d.id));
      showOpenShift();
      return null;
    }
    return r;
  }

  /** The void dialog names the sale it voids: this till's last one, as the node has it. */
  async function openVoid() {
    $("void-error").textContent = "";
    $("void-result").textContent = "";
    $("void-reason").value = "";
    $("void-sale").textContent = "";
    delete $("void-sale").dataset.receipt;
    $("void-confirm").disabled = true;
    openDialog("dlg-void");
    let r = null;
    try {
      r = await api("GET", "/v1/sales/last?terminal=" + encodeURIComponent(K.terminal));
    } catch (e) {
      r = null;
    }
    if (!r || r.status !== 200) {
      $("void-error").textContent = errorText(r);
      return;
    }
    const last = r.body;
    $("void-sale").textContent = t("void.which", { receipt: last.receipt, total: money(last.total), time: dateTime(last.at_ms) });
    $("void-sale").dataset.receipt = last.receipt;
    $("void-confirm").disabled = false;
  }

  async function confirmVoid() {
    const reason = $("void-reason").value.trim();
    const receipt = $("void-sale").dataset.receipt;
    if (!receipt) return;
    $("void-confirm").disabled = true;
    const r = await writeWithApproval("/v1/sales/void-last", { terminal: K.terminal, reason, receipt });
    $("void-confirm").disabled = false;
    if (!r) return;
    if (r.status !== 200 && r.status !== 201) {
      $("void-error").textContent = errorText(r);
      return;
    }
    $("void-result").textContent = t("void.done", { receipt: r.body.voided_receipt, amount: money(r.body.refund) });
    $("void-result").dataset.receipt = r.body.voided_receipt;
    $("void-confirm").disabled = true;
    pollStatus();
  }

  // ---------------------------------------------------------------------------------------
  // Parked sales, kept in this browser per terminal

  function parkedKey() {
    return "kassa.parked." + K.terminal;
  }
  function parkedList() {
    try {
      return JSON.parse(localStorage.getItem(parkedKey()) || "[]");
    } catch (e) {
      return [];
    }
  }

  /** Parks the cart. A parked sale keeps no payment: approved card payments go back first. */
  async function park() {
    if (!S.lines.length) {
      message(t("park.empty"));
      return;
    }
    const cards = S.tenders.filter((x) => x.kind === "card" && x.reference);
    if (cards.length) await giveBackCards();
    const list = parkedList();
    list.push({ id: newKey(), at: Date.now(), lines: S.lines, discount: S.discount, total: S.view ? S.view.total : "0", cashier: S.staff && S.staff.id });
    localStorage.setItem(parkedKey(), JSON.stringify(list));
    clearSale();
    message(cards.length ? t("park.done_cards", { amounts: cards.map((c) => money(c.amount)).join(", ") }) : t("park.done"), "info");
  }

  function openResume() {
    const list = parkedList();
    $("parked-list").replaceChildren(
      ...(list.length
        ? list.map((p) => el("li", {}, el("button", { class: "parked-sale", "data-test": "parked-sale", onclick: () => resume(p.id), text: t("resume.item", { time: dateTime(p.at), count: p.lines.length, total: money(p.total) }) })))
        : [el("li", { text: t("resume.none") })]),
    );
    openDialog("dlg-resume");
  }

  async function resume(id) {
    const list = parkedList();
    const parked = list.find((p) => p.id === id);
    if (!parked) return;
    if (S.lines.length) park();
    localStorage.setItem(parkedKey(), JSON.stringify(parkedList().filter((p) => p.id !== id)));
    closeDialog("dlg-resume");
    S.lines = parked.lines;
    S.discount = parked.discount;
    S.selected = S.lines.length - 1;
    await reprice();
  }

  // ---------------------------------------------------------------------------------------
  // Shift menu: X report, paid in and out, blind close

  const DENOMINATIONS = {
    EUR: ["500.00", "200.00", "100.00", "50.00", "20.00", "10.00", "5.00", "2.00", "1.00", "0.50", "0.20", "0.10", "0.05", "0.02", "0.01"],
    CHF: ["1000.00", "200.00", "100.00", "50.00", "20.00", "10.00", "5.00", "2.00", "1.00", "0.50", "0.20", "0.10", "0.05"],
  };

  function openShiftMenu() {
    $("shift-dialog-error").textContent = "";
    $("shift-report").textContent = "";
    $("shift-count").hidden = true;
    openDialog("dlg-shift");
  }

  async function xReport() {
    // Formatted for everyone, in the till's language (a cashier's leaves out the drawer).
    const r = await api("GET", `/v1/shifts/report?terminal=${encodeURIComponent(K.terminal)}&lang=${encodeURIComponent(K.lang)}`).catch(() => null);
    if (!r || r.status !== 200) {
      $("shift-dialog-error").textContent = errorText(r);
      return;
    }
    $("shift-report").textContent = r.body.text;
  }

  async function cashMovement() {
    const kind = $("cash-kind").value;
    const amount = typedDecimal($("cash-amount").value);
    if (amount === null) {
      $("shift-dialog-error").textContent = t("error.number", { field: t("shift.amount") });
      return;
    }
    const reason = $("cash-reason").value.trim();
    const r = await writeWithApproval("/v1/shifts/cash", { terminal: K.terminal, kind, amount, reason });
    if (!r) return;
    if (r.status !== 200 && r.status !== 201) {
      $("shift-dialog-error").textContent = errorText(r);
      return;
    }
    $("cash-amount").value = "";
    $("cash-reason").value = "";
    $("shift-report").textContent = t("shift.cash.done", { kind: t("shift." + kind.replace("-", "_")), amount: money(amount) });
  }

  function startClose() {
    const currency = (K.config && K.config.currency) || "EUR";
    const denoms = DENOMINATIONS[currency] || DENOMINATIONS.EUR;
    $("count-grid").replaceChildren(
      ...denoms.map((d) => el("label", {}, el("span", { text: money(d) }), el("input", { class: "short", inputmode: "numeric", "data-test": "count-" + d, "data-denomination": d, value: "" }))),
    );
    $("shift-count").hidden = false;
    $("shift-report").textContent = "";
  }

  async function closeShift() {
    const counted = Array.from(document.querySelectorAll("#count-grid input"))
      .map((input) => ({ denomination: input.dataset.denomination, count: parseInt(input.value || "0", 10) }))
      .filter((c) => c.count > 0);
    const r = await writeWithApproval("/v1/shifts/close", { terminal: K.terminal, counted, lang: K.lang });
    if (!r) return;
    if (r.status !== 200 && r.status !== 201) {
      $("shift-dialog-error").textContent = errorText(r);
      return;
    }
    const z = r.body;
    $("shift-count").hidden = true;
    $("shift-report").textContent = z.text || `${t("shift.expected")}: ${money(z.expected)}\n${t("shift.counted")}: ${money(z.counted)}\n${t("shift.over_short")}: ${money(z.over_short)}`;
    $("shift-report").dataset.overShort = z.over_short;
    S.shift = null;
    message(t("shift.closed"), "info");
    // After the Z report is read, closing the dialog signs the cashier out.
    $("shift-dialog-close").addEventListener("click", () => signOut(), { once: true });
  }

  // ---------------------------------------------------------------------------------------
  // Sync status

  async function pollStatus() {
    let r;
    try {
      r = await api("GET", "/v1/status");
    } catch (e) {
      const banner = $("banner-offline");
      banner.hidden = false;
      banner.textContent = t("status.node_down");
      banner.dataset.reason = "node";
      // Nothing is known about syncing while the node is away: the header must not say synced.
      const p = $("pending");
      p.textContent = t("status.node_unreachable");
      p.dataset.state = "node-down";
      p.classList.add("waiting");
      return;
    }
    if (r.status !== 200) return;
    const sync = r.body.sync || {};
    const outbox = sync.outbox || [];
    const mine = outbox.find((o) => o.terminal === K.terminal);
    const pending = mine ? mine.unsynced : outbox.reduce((n, o) => n + (o.unsynced || 0), 0);
    const offline = outbox.some((o) => o.state === "unreachable");
    const rejected = outbox.some((o) => o.state === "rejected");
    const banner = $("banner-offline");
    banner.hidden = !offline;
    banner.textContent = t("status.offline");
    banner.dataset.reason = offline ? "hq" : "";
    $("banner-rejected").hidden = !rejected;
    const fiscal = (r.body.fiscal || []).find((f) => f.terminal === K.terminal);
    $("banner-fiscal").hidden = !(fiscal && fiscal.device_failed);
    $("shift-fiscal").hidden = !(fiscal && fiscal.started && !fiscal.closed_receipt);
    const p = $("pending");
    p.dataset.count = String(pending);
    p.dataset.state = offline ? "offline" : pending > 0 ? "pending" : "synced";
    p.textContent = pending > 0 ? t("status.pending", { count: pending }) : t("status.synced");
    p.classList.toggle("waiting", pending > 0);
  }

  // ---------------------------------------------------------------------------------------
  // Start

  function fatal(text, terminals) {
    $("error-text").textContent = text;
    $("terminal-links").replaceChildren(
      ...(terminals || []).map((id) => el("li", {}, el("a", { href: `/till?terminal=${encodeURIComponent(id)}&lang=${K.lang}`, text: id }))),
    );
    show("error");
  }

  // ---------------------------------------------------------------------------------------
  /** Sends a request; on a network failure or an answer other than `ok`, says why in the
   * element `errorId` and answers null. */
  async function apiOr(errorId, ok, method, path, body) {
    let r;
    try {
      r = await api(method, path, body);
    } catch (e) {
      $(errorId).textContent = t("error.network");
      return null;
    }
    if (r.status !== ok) {
      $(errorId).textContent = errorText(r);
      return null;
    }
    return r;
  }

  // Orders from the web: the store's task list, pick, ready, ship, hand over

  const STEP_OF_TASK = { pick: "picked", ready: "ready", ship: "shipped", "hand-over": "handed-over" };

  async function openOrders() {
    S.order = null;
    $("order-detail").hidden = true;
    $("order-step").hidden = true;
    $("orders-result").textContent = "";
    $("orders-find").value = "";
    openDialog("dlg-orders");
    await listOrders();
    await listParcels();
  }

  async function listOrders() {
    const r = await apiOr("orders-error", 200, "GET", "/v1/web-orders");
    if (!r) return;
    const orders = r.body.orders || [];
    $("orders-list").replaceChildren(
      ...(orders.length
        ? orders.map((o) => {
            const b = el("button", { "data-test": "order-" + o.number, text: `${o.number} · ${o.customer.name} · ${t("orders.task." + o.task)}` });
            b.onclick = () => showOrder(o);
            return el("li", {}, b);
          })
        : [el("li", { "data-test": "orders-none", text: t("orders.none") })]),
    );
  }

  // Parcels of returns through the web shop (in-store sales sent back with their receipt):
  // listed under the orders, received here into stock with one press.
  async function listParcels() {
    const r = await apiOr("orders-error", 200, "GET", "/v1/web-returns");
    if (!r) return;
    const parcels = r.body.returns || [];
    $("parcels-title").hidden = parcels.length === 0;
    $("parcels-list").hidden = parcels.length === 0;
    $("parcels-list").replaceChildren(
      ...parcels.map((p) => {
        const what = p.lines.map((l) => `${l.quantity} × ${l.name}`).join(", ");
        const b = el("button", { "data-test": "parcel-" + p.number, text: t("parcels.receive") });
        b.onclick = () => receiveParcel(p);
        return el("li", {}, el("span", { text: `${p.number} · ${t("parcels.receipt", { receipt: p.receipt })} · ${what}` }), b);
      }),
    );
  }

  async function receiveParcel(p) {
    $("orders-error").textContent = "";
    const r = await apiOr("orders-error", 201, "POST", "/v1/web-returns/" + encodeURIComponent(p.number) + "/receive", { terminal: K.terminal });
    if (!r) return;
    $("orders-result").textContent = t("parcels.received", { number: p.number });
    await listParcels();
  }

  async function findOrder() {
    const asked = $("orders-find").value.trim();
    if (!asked) return;
    $("orders-error").textContent = "";
    const r = await apiOr("orders-error", 200, "GET", "/v1/web-orders/" + encodeURIComponent(asked));
    if (!r) return;
    showOrder(r.body);
  }

  function showOrder(o) {
    S.order = o;
    $("orders-error").textContent = "";
    $("order-detail").hidden = false;
    $("order-title").textContent = `${o.number} · ${o.task ? t("orders.task." + o.task) : o.status}`;
    $("order-customer").textContent = `${o.customer.name} · ${t(o.payment === "paid" ? "orders.paid" : "orders.at-pickup")}`;
    const picking = o.task === "pick";
    // A delivered order can be brought back: at most what was delivered less what came back.
    // (One paid at pickup comes back as a return of the sale that took the payment.)
    const delivered = (o.status === "collected" || o.status === "shipped") && o.payment === "paid";
    const qtyOf = (list, sku) => Number(((list || []).find((x) => x.sku === sku) || {}).quantity || 0);
    const returnable = (l) => (o.picked ? qtyOf(o.picked, l.sku) : Number(l.quantity)) - qtyOf(o.returned, l.sku);
    $("order-lines").replaceChildren(
      ...o.lines.map((l, i) =>
        el(
          "li",
          {},
          el("span", { text: `${l.name} (${l.sku})` }),
          el("span", { text: delivered ? t("orders.returnable", { qty: returnable(l) }) : t("orders.ordered", { qty: l.quantity }) }),
          picking ? el("input", { class: "short", "data-test": "order-pick-qty", "data-line": String(i), value: l.quantity, inputmode: "decimal", "aria-label": l.name }) : null,
          delivered && returnable(l) > 0 ? el("input", { class: "short", "data-test": "order-return-qty", "data-line": String(i), value: "0", inputmode: "decimal", "aria-label": l.name }) : null,
        ),
      ),
    );
    $("order-return").hidden = !(delivered && o.lines.some((l) => returnable(l) > 0));
    $("order-refund-row").hidden = $("order-return").hidden;
    $("order-refund").value = "web";
    $("order-ship").hidden = o.task !== "ship";
    $("order-receipt").hidden = !(o.task === "hand-over" && o.payment === "at-pickup");
    $("order-receipt").value = "";
    $("order-step").hidden = !o.task;
    if (o.task) $("order-step").textContent = t("orders.step." + o.task);
  }

  async function stepOrder() {
    const o = S.order;
    if (!o || !o.task) return;
    const body = { terminal: K.terminal, step: STEP_OF_TASK[o.task] };
    if (o.task === "pick") {
      body.lines = Array.from(document.querySelectorAll("[data-test=order-pick-qty]")).map((input) => ({
        sku: o.lines[Number(input.dataset.line)].sku,
        quantity: input.value.trim().replace(",", ".") || "0",
      }));
    }
    if (o.task === "ship") {
      body.carrier = $("order-carrier").value.trim();
      body.tracking = $("order-tracking").value.trim();
    }
    if (o.task === "hand-over" && o.payment === "at-pickup") {
      body.sale_receipt = $("order-receipt").value.trim();
    }
    $("orders-error").textContent = "";
    const r = await apiOr("orders-error", 201, "POST", "/v1/web-orders/" + encodeURIComponent(o.number) + "/steps", body);
    if (!r) return;
    const now = await api("GET", "/v1/web-orders/" + encodeURIComponent(o.number));
    if (now.status === 200) {
      $("orders-result").textContent = t("orders.done", { number: o.number, status: now.body.status });
      showOrder(now.body);
    }
    await listOrders();
  }

  async function returnOrder() {
    const o = S.order;
    if (!o) return;
    const lines = Array.from(document.querySelectorAll("[data-test=order-return-qty]"))
      .map((input) => ({ sku: o.lines[Number(input.dataset.line)].sku, quantity: input.value.trim().replace(",", ".") || "0" }))
      .filter((l) => Number(l.quantity) !== 0);
    if (!lines.length) {
      $("orders-error").textContent = t("orders.return_none");
      return;
    }
    $("orders-error").textContent = "";
    const refund = $("order-refund").value;
    const r = await apiOr("orders-error", 201, "POST", "/v1/web-orders/" + encodeURIComponent(o.number) + "/steps", { terminal: K.terminal, step: "returned", lines, refund });
    if (!r) return;
    const now = await api("GET", "/v1/web-orders/" + encodeURIComponent(o.number));
    if (now.status === 200) showOrder(now.body);
    const credit = r.body.store_credit;
    $("orders-result").textContent = credit
      ? t("orders.returned_credit", { number: o.number, credit: credit.number, amount: money(credit.amount) })
      : t("orders.returned", { number: o.number });
  }

  // ---------------------------------------------------------------------------------------
  // Holds for a customer: the cart's goods held at HQ for some days, so the web shop cannot
  // promise them; the till still sells them.

  async function openHold() {
    $("hold-error").textContent = "";
    $("hold-result").textContent = "";
    const any = S.lines.length > 0;
    $("hold-new").hidden = !any;
    $("hold-ok").hidden = !any;
    $("hold-lines").textContent = S.lines.map((l) => `${l.quantity || "1"} × ${l.name || l.code}`).join(", ");
    $("hold-customer").value = "";
    $("hold-days").value = "2";
    openDialog("dlg-hold");
    await listHolds();
  }

  async function listHolds() {
    const r = await apiOr("hold-error", 200, "GET", "/v1/holds");
    if (!r) return;
    const holds = r.body.holds || [];
    $("hold-list").replaceChildren(
      ...(holds.length
        ? holds.map((h) => {
            const release = el("button", { "data-test": "hold-release", text: t("hold.release") });
            release.onclick = () => releaseHold(h);
            const what = (h.lines || []).map((l) => `${l.quantity} × ${l.sku}`).join(", ");
            return el("li", { "data-test": "hold-" + h.id }, el("span", { text: `${h.customer} · ${what} · ${t("hold.until", { date: dateTime(h.until_ms) })}` }), release);
          })
        : [el("li", { "data-test": "holds-none", text: t("hold.none") })]),
    );
  }

  async function placeHold() {
    const body = {
      terminal: K.terminal,
      customer: $("hold-customer").value.trim(),
      days: Number($("hold-days").value.trim() || "2"),
      lines: S.lines.map((l) => ({ code: l.sku || l.code, quantity: String(l.quantity || "1") })),
    };
    $("hold-error").textContent = "";
    if (!body.customer) {
      $("hold-error").textContent = t("hold.customer_needed");
      return;
    }
    const r = await apiOr("hold-error", 201, "POST", "/v1/holds", body);
    if (!r) return;
    clearSale();
    $("hold-new").hidden = true;
    $("hold-ok").hidden = true;
    $("hold-result").textContent = t("hold.done", { customer: body.customer, date: dateTime(r.body.expires_ms) });
    await listHolds();
  }

  async function releaseHold(h) {
    $("hold-error").textContent = "";
    const r = await apiOr("hold-error", 201, "POST", "/v1/holds/" + encodeURIComponent(h.id) + "/release", { terminal: K.terminal });
    if (!r) return;
    $("hold-result").textContent = t("hold.released", { customer: h.customer });
    await listHolds();
  }

  function wire() {
    document.addEventListener("keydown", onKeyDown, true);
    document.querySelectorAll("[data-close]").forEach((b) =>
      b.addEventListener("click", () => {
        const dialog = b.closest(".dialog");
        if (dialog.id === "dlg-qty") qtyDone(null);
        else closeDialog(dialog.id);
      }),
    );
    $("pin-ok").onclick = signIn;
    $("pin-back").onclick = showSignIn;
    $("pin-input").addEventListener("keydown", (e) => {
      if (e.key === "Enter") signIn();
    });
    $("open-shift").onclick = openShift;
    $("float-input").addEventListener("keydown", (e) => {
      if (e.key === "Enter") openShift();
    });
    $("btn-signout").onclick = signOut;
    $("btn-lang").onclick = () => {
      const params = new URLSearchParams(location.search);
      params.set("lang", K.lang === "de" ? "en" : "de");
      K.lang = params.get("lang");
      history.replaceState(null, "", "?" + params.toString());
      translate();
      renderEntry();
      render();
      if (S.lastItem) renderItem(S.lastItem);
      pollStatus();
    };
    $("btn-shift").onclick = openShiftMenu;
    $("fiscal-null").onclick = nullReceipt;
    $("fiscal-training").onclick = trainingReceipt;
    $("qty-ok").onclick = () => qtyDone($("qty-input").value.trim() || null);
    $("qty-input").addEventListener("keydown", (e) => {
      if (e.key === "Enter") qtyDone($("qty-input").value.trim() || null);
    });
    $("btn-qty").onclick = changeQuantity;
    $("btn-line-discount").onclick = () => openDiscount("line");
    $("btn-cart-discount").onclick = () => openDiscount("cart");
    $("discount-ok").onclick = () => applyDiscount(false);
    $("discount-remove").onclick = () => applyDiscount(true);
    $("discount-input").addEventListener("keydown", (e) => {
      if (e.key === "Enter") applyDiscount(false);
    });
    $("approval-ok").onclick = () => approvalDone({ staff: $("approval-staff").value, pin: $("approval-pin").value });
    $("approval-pin").addEventListener("keydown", (e) => {
      if (e.key === "Enter") approvalDone({ staff: $("approval-staff").value, pin: $("approval-pin").value });
    });
    $("approval-cancel").onclick = () => approvalDone(null);
    $("btn-remove").onclick = removeLine;
    $("btn-clear").onclick = cancelSale;
    $("give-back").onclick = retryGiveBack;
    $("confirm-yes").onclick = () => confirmDone(true);
    $("confirm-no").onclick = () => confirmDone(false);
    $("btn-pay").onclick = openPay;
    $("tender-cash").onclick = () => addTender("cash");
    $("pay-complete").onclick = completeSale;

    $("tender-gift-card").onclick = () => openStoredValue("tender", "gift-card");
    $("tender-store-credit").onclick = () => openStoredValue("tender", "store-credit");
    $("btn-gift-card").onclick = () => openStoredValue("manage");
    $("btn-orders").onclick = openOrders;
    $("order-return").onclick = returnOrder;
    $("btn-hold").onclick = openHold;
    $("hold-ok").onclick = placeHold;
    $("orders-load").onclick = findOrder;
    $("orders-find").addEventListener("keydown", (e) => {
      if (e.key === "Enter") findOrder();
    });
    $("order-step").onclick = stepOrder;
    $("sv-check").onclick = checkBalance;
    $("sv-use").onclick = useStoredValue;
    $("sv-issue").onclick = () => loadStoredValue(true);
    $("sv-top-up").onclick = () => loadStoredValue(false);
    $("sv-number").addEventListener("keydown", (e) => {
      if (e.key === "Enter") (sv.mode === "tender" ? useStoredValue : checkBalance)();
    });
    $("tender-card").onclick = () => payByCard();
    $("tender-amount").addEventListener("keydown", (e) => {
      if (e.key === "Enter") addTender("cash");
    });
    $("receipt-close").onclick = newSale;
    $("receipt-print").onclick = printReceipt;
    $("shift-no-sale").onclick = noSale;
    $("btn-price-check").onclick = () => {
      $("price-check-input").value = "";
      $("price-check-result").replaceChildren();
      openDialog("dlg-price-check");
    };
    $("price-check-input").addEventListener("keydown", (e) => {
      if (e.key === "Enter") priceCheck($("price-check-input").value.trim());
    });
    $("search-input").addEventListener("input", onSearchInput);
    $("search-input").addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        const first = document.querySelector("#search-results .result");
        if (first) first.click();
      }
    });
    $("btn-return").onclick = openReturn;
    document.querySelectorAll("input[name=return-mode]").forEach((r) => r.addEventListener("change", syncReturnMode));
    $("return-load").onclick = loadReturnReceipt;
    $("return-receipt").addEventListener("keydown", (e) => {
      if (e.key === "Enter") loadReturnReceipt();
    });
    $("return-submit").onclick = submitReturn;
    $("return-new").onclick = openReturn;
    $("return-card-retry").onclick = refundToCard;
    $("return-card-cash").onclick = refundRestInCash;
    $("btn-void").onclick = openVoid;
    $("void-confirm").onclick = confirmVoid;
    $("btn-park").onclick = park;
    $("btn-resume").onclick = openResume;
    $("shift-x").onclick = xReport;
    $("cash-ok").onclick = cashMovement;
    $("shift-close-start").onclick = startClose;
    $("shift-close-ok").onclick = closeShift;
    // Buttons must not keep the focus: Enter belongs to the scanner.
    document.addEventListener("click", (e) => {
      const button = e.target.closest && e.target.closest("button");
      if (button) button.blur();
    });
  }

  async function boot() {
    buildKeypads();
    wire();
    try {
      await Kassa.loadConfig();
    } catch (e) {
      translate();
      fatal(String(e.message || e));
      return;
    }
    translate();
    const c = K.config;
    document.querySelectorAll('.keypad [data-key="."]').forEach((k) => (k.textContent = decimalSeparator()));
    $("store-name").textContent = c.name;
    $("terminal-name").textContent = K.terminal;
    document.title = `${t("app.title")} · ${K.terminal}`;
    if (!K.terminal || !c.terminals.includes(K.terminal)) {
      fatal(K.terminal ? t("terminal.unknown", { terminal: K.terminal }) + " " + t("terminal.missing") : t("terminal.missing"), c.terminals);
      return;
    }
    // Approvals of a sale this page held before a reload: that sale is gone, the money goes back.
    const orphans = heldCards.list();
    if (orphans.length) {
      giveBack.save([...giveBack.list(), ...orphans]);
      releaseCards();
    }
    renderGiveBack();
    loadQuickKeys();
    pollStatus();
    setInterval(pollStatus, 2000);
    pollCardQueue();
    setInterval(pollCardQueue, 15000);
    await loadStaff();
    document.body.dataset.ready = "1";
  }

  boot();
})();
