// The Tether dashboard page: reads the server's live stream (/events, Server-Sent Events over
// fetch, so the token travels in a header) and draws the totals, one page of peers and the log.
//
// Every string a peer chose (client ids, file names, reasons) reaches the page through
// textContent only, after `safe()` has made its control, bidi and invisible characters visible
// as escapes: nothing from a peer is ever parsed as HTML or reorders what the reader sees.

// Same set as the CLI's safe-text: the backslash, controls, format characters (bidi, zero
// width, tags), separators but the space, lone surrogates, and the characters that draw nothing.
const UNSAFE = /(?! )[\\\p{Cc}\p{Cf}\p{Z}\p{Cs}\u115f\u1160\u3164\uffa0]|\u034f|\u17b4|\u17b5/gu;
const NAMED = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\\': '\\\\' };

function escapeChar(char) {
  const named = NAMED[char];
  if (named !== undefined) return named;
  const code = char.codePointAt(0) ?? 0;
  if (code < 0x100) return `\\x${code.toString(16).padStart(2, '0')}`;
  if (code <= 0xffff) return `\\u${code.toString(16).padStart(4, '0')}`;
  return `\\u{${code.toString(16)}}`;
}

/** A peer's string, with every control, bidi, invisible or separator character escaped. */
function safe(text) {
  return String(text).replace(UNSAFE, escapeChar);
}

// The token comes in the address's fragment (#token=...), which the browser never sends.
const token = new URLSearchParams(location.hash.slice(1)).get('token') ?? '';

const view = { sort: 'client', dir: 'asc', filter: '', page: 0, size: 50 };
const NUMERIC = new Set([
  'rtt',
  'messagesIn',
  'messagesOut',
  'bytesIn',
  'bytesOut',
  'queue',
  'transfers',
  'lastSeen',
]);
const LOG_LINES = 500;

let controller;
let retryMs = 500;
let previous;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function setStatus(state, text) {
  const status = document.getElementById('status');
  status.dataset.state = state;
  status.textContent = text;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
function bytes(n) {
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? Math.round(value) : value.toFixed(1)} ${UNITS[unit]}`;
}

function count(n) {
  return n.toLocaleString('en-US');
}

function ago(ms) {
  if (ms < 1000) return 'now';
  if (ms < 60_000) return `${Math.round(ms / 1000)} s ago`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min ago`;
  return `${Math.round(ms / 3_600_000)} h ago`;
}

function time(ms) {
  return new Date(ms).toLocaleTimeString('en-GB', { hour12: false });
}

function renderTotals(update) {
  const totals = update.totals;
  for (const node of document.querySelectorAll('[data-total]')) {
    const key = node.dataset.total;
    const value = totals[key];
    node.textContent = key.startsWith('bytes') ? bytes(value) : count(value);
  }
  for (const node of document.querySelectorAll('[data-rate]')) {
    const key = node.dataset.rate;
    // Byte totals come from a pass over all sessions, taken less often with many of them: their
    // rate is over the passes' own times, and kept until the next pass.
    const sampled = key.startsWith('bytes');
    const now = sampled ? totals.sampledAt : update.time;
    const then =
      previous === undefined ? undefined : sampled ? previous.totals.sampledAt : previous.time;
    if (then === undefined || now <= then) {
      if (!sampled || previous === undefined) node.textContent = '';
      continue;
    }
    const perSecond = ((totals[key] - previous.totals[key]) * 1000) / (now - then);
    node.textContent = sampled ? `${bytes(perSecond)}/s` : `${count(Math.round(perSecond))}/s`;
  }
  const state = totals.draining ? 'draining' : totals.listening ? 'ready' : 'not listening';
  document.getElementById('server-state').textContent = state;
  // Keep the last pass's figures for byte rates until a new pass comes.
  previous =
    previous !== undefined && totals.sampledAt === previous.totals.sampledAt
      ? {
          time: update.time,
          totals: {
            ...totals,
            bytesIn: previous.totals.bytesIn,
            bytesOut: previous.totals.bytesOut,
            sampledAt: previous.totals.sampledAt,
          },
        }
      : update;
}

function sparkline(samples) {
  const canvas = el('canvas', 'spark');
  const ratio = window.devicePixelRatio || 1;
  canvas.width = 90 * ratio;
  canvas.height = 20 * ratio;
  if (samples.length < 2) return canvas;
  const context = canvas.getContext('2d');
  const max = Math.max(...samples);
  const min = Math.min(...samples);
  const span = max - min || 1;
  const step = canvas.width / (samples.length - 1);
  context.strokeStyle = getComputedStyle(document.documentElement).getPropertyValue('--accent');
  context.lineWidth = ratio;
  context.beginPath();
  samples.forEach((value, i) => {
    const y = canvas.height - 1 - ((value - min) / span) * (canvas.height - 2);
    if (i === 0) context.moveTo(0, y);
    else context.lineTo(i * step, y);
  });
  context.stroke();
  canvas.title = `last ${samples.length} samples: ${min} to ${max} ms`;
  return canvas;
}

function transferCell(transfers) {
  const cell = el('td', 'transfers');
  for (const t of transfers) {
    const row = el('div', 'transfer');
    row.dataset.transferId = t.id;
    row.append(el('span', 'direction', t.direction === 'in' ? '↑' : '↓'));
    const name = el('span', 'name', safe(t.name));
    name.title = safe(t.name);
    row.append(name);
    const bar = el('progress');
    bar.max = t.size || 1;
    bar.value = t.bytes;
    row.append(bar);
    const percent = t.size > 0 ? Math.floor((t.bytes / t.size) * 100) : 100;
    row.append(el('span', 'percent', `${percent}%`));
    cell.append(row);
  }
  return cell;
}

// A row leaves out its RTT history when it has not changed since the stream last sent it: the
// histories of the rows shown, by session id, for the stream they came on.
function renderPeers(update, histories) {
  const page = update.peers;
  const shown = new Map();
  const rows = page.rows.map((peer) => {
    const rtt = peer.rtt ?? histories.get(peer.id) ?? [];
    shown.set(peer.id, rtt);
    const tr = el('tr');
    tr.dataset.peerId = peer.id;
    const client = el('td', 'client-id', safe(peer.clientId));
    client.title = `session ${peer.id}`;
    tr.append(client);
    tr.append(el('td', 'address', safe(peer.address)));
    tr.append(
      el(
        'td',
        peer.connected ? 'state' : 'state state-away',
        peer.connected ? 'connected' : 'away',
      ),
    );
    tr.append(el('td', 'rtt num', peer.srtt === null ? '–' : `${peer.srtt} ± ${peer.rttvar}`));
    const history = el('td', 'rtt-history');
    history.append(sparkline(rtt));
    tr.append(history);
    tr.append(el('td', 'num', count(peer.messagesIn)));
    tr.append(el('td', 'num', count(peer.messagesOut)));
    tr.append(el('td', 'num', bytes(peer.bytesIn)));
    tr.append(el('td', 'num', bytes(peer.bytesOut)));
    tr.append(
      el(
        'td',
        'num outbox',
        peer.queueDepth === 0 ? '0' : `${count(peer.queueDepth)} (${bytes(peer.queueBytes)})`,
      ),
    );
    tr.append(transferCell(peer.transfers));
    tr.append(el('td', 'muted', ago(update.time - peer.lastSeen)));
    return tr;
  });
  document.getElementById('rows').replaceChildren(...rows);
  histories.clear();
  for (const [id, rtt] of shown) histories.set(id, rtt);
  const first = page.matched === 0 ? 0 : page.page * page.size + 1;
  const last = Math.min((page.page + 1) * page.size, page.matched);
  const matching = page.filter === '' ? '' : ` matching of ${count(page.total)}`;
  document.getElementById('page-info').textContent =
    `${count(first)}–${count(last)} of ${count(page.matched)}${matching} peers (page ${page.page + 1}/${page.pages})`;
  view.page = page.page;
  document.getElementById('prev').disabled = page.page === 0;
  document.getElementById('next').disabled = page.page >= page.pages - 1;
  for (const th of document.querySelectorAll('th[data-sort]')) {
    if (th.dataset.sort === page.sort)
      th.setAttribute('aria-sort', page.desc ? 'descending' : 'ascending');
    else th.removeAttribute('aria-sort');
  }
}

function renderLog(entries) {
  const list = document.getElementById('log');
  for (const entry of entries) {
    const item = el('li');
    item.dataset.kind = entry.kind;
    item.append(el('span', 'muted', `${time(entry.time)} `));
    item.append(el('span', `kind kind-${entry.kind}`, entry.kind));
    item.append(el('span', 'client-id', ` ${safe(entry.clientId)}`));
    item.append(el('span', 'muted', ` ${safe(entry.address)}`));
    if (entry.code) item.append(el('span', 'code', ` ${safe(entry.code)}`));
    if (entry.detail) item.append(el('span', 'detail', ` ${safe(entry.detail)}`));
    list.prepend(item);
  }
  while (list.childElementCount > LOG_LINES) list.lastElementChild.remove();
}

function render(update, histories) {
  renderTotals(update);
  renderPeers(update, histories);
  renderLog(update.log);
}

function query() {
  const params = new URLSearchParams({
    sort: view.sort,
    dir: view.dir,
    page: String(view.page),
    size: String(view.size),
  });
  if (view.filter !== '') params.set('filter', view.filter);
  return params;
}

// One stream at a time: a change of view aborts it and opens the next.
async function connect() {
  controller?.abort();
  const mine = new AbortController();
  controller = mine;
  const headers = token === '' ? {} : { Authorization: `Bearer ${token}` };
  try {
    const response = await fetch(`events?${query()}`, {
      headers,
      signal: mine.signal,
      cache: 'no-store',
    });
    if (response.status === 401) {
      setStatus('error', 'token required: open this page as /#token=<token>');
      return;
    }
    if (!response.ok || response.body === null) throw new Error(`HTTP ${response.status}`);
    setStatus('live', 'live');
    retryMs = 500;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    // What this stream sent of each row's RTT history (a new stream sends them all again).
    const histories = new Map();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event
          .split('\n')
          .filter((line) => line.startsWith('data: '))
          .map((line) => line.slice(6))
          .join('\n');
        if (data !== '') render(JSON.parse(data), histories);
        end = buffer.indexOf('\n\n');
      }
    }
    throw new Error('stream ended');
  } catch (error) {
    if (mine.signal.aborted) return;
    setStatus('error', `reconnecting (${error.message})`);
    setTimeout(() => {
      if (controller === mine) connect();
    }, retryMs);
    retryMs = Math.min(retryMs * 2, 5000);
  }
}

function changeView(change) {
  Object.assign(view, change);
  // The log stays; the stream sends the last entries again: start it over.
  document.getElementById('log').replaceChildren();
  connect();
}

function start() {
  for (const th of document.querySelectorAll('th[data-sort]')) {
    th.addEventListener('click', () => {
      const sort = th.dataset.sort;
      const dir =
        sort === view.sort
          ? view.dir === 'asc'
            ? 'desc'
            : 'asc'
          : NUMERIC.has(sort)
            ? 'desc'
            : 'asc';
      changeView({ sort, dir, page: 0 });
    });
  }
  let typing;
  document.getElementById('filter').addEventListener('input', (event) => {
    clearTimeout(typing);
    typing = setTimeout(() => changeView({ filter: event.target.value.trim(), page: 0 }), 250);
  });
  document.getElementById('size').addEventListener('change', (event) => {
    changeView({ size: Number(event.target.value), page: 0 });
  });
  document
    .getElementById('prev')
    .addEventListener('click', () => changeView({ page: Math.max(0, view.page - 1) }));
  document
    .getElementById('next')
    .addEventListener('click', () => changeView({ page: view.page + 1 }));
  connect();
}

start();
