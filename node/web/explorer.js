// Bazaar explorer: reads this node's JSON routes and follows its server-sent "head" events; writes nothing.
"use strict";

const seen = {};            // height -> {shown: ms, final: ms} (wall clock when the page first showed it)
window.bazaarSeen = seen;   // read by the browser test (time from a block's finality to the page)
let refreshing = null;
let again = false;
let lastHead = null;
let selected = null;

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function row(cells, classes) {
  const tr = document.createElement("tr");
  cells.forEach((c, i) => tr.appendChild(el("td", c, classes && classes[i])));
  return tr;
}

function fill(tbody, rows, empty) {
  if (rows.length === 0 && empty) {
    const cell = el("td", empty, "empty");
    cell.colSpan = tbody.parentElement.querySelectorAll("thead th").length || 1;
    const tr = document.createElement("tr");
    tr.appendChild(cell);
    rows = [tr];
  }
  tbody.replaceChildren(...rows);
}

function fmtTokens(x) {
  return Number(x).toLocaleString("en-US", {minimumFractionDigits: 2, maximumFractionDigits: 6});
}

function short(hex) {
  return hex ? hex.slice(0, 12) : "-";
}

function who(name, hex) {
  return name || short(hex);
}

async function getJSON(path) {
  const answer = await fetch(path, {cache: "no-store"});
  if (!answer.ok) throw new Error(`${path}: HTTP ${answer.status}`);
  return answer.json();
}

function renderOverview(o) {
  document.getElementById("node-name").textContent = `${o.name}`;
  document.title = `Bazaar explorer · ${o.name}`;
  document.getElementById("node-line").textContent =
    `${o.role} · market ${o.market} · network ${o.network} · consensus ${o.consensus} · ${o.peers} peers · ` +
    `mempool ${o.mempool}${o.synced ? "" : " · syncing"}`;
  document.getElementById("chain-line").textContent = `height ${o.height} · finalized ${o.finalized}`;
}

function renderBlocks(b) {
  const now = Date.now();
  const tbody = document.querySelector("#blocks tbody");
  const rows = b.blocks.map((blk) => {
    const mark = seen[blk.height] || (seen[blk.height] = {shown: now, final: null, fresh: true});
    if (blk.final && mark.final === null) mark.final = now;
    const tr = row([blk.height, new Date(blk.timestamp_ms).toLocaleTimeString(), who(blk.proposer_name, blk.proposer),
      blk.txs, fmtTokens(blk.reward / 1e6), blk.final ? "final" : "pending",
      blk.signers ? blk.signers.join(", ") : "-"],
    ["num", "", "", "num", "num", blk.final ? "final" : "pending", ""]);
    tr.id = `block-${blk.height}`;
    tr.dataset.height = blk.height;
    tr.dataset.final = blk.final ? "1" : "0";
    if (mark.fresh && Object.keys(seen).length > b.blocks.length) tr.classList.add("fresh");
    mark.fresh = false;
    tr.addEventListener("click", () => showBlock(blk.height));
    return tr;
  });
  fill(tbody, rows, "no block yet");
  document.body.dataset.height = b.height;
  document.body.dataset.finalized = b.finalized;
}

async function showBlock(height) {
  selected = height;
  const blk = await getJSON(`/block?height=${height}`);
  const box = document.getElementById("block-detail");
  box.hidden = false;
  document.getElementById("block-title").textContent = `Block ${blk.height} (${blk.final ? "final" : "pending"})`;
  const signers = blk.certificate ? blk.certificate.signer_names.join(", ") : "no certificate yet";
  document.getElementById("block-meta").textContent =
    `hash ${short(blk.hash)} · parent ${short(blk.parent)} · proposer ${who(blk.proposer_name, blk.proposer)} · ` +
    `rule ${blk.consensus_rule} · signers: ${signers}`;
  fill(document.querySelector("#block-txs tbody"), blk.txs.map((tx) => tx.error
    ? row([`undecodable (${tx.error})`, "", "", ""])
    : row([tx.type, who(tx.sender_name, tx.sender), tx.round, JSON.stringify(tx.body).slice(0, 400)],
      ["", "", "num", "wrap"])));
}

function renderRounds(r) {
  document.getElementById("rounds-title").textContent = `Rounds · ${r.title}`;
  document.getElementById("rounds-note").textContent = r.leads
    ? "This node leads the rounds: full round reports."
    : `Rounds seen on this node's chain; the full reports are kept by the leader${r.leader ? ` (${r.leader})` : ""}.`;
  const head = document.querySelector("#round-table thead tr");
  const headers = ["round", "phase", ...r.columns.map((c) => c.header), "height", "final", "latency ms", "txs"];
  head.replaceChildren(...headers.map((h) => el("th", h)));
  fill(document.querySelector("#round-table tbody"), r.rounds.map((x) => {
    const tr = row([x.round, x.phase, ...x.cells, x.height === null ? "-" : x.height, x.final ? "final" : "pending",
      x.latency_ms === null ? "-" : Math.round(x.latency_ms), x.txs],
    ["num", "", ...x.cells.map(() => "num"), "num", x.final ? "final" : "pending", "num", "num"]);
    tr.dataset.round = x.round;
    return tr;
  }), "no round yet");
}

function renderAccounts(a) {
  const s = a.supply_tokens;
  document.getElementById("supply-line").textContent =
    `supply ${fmtTokens(s.total)} tokens (genesis ${fmtTokens(s.genesis)}, minted ${fmtTokens(s.minted)}, ` +
    `burned ${fmtTokens(s.burned)})`;
  fill(document.querySelector("#account-table tbody"), a.accounts.map((x) => row(
    [who(x.name, x.key) + (x.slashed ? " (slashed)" : ""), x.role || "-", fmtTokens(x.balance_tokens),
      fmtTokens(x.stake_tokens), fmtTokens(x.unbonding_tokens), x.nonce],
    ["", "", "num", "num", "num", "num"])));
  fill(document.querySelector("#escrow-table tbody"), a.escrows.map((e) => row(
    [short(e.id), who(e.payer_name, e.payer), who(e.payee_name, e.payee), fmtTokens(e.amount_tokens), e.expires,
      e.market], ["", "", "", "num", "num", ""])), "no open escrow");
}

async function refresh() {
  if (refreshing) { again = true; return refreshing; }
  refreshing = (async () => {
    do {
      again = false;
      const [o, b, r, a] = await Promise.all(
        [getJSON("/overview"), getJSON("/blocks?limit=25"), getJSON("/rounds"), getJSON("/accounts")]);
      renderOverview(o);
      renderBlocks(b);
      renderRounds(r);
      renderAccounts(a);
      if (selected !== null) await showBlock(selected);
    } while (again);
  })().catch((err) => {
    document.getElementById("node-line").textContent = `cannot read the node: ${err.message}`;
  }).finally(() => { refreshing = null; });
  return refreshing;
}

function live(on, text) {
  const badge = document.getElementById("live");
  badge.className = `live ${on ? "on" : "off"}`;
  badge.textContent = text;
}

function follow() {
  if (!window.EventSource) { live(false, "polling"); setInterval(refresh, 3000); return; }
  const events = new EventSource("/events");
  events.addEventListener("open", () => live(true, "live"));
  events.addEventListener("error", () => live(false, "reconnecting"));
  events.addEventListener("head", (e) => {
    const head = JSON.parse(e.data);
    const key = `${head.height}/${head.finalized}/${head.head}/${head.reported}`;
    if (key !== lastHead) { lastHead = key; refresh(); }
  });
  setInterval(refresh, 15000);  // accounts and peers change without a new block too
}

document.addEventListener("DOMContentLoaded", async () => {
  await refresh();
  document.body.dataset.loadedMs = Math.round(performance.now());
  follow();
});
