// memjit explorer: sortable tables, claim verdicts, and "try it". Plain JavaScript, no library.
"use strict";

const API = document.body.dataset.api;

function utc(t) {
  return t == null ? "-" : new Date(t * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text != null) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

// Click a column header to sort by it (numbers as numbers); click again to reverse.
function sortable(table) {
  table.querySelectorAll("th").forEach((th, column) => {
    th.addEventListener("click", () => {
      const numeric = th.dataset.sort === "num";
      const ascending = !th.classList.contains("asc");
      table.querySelectorAll("th").forEach((h) => h.classList.remove("asc", "desc"));
      th.classList.add(ascending ? "asc" : "desc");
      const body = table.tBodies[0];
      const rows = Array.from(body.rows).filter((r) => r.cells.length > column);
      const key = (row) => {
        const v = row.cells[column].dataset.value ?? row.cells[column].textContent;
        return numeric ? parseFloat(v) : v.toLowerCase();
      };
      rows.sort((a, b) => {
        const x = key(a), y = key(b);
        return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
      });
      rows.forEach((r) => body.appendChild(r));
    });
  });
}

// A claim's verdict, re-verified by the node.
function verdictText(v) {
  return v.valid ? `valid, ${v.security_bits} bits` : `invalid: ${v.reason}`;
}

async function fillVerdicts() {
  for (const cell of document.querySelectorAll("td.verdict.pending[data-claim]")) {
    try {
      const res = await fetch(`${API}/claims/${cell.dataset.claim}`);
      const v = await res.json();
      cell.textContent = res.ok ? verdictText(v) : v.error;
      cell.classList.remove("pending");
      cell.classList.add(res.ok && v.valid ? "ok" : "bad");
      cell.dataset.value = cell.textContent;
    } catch (e) {
      cell.textContent = "unavailable";
      cell.classList.remove("pending");
    }
  }
}

function auditButton() {
  const button = document.getElementById("audit");
  if (!button) return;
  button.addEventListener("click", async () => {
    const out = document.getElementById("audit-result");
    button.disabled = true;
    out.textContent = "re-verifying...";
    const res = await fetch(`${API}/batches/${button.dataset.batch}/audit`);
    const a = await res.json();
    out.className = res.ok && a.ok ? "ok" : "error";
    out.textContent = !res.ok ? a.error : a.ok
      ? `audit passed: signature, ${a.facts} fact(s) (claims and stake events), facts root and state roots all check (${a.seconds.toFixed(2)} s)`
      : `audit FAILED: ${a.problems.join("; ")}`;
    button.disabled = false;
  });
}

// --- try it: an 8x8 grid of pixels 0..max, drawn with the mouse ---------------------------
function tryIt() {
  const root = document.getElementById("try");
  if (!root) return;
  const size = parseInt(root.dataset.size, 10), max = parseInt(root.dataset.max, 10);
  const side = Math.round(Math.sqrt(size));
  const pad = document.getElementById("pad");
  const ctx = pad.getContext("2d");
  const cell = pad.width / side;
  let pixels = new Uint8Array(size);
  let uploaded = null;  // bytes of an uploaded file, sent as they are

  function draw() {
    for (let i = 0; i < side * side; i++) {
      const shade = 255 - Math.round((255 * Math.min(pixels[i], max)) / max);
      ctx.fillStyle = `rgb(${shade},${shade},${shade})`;
      ctx.fillRect((i % side) * cell, Math.floor(i / side) * cell, cell, cell);
    }
    ctx.strokeStyle = "#dde";
    for (let k = 1; k < side; k++) {
      ctx.beginPath(); ctx.moveTo(k * cell, 0); ctx.lineTo(k * cell, pad.height); ctx.stroke();
      ctx.beginPath(); ctx.moveTo(0, k * cell); ctx.lineTo(pad.width, k * cell); ctx.stroke();
    }
  }
  // A soft brush: the cell under the pointer goes to max, its 4 neighbours part of the way.
  function paint(event) {
    const box = pad.getBoundingClientRect();
    const x = Math.floor(((event.clientX - box.left) / box.width) * side);
    const y = Math.floor(((event.clientY - box.top) / box.height) * side);
    if (x < 0 || y < 0 || x >= side || y >= side) return;
    uploaded = null;
    const erase = event.shiftKey;
    for (const [dx, dy, amount] of [[0, 0, max], [1, 0, max / 3], [-1, 0, max / 3], [0, 1, max / 3], [0, -1, max / 3]]) {
      const cx = x + dx, cy = y + dy;
      if (cx < 0 || cy < 0 || cx >= side || cy >= side) continue;
      const i = cy * side + cx;
      pixels[i] = erase ? 0 : Math.min(max, Math.max(pixels[i], Math.round(amount)));
    }
    draw();
  }
  let down = false;
  pad.addEventListener("pointerdown", (e) => { down = true; pad.setPointerCapture(e.pointerId); paint(e); });
  pad.addEventListener("pointermove", (e) => { if (down) paint(e); });
  pad.addEventListener("pointerup", () => { down = false; });
  document.getElementById("clear").addEventListener("click", () => { pixels = new Uint8Array(size); uploaded = null; draw(); });
  const sample = document.getElementById("sample");
  if (sample) {
    let next = 0;
    sample.addEventListener("click", async () => {
      const res = await fetch(`${API}/tasks/${root.dataset.task}/samples/${next++}`);
      const s = await res.json();
      pixels = Uint8Array.from(s.pixels); uploaded = null; draw();
      document.getElementById("status").textContent = `sample ${s.index} (labelled ${s.label})`;
    });
  }
  document.getElementById("upload").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    uploaded = new Uint8Array(await file.arrayBuffer());
    if (uploaded.length === size) pixels = Uint8Array.from(uploaded);
    draw();
    document.getElementById("status").textContent = `file ${file.name}: ${uploaded.length} bytes`;
  });
  document.getElementById("send").addEventListener("click", () => send(uploaded || pixels));
  draw();

  async function send(bytes) {
    const button = document.getElementById("send");
    const status = document.getElementById("status"), result = document.getElementById("result");
    const arrivals = document.getElementById("arrivals"), table = document.getElementById("verdicts");
    arrivals.replaceChildren(); table.tBodies[0].replaceChildren(); table.hidden = true;
    result.textContent = ""; result.className = "result";
    button.disabled = true;
    status.textContent = "sent: the workers are answering and proving...";
    const label = document.getElementById("label").value;
    try {
      const res = await fetch(`${API}/tasks/${root.dataset.task}/request` + (label ? `?label=${label}` : ""),
        { method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: bytes });
      if (!res.ok) {
        const err = await res.json();
        status.textContent = `refused (${res.status}): ${err.error}`;
        return;
      }
      const reader = res.body.getReader(), decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let nl;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          const event = JSON.parse(buffer.slice(0, nl));
          buffer = buffer.slice(nl + 1);
          show(event);
        }
      }
    } catch (e) {
      status.textContent = `failed: ${e}`;
    } finally {
      button.disabled = false;
    }

    function show(event) {
      if (event.event === "answer") {
        arrivals.appendChild(el("li", `${event.owner} (${event.worker.slice(0, 12)}): ` +
          (event.fault ? `fault: ${event.fault}` : "claim received")));
        status.textContent = `${arrivals.children.length} answer(s) in; the oracle verifies ` +
          "every proof once all have answered...";
      } else if (event.event === "error") {
        status.textContent = `failed: ${event.error}`;
      } else if (event.event === "settled") {
        status.textContent = `request ${event.request} settled: ` + (event.basis
          ? `scored against ${event.scored_against} (${event.basis})` : "not scored (no staked label, no consensus)");
        if (event.result != null) {
          const best = event.calls.find((c) => c.worker === event.worker);
          result.textContent = `Answer: ${event.result} (verified, from ${best.owner})`;
          result.classList.add("ok");
        } else {
          result.textContent = "No verified answer";
          result.classList.add("error");
        }
        table.hidden = false;
        for (const c of event.calls) {
          const row = table.tBodies[0].insertRow();
          row.className = c.outcome;
          for (const text of [c.worker.slice(0, 12), c.owner, c.outcome, c.result ?? "-",
                              c.score.toFixed(3), c.fee]) row.appendChild(el("td", String(text)));
          const proof = el("td", c.claim ? "checking..." : c.reason || "no claim",
                           c.claim ? "verdict pending" : "verdict bad");
          if (c.claim) proof.dataset.claim = c.claim;
          row.appendChild(proof);
        }
        fillVerdicts();
      }
    }
  }
}

document.querySelectorAll("table.sortable").forEach(sortable);
fillVerdicts();
auditButton();
tryIt();
