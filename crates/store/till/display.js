// The customer display: follows one terminal's cart through the node's relay (Server-Sent
// Events) and shows the lines and the total in large type, then the change after payment.
"use strict";

(() => {
  const { state: K, t, translate, money, quantity, el } = Kassa;
  const $ = (id) => document.getElementById(id);
  let updates = 0;

  function showOnly(section) {
    for (const name of ["welcome", "cart", "thanks"]) $(name).hidden = name !== section;
  }

  function render(msg) {
    if (msg.lang && msg.lang !== K.lang && (window.KASSA_I18N || {})[msg.lang] && !new URLSearchParams(location.search).get("lang")) {
      K.lang = msg.lang;
      translate();
    }
    document.body.dataset.state = msg.state || "idle";
    document.body.dataset.updates = String(++updates);
    const total = $("display-total");
    if (msg.state === "cart" && msg.cart) {
      const cart = msg.cart;
      showOnly("cart");
      $("display-lines").replaceChildren(
        ...cart.lines.map((line) =>
          el(
            "li",
            { "data-test": "display-line", "data-sku": line.sku, "data-qty": line.quantity },
            el("span", { class: "name", text: line.name }),
            el("span", { class: "qty", text: `${quantity(line.quantity, line.unit)} × ${money(line.unit_price, cart.currency)}` }),
            el("span", { class: "gross", text: money(line.gross, cart.currency) }),
          ),
        ),
      );
      // Discounts (already in each line's amount) are shown as what the customer saves.
      const discount = cart.discount_total && !/^-?0(\.0+)?$/.test(cart.discount_total);
      $("display-discount").hidden = !discount;
      $("display-discount-amount").textContent = discount ? "−" + money(cart.discount_total, cart.currency) : "";
      $("display-discount").dataset.amount = discount ? cart.discount_total : "0";
      const last = $("display-lines").lastElementChild;
      if (last) last.scrollIntoView({ block: "nearest" });
      $("total-label").textContent = t("display.total");
      total.textContent = money(cart.total, cart.currency);
      total.dataset.amount = cart.total;
    } else if (msg.state === "paid") {
      showOnly("thanks");
      $("thanks-label").textContent = t("display.change");
      $("display-change").textContent = money(msg.change || "0", msg.currency);
      $("display-change").dataset.amount = msg.change || "0";
      $("total-label").textContent = t("display.total");
      total.textContent = money(msg.total, msg.currency);
      total.dataset.amount = msg.total;
    } else if (msg.state === "refund") {
      showOnly("welcome");
      $("total-label").textContent = t("display.refund");
      total.textContent = money(msg.total);
      total.dataset.amount = msg.total;
    } else {
      showOnly("welcome");
      $("total-label").textContent = t("display.total");
      total.textContent = "";
      total.dataset.amount = "0";
    }
  }

  function connect() {
    const source = new EventSource(`/v1/display/${encodeURIComponent(K.terminal)}/events`);
    source.onopen = () => {
      $("connection").textContent = "";
      document.body.dataset.connected = "1";
    };
    source.onmessage = (e) => {
      try {
        render(JSON.parse(e.data));
      } catch (err) {
        /* a malformed message is skipped; the next one redraws everything */
      }
    };
    source.onerror = () => {
      document.body.dataset.connected = "0";
      $("connection").textContent = "…";
    };
  }

  async function boot() {
    try {
      await Kassa.loadConfig();
      $("store-name").textContent = K.config.name;
    } catch (e) {
      /* formatting falls back to English and EUR until the node answers */
    }
    translate();
    document.title = `${t("display.title")} · ${K.terminal}`;
    render({ state: "idle" });
    connect();
  }

  boot();
})();
