// The console page: reads /api/v1/status, polls /api/v1/events for changes,
// and redraws. No framework, no build step: the package serves this file as is.
// Changes need a sign-in with the console's token or the admin password: the
// server answers with an HttpOnly session cookie, which this script never sees,
// and the session's CSRF token, which it sends in X-CSRF-Token with every change
// (a page of another origin can make the browser send the cookie, but can read
// neither answer nor set that header). It asks /api/v1/session whether it is
// signed in (and for the CSRF token, after a reload).
"use strict";

const state = { since: 0, status: null, refreshing: false, promptDismissed: false, signedIn: false,
                csrf: "" };
// The source document prompts admins at first sign-in to replace the self-signed
// certificate; a dismissal lasts as long as the browser tab (sessionStorage).
const PROMPT_DISMISSED = "mesh.self-signed-prompt.dismissed";
const POLL_MS = 1000;
const PAGE = 1000;  // the API's largest page of events
// Traffic, not state changes: not listed, and no reason to redraw.
const QUIET = new Set(["message-delivered", "link-connecting"]);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(child ?? ""));
  }
  return node;
}

async function getJSON(url, options) {
  const response = await fetch(url, Object.assign({ cache: "no-store" }, options || {}));
  const body = await response.json().catch(() => ({}));
  return { ok: response.ok, status: response.status, body };
}

function showStatus(doc) {
  state.status = doc;
  document.getElementById("appliance-name").textContent = doc.appliance.name;
  document.getElementById("appliance-role").textContent = doc.appliance.role;
  document.title = doc.appliance.name + " · mesh console";
  document.getElementById("now").textContent = doc.now;

  const prompting = showPrompt(doc.certificate.self_signed);
  const warnings = document.getElementById("warnings");
  // While the prompt is up it says what the self-signed warning would.
  const shown = doc.warnings.filter(w => !(prompting && w.kind === "self-signed-certificate"));
  warnings.replaceChildren(...shown.map(w =>
    el("div", { class: "warning", "data-kind": w.kind }, `${w.kind}: ${w.message}`)));

  const body = document.querySelector("#links tbody");
  body.replaceChildren(...doc.links.map(link => el("tr",
      { class: "link-" + link.state, "data-link": link.name, "data-state": link.state },
      el("td", {}, link.name),
      el("td", {}, el("span", { class: "state state-" + link.state },
        link.unvalidated ? "up (unvalidated)" : link.state)),
      el("td", { class: "code" }, link.code || ""),
      el("td", { class: "message" }, (link.message || "") +
        (link.refused_by ? ` (refused by ${link.refused_by})` : ""),
        wouldFail(link)))));

  const c = doc.certificate;
  const rows = [
    ["subject", c.subject], ["issuer", c.issuer], ["serial", c.serial],
    ["valid from", c.not_before], ["valid to", c.not_after],
    ["days until expiry", String(c.days_until_expiry) + (c.expiring ? " (expiring)" : "")],
    ["self-signed", c.self_signed ? "yes (locally generated)" : "no"],
    ["chain", c.chain.length ? c.chain.join(" ← ") : "(none)"],
    ["SHA-256", c.sha256_fingerprint],
  ];
  document.getElementById("certificate").replaceChildren(
    ...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { "data-field": k }, v)]));

  const toggle = document.getElementById("validation-switch");
  toggle.checked = doc.validation.enabled;
  document.getElementById("validation-label").textContent =
    doc.validation.enabled ? "on: peers are validated" : "off: peers are not validated";
}

// What an unvalidated link would fail with, once validation is on: each
// operator message with its code beside it.
function wouldFail(link) {
  const codes = link.would_fail || [];
  if (!codes.length) return "";
  const messages = link.would_fail_messages || [];
  return el("ul", { class: "would-fail" }, ...codes.map((code, i) =>
    el("li", { "data-code": code }, el("code", {}, code), " " + (messages[i] || ""))));
}

function promptDismissed() {
  if (state.promptDismissed) return true;
  try { return sessionStorage.getItem(PROMPT_DISMISSED) === "1"; } catch (error) { return false; }
}

// The upload prompt: shown while the appliance is self-signed and the prompt
// was not dismissed; the upload form moves up under it. Focus goes to the form
// only when the prompt appears, never at a later redraw. Returns whether it shows.
function showPrompt(selfSigned) {
  const prompt = document.getElementById("self-signed-prompt");
  const open = Boolean(selfSigned) && !promptDismissed();
  const appearing = open && prompt.hidden;
  prompt.hidden = !open;
  document.querySelector("main").classList.toggle("upload-first", open);
  if (appearing) document.getElementById("upload-crt").focus();
  return open;
}

function dismissPrompt() {
  state.promptDismissed = true;
  try { sessionStorage.setItem(PROMPT_DISMISSED, "1"); } catch (error) { /* this page only */ }
  if (state.status) showStatus(state.status);
}

async function refresh() {
  if (state.refreshing) return;
  state.refreshing = true;
  try {
    const status = await getJSON("/api/v1/status");
    if (status.ok) showStatus(status.body);
    const graph = await fetch("/graph.svg", { cache: "no-store" });
    if (graph.ok) document.getElementById("graph").innerHTML = await graph.text();
  } finally {
    state.refreshing = false;
  }
}

function showEvents(events) {
  const list = document.getElementById("events");
  for (const event of events.filter(e => !QUIET.has(e.kind))) {
    const text = `${event.at} ${event.kind}: ${event.text || event.message || ""}`;
    list.prepend(el("li", { class: "sev-" + event.severity, "data-kind": event.kind }, text));
  }
  while (list.children.length > 200) list.lastChild.remove();
}

async function poll() {
  let behind = false;
  try {
    const answer = await getJSON("/api/v1/events?since=" + state.since);
    document.getElementById("poll-state").textContent = "live";
    // "next" moves past other appliances' events too, with none listed.
    if (answer.ok) state.since = answer.body.next;
    if (answer.ok && answer.body.events.length) {
      behind = answer.body.events.length >= PAGE;  // a backlog: fetch the next page now
      showEvents(answer.body.events.slice(-200));
      if (answer.body.events.some(e => !QUIET.has(e.kind))) await refresh();
    }
  } catch (error) {
    document.getElementById("poll-state").textContent = "disconnected, retrying";
  }
  setTimeout(poll, behind ? 0 : POLL_MS);
}

async function upload(event) {
  event.preventDefault();
  const form = event.target;
  const verdict = document.getElementById("upload-verdict");
  verdict.className = "";
  verdict.textContent = "checking…";
  const answer = await getJSON("/api/v1/certificate", {
    method: "POST", headers: changeHeaders(), body: new FormData(form) });
  if (answer.ok) {
    verdict.className = "accepted";
    verdict.textContent = "Accepted: " + answer.body.certificate.subject +
      " (serial " + answer.body.certificate.serial + ") is in use from the next connection.";
  } else {
    if (answer.status === 401) showSession(false);
    verdict.className = "refused";
    verdict.dataset.code = answer.body.code || "";
    verdict.textContent = answer.body.message || ("Upload failed (HTTP " + answer.status + ")");
  }
  form.querySelector("#upload-passphrase").value = "";
  await refresh();
}

// What every change sends besides its body: the session's CSRF token.
function changeHeaders(extra) {
  return Object.assign({ "X-CSRF-Token": state.csrf }, extra || {});
}

function showSession(signedIn, csrf) {
  state.signedIn = signedIn;
  state.csrf = signedIn ? (csrf || "") : "";
  document.getElementById("sign-in-form").hidden = signedIn;
  document.getElementById("sign-out").hidden = !signedIn;
  const line = document.getElementById("sign-in-state");
  line.className = signedIn ? "accepted" : "";
  line.textContent = signedIn ? "signed in" : "signed out";
}

async function checkSession() {
  const answer = await getJSON("/api/v1/session");
  if (answer.ok) showSession(Boolean(answer.body.signed_in), answer.body.csrf_token);
}

async function signIn(event) {
  event.preventDefault();
  const field = document.getElementById("sign-in-token");
  const password = document.getElementById("sign-in-password");
  const credential = field.value.trim() ? { token: field.value.trim() } :
    { user: document.getElementById("sign-in-user").value, password: password.value };
  const answer = await getJSON("/api/v1/session", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(credential),
  });
  field.value = "";
  password.value = "";
  if (answer.ok) {
    showSession(true, answer.body.csrf_token);
    await refresh();
  } else {
    showSession(false);
    const line = document.getElementById("sign-in-state");
    line.className = "refused";
    line.dataset.code = answer.body.code || "";
    line.textContent = answer.body.message || ("Sign-in failed (HTTP " + answer.status + ")");
  }
}

async function signOut() {
  await getJSON("/api/v1/session", { method: "DELETE" });
  showSession(false);
}

async function switchValidation(event) {
  const answer = await getJSON("/api/v1/validation", {
    method: "PUT",
    headers: changeHeaders({ "Content-Type": "application/json" }),
    body: JSON.stringify({ enabled: event.target.checked }),
  });
  if (answer.status === 401) showSession(false);
  if (!answer.ok) event.target.checked = !event.target.checked;
  await refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("upload-form").addEventListener("submit", upload);
  document.getElementById("validation-switch").addEventListener("change", switchValidation);
  document.getElementById("self-signed-dismiss").addEventListener("click", dismissPrompt);
  document.getElementById("sign-in-form").addEventListener("submit", signIn);
  document.getElementById("sign-out").addEventListener("click", signOut);
  checkSession().then(refresh).then(poll);
});
