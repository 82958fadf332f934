// Shared by the till screen and the customer display: the terminal from the address, the store
// settings, translation, money and date formatting for the store's locale, and the API client.
// Amounts stay decimal strings end to end: Intl.NumberFormat formats the string itself, so no
// amount ever becomes a JavaScript float.
"use strict";

const Kassa = (() => {
  const params = new URLSearchParams(location.search);
  const state = {
    terminal: params.get("terminal") || "",
    lang: params.get("lang") || "",
    config: null,
    session: null,
    moneyFormat: null,
  };

  function dict() {
    const all = window.KASSA_I18N || {};
    return all[state.lang] || all.en || {};
  }

  /** The string for `key` in the current language, with `{name}` replaced from `vars`. */
  function t(key, vars) {
    const all = window.KASSA_I18N || {};
    let text = dict()[key];
    if (text === undefined) text = (all.en || {})[key];
    if (text === undefined) text = key;
    if (vars) {
      text = text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
    }
    return text;
  }

  /** Fills every `data-i18n` (text) and `data-i18n-placeholder` element under `root`. */
  function translate(root) {
    (root || document).querySelectorAll("[data-i18n]").forEach((el) => {
      el.textContent = t(el.dataset.i18n);
    });
    (root || document).querySelectorAll("[data-i18n-placeholder]").forEach((el) => {
      el.placeholder = t(el.dataset.i18nPlaceholder);
    });
    document.documentElement.lang = state.lang;
  }

  function locale() {
    return (state.config && state.config.locale) || "en";
  }

  /** A decimal amount string ("12.50") formatted in the store's currency and locale. */
  function money(amount, currency) {
    if (amount === null || amount === undefined || amount === "") return "";
    const cur = currency || (state.config && state.config.currency) || "EUR";
    if (!state.moneyFormat || state.moneyFormat.cur !== cur) {
      state.moneyFormat = {
        cur,
        fmt: new Intl.NumberFormat(locale(), { style: "currency", currency: cur }),
      };
    }
    return state.moneyFormat.fmt.format(String(amount));
  }

  /** A decimal quantity string formatted for the locale, with its unit. */
  function quantity(qty, unit) {
    const fmt = new Intl.NumberFormat(locale(), { maximumFractionDigits: 3 });
    const text = fmt.format(String(qty));
    return unit && unit !== "each" ? `${text} ${t("unit." + unit)}` : text;
  }

  /** An instant (ms since the epoch) as a date and time in the store's time zone. */
  function dateTime(ms) {
    const options = { dateStyle: "short", timeStyle: "short" };
    if (state.config && state.config.timezone) options.timeZone = state.config.timezone;
    try {
      return new Intl.DateTimeFormat(locale(), options).format(new Date(ms));
    } catch (e) {
      return new Date(ms).toISOString();
    }
  }

  /** The instant a UUIDv7 was made, from its first 48 bits. */
  function uuidTime(id) {
    const hex = String(id || "").replace(/-/g, "").slice(0, 12);
    return hex.length === 12 ? parseInt(hex, 16) : Date.now();
  }

  /** A random idempotency key; works on plain http on the LAN, where randomUUID does not. */
  function newKey() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /**
   * Calls the node. Resolves to `{status, body}` for any HTTP answer and rejects only when the
   * node cannot be reached. Writes carry an Idempotency-Key (the caller's, so a retry after a
   * lost answer is the same write) and the session.
   */
  async function api(method, path, body, key) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") headers["Idempotency-Key"] = key || newKey();
    if (state.session) headers.Authorization = "Bearer " + state.session;
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
    let parsed = null;
    const text = await response.text();
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch (e) {
        parsed = { code: "unreadable", message: text };
      }
    }
    return { status: response.status, body: parsed };
  }

  async function loadConfig() {
    const r = await api("GET", "/v1/till/config");
    if (r.status !== 200) throw new Error((r.body && r.body.message) || "no store settings");
    state.config = r.body;
    if (!state.lang || !(window.KASSA_I18N || {})[state.lang]) {
      const fromStore = String(r.body.locale || "en").slice(0, 2);
      state.lang = (window.KASSA_I18N || {})[fromStore] ? fromStore : "en";
    }
    return r.body;
  }

  /** Creates an element with attributes (`data-*`, `class`, `text`) and children. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "text") node.textContent = value;
      else if (name === "class") node.className = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child.nodeType ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  return { state, t, translate, money, quantity, dateTime, uuidTime, newKey, api, loadConfig, el };
})();
