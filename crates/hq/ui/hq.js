// The back office's few scripts: every change goes through HQ's JSON API with the session's
// CSRF token, and an error is shown at the field the API names. No framework, no build step.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

async function api(method, path, body) {
  const headers = { "X-CSRF-Token": csrf() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let answer = null;
  try { answer = await response.json(); } catch (_) { answer = null; }
  return { ok: response.ok, status: response.status, answer };
}

// Shows an API error at its field (or at the form), and clears the others.
function showError(form, answer) {
  form.querySelectorAll("[data-error]").forEach((el) => { el.textContent = ""; });
  form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  if (!answer) return;
  const field = answer.field || "form";
  const slot = form.querySelector(`[data-error="${CSS.escape(field)}"]`) || form.querySelector('[data-error="form"]');
  if (slot) slot.textContent = answer.message || answer.code || "error";
  const input = form.querySelector(`[name="${CSS.escape(field)}"]`);
  if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
}

function signIn(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const result = await api("POST", "/v1/session", { name: data.get("name"), password: data.get("password") });
    if (result.ok) {
      location.assign(form.dataset.next || "/dashboard");
    } else {
      showError(form, result.answer);
    }
  });
}

function priceChange(form) {
  const body = () => {
    const data = new FormData(form);
    const change = { sku: form.dataset.sku, price: data.get("price") };
    if (data.get("effective")) change.effective = data.get("effective");
    if (data.get("store")) change.store = data.get("store"); else change.currency = data.get("currency");
    return change;
  };
  const preview = document.querySelector("[data-preview-section]");
  const rows = document.querySelector("[data-preview-rows]");
  form.querySelector("[data-preview]").addEventListener("click", async () => {
    const result = await api("POST", "/v1/price-changes?dry_run=true", body());
    showError(form, result.ok ? null : result.answer);
    if (!result.ok) return;
    rows.replaceChildren(...result.answer.change.stores.map((s) => {
      const tr = document.createElement("tr");
      for (const value of [s.store, s.effective_local, s.price_before, s.price_after, s.terminals.join(", ")]) {
        const td = document.createElement("td");
        td.textContent = value ?? "–";
        tr.append(td);
      }
      return tr;
    }));
    preview.hidden = false;
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const result = await api("POST", "/v1/price-changes", body());
    showError(form, result.ok ? null : result.answer);
    if (result.ok) {
      form.querySelector("[data-result]").textContent = form.dataset.done;
      location.reload();
    }
  });
}

function answerException(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const state = event.submitter ? event.submitter.value : "acknowledged";
    const path = `/v1/exceptions/${encodeURIComponent(form.dataset.kind)}/${encodeURIComponent(form.dataset.key)}`;
    const result = await api("PUT", path, { state, note: new FormData(form).get("note") || "" });
    if (result.ok) location.reload(); else showError(form, result.answer);
  });
}

// Shows a secret HQ answers once (a new API key) in the page's secret box.
function showSecret(secret) {
  const box = document.querySelector("[data-secret-box]");
  if (!box) return false;
  box.querySelector("[data-secret]").textContent = secret;
  box.hidden = false;
  box.querySelector("[data-secret]").focus();
  return true;
}

// A form whose fields are a JSON body: <form data-json="POST /v1/users">. Fields named in
// data-list (comma-separated) are arrays (checkboxes, a multiple select); empty fields are left
// out. On success a secret in the answer is shown, else the page reloads.
function jsonForm(form) {
  const [method, path] = form.dataset.json.split(" ");
  const lists = (form.dataset.list || "").split(",").filter(Boolean);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {};
    for (const name of lists) body[name] = [];
    for (const [name, value] of new FormData(form)) {
      if (lists.includes(name)) body[name].push(value);
      else if (value !== "") body[name] = value;
    }
    const result = await api(method, path, body);
    showError(form, result.ok ? null : result.answer);
    if (result.ok && !(result.answer?.secret && showSecret(result.answer.secret))) location.reload();
  });
}

// A button that makes one call: data-call="PUT /v1/users/x/disabled", data-body='{"disabled":true}'.
function callButton(button) {
  button.addEventListener("click", async () => {
    const [method, path] = button.dataset.call.split(" ");
    const result = await api(method, path, button.dataset.body ? JSON.parse(button.dataset.body) : undefined);
    if (!result.ok) { alert(result.answer?.message || "error"); return; }
    if (!(result.answer?.secret && showSecret(result.answer.secret))) location.reload();
  });
}

// A store's details changed: read the store with its version, change the form's fields, and
// send it back with If-Match, so that a change made meanwhile by someone else is refused (the
// API says what changed), never overwritten.
function storeEdit(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const path = `/v1/stores/${encodeURIComponent(form.dataset.storeEdit)}`;
    const read = await fetch(path, { credentials: "same-origin" });
    if (!read.ok) { showError(form, await read.json().catch(() => null)); return; }
    const etag = read.headers.get("ETag");
    const store = (await read.json()).store;
    for (const [name, value] of new FormData(form)) {
      if (name === "tax_id" && value.trim() === "") delete store.tax_id; else store[name] = value;
    }
    const response = await fetch(path, {
      method: "PUT",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf(), "If-Match": etag },
      body: JSON.stringify(store),
    });
    if (response.ok) { location.reload(); return; }
    showError(form, await response.json().catch(() => null));
  });
}

// A variant edited: read with its version, the form's fields set (GTINs one per line; its PLUs
// and legacy ids kept), sent back with If-Match; an error at a GTIN is shown at the list.
function variantEdit(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const path = `/v1/variants/${encodeURIComponent(form.dataset.variantEdit)}`;
    const read = await fetch(path, { credentials: "same-origin" });
    if (!read.ok) { showError(form, await read.json().catch(() => null)); return; }
    const etag = read.headers.get("ETag");
    const entity = (await read.json()).variant;
    const data = new FormData(form);
    entity.product_name = data.get("product_name");
    entity.variant.name = data.get("variant.name");
    entity.variant.tax = data.get("variant.tax");
    entity.variant.channels = data.get("variant.channels");
    if (data.get("category")) entity.category = data.get("category"); else delete entity.category;
    const gtins = data.get("gtins").split(/\s+/).filter(Boolean).map((gtin) => ({ gtin }));
    entity.variant.identifiers = gtins.concat(entity.variant.identifiers.filter((i) => !("gtin" in i)));
    const response = await fetch(path, {
      method: "PUT",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf(), "If-Match": etag },
      body: JSON.stringify(entity),
    });
    if (response.ok) { location.reload(); return; }
    const answer = await response.json().catch(() => null);
    if (answer?.field?.startsWith("variant.identifiers")) answer.field = "gtins";
    showError(form, answer);
  });
}

// A member of staff added or changed: an existing one is read first for its version, so that
// a change someone made meanwhile is refused (If-Match), never overwritten.
function staffEdit(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const member = { id: data.get("id"), name: data.get("name"), role: data.get("role") };
    if (data.get("pin")) member.pin = data.get("pin");
    const path = `/v1/staff/${encodeURIComponent(member.id)}`;
    const headers = { "Content-Type": "application/json", "X-CSRF-Token": csrf() };
    const read = await fetch(path, { credentials: "same-origin" });
    if (read.ok) headers["If-Match"] = read.headers.get("ETag");
    const response = await fetch(path, { method: "PUT", credentials: "same-origin", headers, body: JSON.stringify(member) });
    if (response.ok) { location.reload(); return; }
    showError(form, await response.json().catch(() => null));
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-answer]").forEach(answerException);
  document.querySelectorAll("[data-sign-in]").forEach(signIn);
  document.querySelectorAll("[data-price-change]").forEach(priceChange);
  document.querySelectorAll("form[data-json]").forEach(jsonForm);
  document.querySelectorAll("form[data-store-edit]").forEach(storeEdit);
  document.querySelectorAll("form[data-staff-edit]").forEach(staffEdit);
  document.querySelectorAll("form[data-variant-edit]").forEach(variantEdit);
  document.querySelectorAll("button[data-call]").forEach(callButton);
  document.querySelectorAll("[data-cancel]").forEach((button) => {
    button.addEventListener("click", async () => {
      const result = await api("DELETE", `/v1/price-changes/${encodeURIComponent(button.dataset.cancel)}`);
      if (result.ok) location.reload(); else alert(result.answer?.message || "error");
    });
  });
  document.querySelectorAll("[data-sign-out]").forEach((button) => {
    button.addEventListener("click", async () => {
      await api("DELETE", "/v1/session");
      location.assign("/sign-in");
    });
  });
});
