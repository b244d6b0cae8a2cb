// gitopsim web view: the page of `gitopsim up` (live: JSON API + server-sent
// events) and of `gitopsim run --html` (report: data embedded in the page).
// Plain ES2020, no dependencies, no build step: the Go binary embeds this file
// and, for a report, inlines it into a single HTML file. The contract with the
// server is sim/ui/API.md.
//
// Shape: one state object S, merged from /api/state and the stream; render
// functions that each redraw one part of the page from S; a throttle so that
// a busy stream (1,000 clusters) costs a few redraws a second, not one per
// message.
'use strict';
(() => {

// ---------------------------------------------------------------- utilities

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

// h builds a DOM element: h('td', {class: 'x', title: 't'}, 'text', child…).
// No listeners: clicks are delegated by data-action (see bindActions), so
// that patch() may reuse any element for any content.
function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c != null && c !== false) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

// morph makes the children of `into` look like those of `from`, reusing
// the elements in place (matched by position) and only touching what
// differs. Parts of the page redraw several times a second; keeping their
// elements means no flicker, no lost scroll position or hover, and a
// browser test that found an element can still click it.
function morph(into, from) {
  const want = Array.from(from.childNodes);
  for (let i = 0; i < want.length; i++) {
    const n = want[i], o = into.childNodes[i];
    if (!o) into.appendChild(n);
    else if (o.nodeType !== n.nodeType || o.nodeName !== n.nodeName) into.replaceChild(n, o);
    else if (n.nodeType === Node.ELEMENT_NODE) { syncAttributes(o, n); morph(o, n); }
    else if (o.nodeValue !== n.nodeValue) o.nodeValue = n.nodeValue;
  }
  while (into.childNodes.length > want.length) into.removeChild(into.lastChild);
}

function syncAttributes(o, n) {
  for (const { name, value } of Array.from(n.attributes)) if (o.getAttribute(name) !== value) o.setAttribute(name, value);
  for (const { name } of Array.from(o.attributes)) if (!n.hasAttribute(name)) o.removeAttribute(name);
}

// patch sets an element's children, in place.
function patch(el, ...children) {
  const tmp = document.createElement(el.tagName);
  tmp.append(...children.flat(Infinity).filter(c => c != null && c !== false && c !== ''));
  morph(el, tmp);
}

// esc makes text safe inside markup built as a string (the SVG timeline).
const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const esc = s => String(s ?? '').replace(/[&<>"']/g, c => ESC[c]);

const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });
const ms = iso => (iso ? Date.parse(iso) : NaN);
const pad = n => String(n).padStart(2, '0');
const short = sha => (sha ? String(sha).slice(0, 7) : '');
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

// Simulated time is shown in UTC: the simulator's clock is not the viewer's
// wall clock, and a local time zone would only add confusion.
const fmtHMS = t => { const d = new Date(t); return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`; };
const fmtHM = t => { const d = new Date(t); return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`; };
const fmtDay = t => { const d = new Date(t); return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]}`; };
const fmtDate = t => { const d = new Date(t); return `${DAYS[d.getUTCDay()]} ${fmtDay(t)} ${d.getUTCFullYear()}`; };
const dayOf = t => Math.floor(t / 86400e3);
// fmtWall writes a wall-clock time (when a report was written), or the text as is.
const fmtWall = iso => { const t = ms(iso); return Number.isFinite(t) ? `${fmtDate(t)} ${fmtHM(t)} UTC` : String(iso); };

// fmtDur writes seconds the way a presenter says them: "45s", "2m30s",
// "1h52m", "3d2h".
function fmtDur(sec) {
  if (!Number.isFinite(sec)) return '';
  if (sec < 0) sec = 0;
  if (sec < 10 && sec % 1) return `${sec.toFixed(1)}s`;
  let s = Math.round(sec);
  if (s < 60) return `${s}s`;
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hr = Math.floor(s / 3600); s -= hr * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (d) return hr ? `${d}d${hr}h` : `${d}d`;
  if (hr) return m ? `${hr}h${pad(m)}m` : `${hr}h`;
  return s && m < 10 ? `${m}m${pad(s)}s` : `${m}m`;
}

// parseOffset reads a step offset of a report: "00:10:00", "26:00:00",
// "3d02:00:31", "00:00:01.5". Seconds, or NaN.
function parseOffset(s) {
  const m = /^\s*(?:(\d+)d)?(\d+):(\d{1,2}):(\d{1,2}(?:\.\d+)?)\s*$/.exec(String(s ?? ''));
  if (!m) return NaN;
  return (+(m[1] || 0)) * 86400 + (+m[2]) * 3600 + (+m[3]) * 60 + parseFloat(m[4]);
}

// ------------------------------------------------------------------- state

const S = {
  mode: 'live',
  report: null, reportIndex: 0,
  clock: { now: null, scale: 1, paused: true, controllable: false, reason: '' },
  clockBase: NaN, clockWall: 0,     // clock.now and the wall time it arrived at
  clusters: new Map(),              // key → cluster row
  spans: new Map(),                 // id → span
  events: [], seqs: new Set(),
  repos: [], gitDown: false, resourceGroups: [],
  scenario: null,
  selected: null, detail: null, detailError: '',
  filters: { rg: '', state: '', name: '' },
  windowSec: 0,
  needResync: false,
};

const MAX_EVENTS = 50000;   // kept for the timeline; the log shows the last 200
const LOG_EVENTS = 200;

// virtualNow extrapolates the simulated clock from its last message, so the
// page can show time moving without asking the server.
function virtualNow() {
  if (!Number.isFinite(S.clockBase)) return Date.now();
  if (S.mode !== 'live' || S.clock.paused) return S.clockBase;
  return S.clockBase + (S.clock.scale || 0) * (performance.now() - S.clockWall);
}

function setClock(c) {
  if (!c) return;
  S.clock = { ...S.clock, ...c };
  S.clockBase = ms(S.clock.now);
  S.clockWall = performance.now();
  invalidate('clock', 'controls', 'timeline');
}

function mergeClusters(rows, removed) {
  for (const c of rows || []) {
    if (!c || !c.key) continue;
    S.clusters.set(c.key, c);
    if (c.key === S.selected) scheduleDetailRefresh();
  }
  for (const key of removed || []) S.clusters.delete(key);
  invalidate('grid', 'filters', 'timeline', 'detail');
}

function mergeSpans(spans) {
  for (const s of spans || []) if (s && s.id) S.spans.set(s.id, s);
  invalidate('timeline', 'detail');
}

// addEvents appends timeline events, ignoring ones already seen (the stream
// may repeat some after a reconnect or after /api/events filled a gap).
function addEvents(evs) {
  let unordered = false;
  for (const ev of evs || []) {
    if (!ev) continue;
    const seq = ev.seq ?? `t${ev.time}/${ev.kind}/${ev.action}/${ev.cluster}/${ev.message}`;
    if (S.seqs.has(seq)) continue;
    S.seqs.add(seq);
    const last = S.events[S.events.length - 1];
    if (last && typeof seq === 'number' && typeof last.seq === 'number' && seq < last.seq) unordered = true;
    S.events.push(ev);
    if (S.selected && ev.cluster === S.selected) scheduleDetailRefresh();
  }
  if (unordered) S.events.sort((a, b) => a.seq - b.seq);
  if (S.events.length > MAX_EVENTS) S.events.splice(0, S.events.length - MAX_EVENTS);
  invalidate('timeline', 'log');
}

function setRepos(msg) {
  if (!msg) return;
  if (Array.isArray(msg.repos)) S.repos = msg.repos;
  if (typeof msg.gitDown === 'boolean') S.gitDown = msg.gitDown;
  invalidate('git');
}

// applyState loads a whole state object (GET /api/state, or one report).
function applyState(st) {
  S.clusters = new Map((st.clusters || []).filter(c => c && c.key).map(c => [c.key, c]));
  S.spans = new Map();
  mergeSpans(st.spans);
  // The state holds the whole timeline: replace ours (a restarted server
  // numbers its events from 1 again).
  S.events = [];
  S.seqs = new Set();
  addEvents(st.events);
  S.resourceGroups = st.resourceGroups || [];
  S.scenario = st.scenario || null;
  setRepos({ repos: st.repos || [], gitDown: !!st.gitDown });
  setClock(st.clock || lastEventClock());
  invalidate('all');
}

// lastEventClock stands in for a report without a clock: it stopped at the
// last thing that happened.
function lastEventClock() {
  const last = S.events[S.events.length - 1];
  return { now: last ? last.time : new Date().toISOString(), scale: 1, paused: true, controllable: false };
}

// --------------------------------------------------------------- rendering

// Parts are redrawn at most four times a second, whatever the stream does.
const dirty = new Set();
let renderTimer = 0, lastRender = 0;
const RENDER_EVERY = 250;

function invalidate(...parts) {
  for (const p of parts) dirty.add(p);
  if (renderTimer) return;
  const wait = Math.max(0, RENDER_EVERY - (performance.now() - lastRender));
  renderTimer = setTimeout(flush, wait);
}

const RENDERERS = [
  ['clock', renderClock], ['controls', renderControls], ['scenario', renderScenario],
  ['filters', renderFilterOptions], ['grid', renderGrid], ['detail', renderDetail],
  ['git', renderGit], ['timeline', renderTimeline], ['log', renderLog],
];

// flushNow draws at once (first paint, a report switch) instead of waiting.
function flushNow() {
  clearTimeout(renderTimer);
  flush();
}

function flush() {
  renderTimer = 0;
  lastRender = performance.now();
  const all = dirty.has('all');
  const parts = new Set(dirty);
  dirty.clear();
  for (const [name, fn] of RENDERERS) {
    if (!all && !parts.has(name)) continue;
    try { fn(); } catch (e) { console.error(`render ${name}:`, e); }
  }
}

// ------------------------------------------------------------ header/clock

function renderClock() {
  const t = virtualNow();
  const el = $('#clock-now');
  if (!Number.isFinite(t)) return;
  const date = fmtDate(t), time = fmtHMS(t);
  const [dEl, tEl] = [$('.clock-date', el), $('.clock-time', el)];
  if (dEl.textContent !== date) dEl.textContent = date;
  if (tEl.textContent !== time) tEl.textContent = time;
  el.dataset.now = new Date(t).toISOString();
  const scale = S.clock.scale;
  $('#clock-scale').textContent = S.mode === 'report' ? 'end of run' : scale ? `${+Number(scale).toPrecision(6)}×` : '';
  $('#clock-paused').hidden = !(S.mode === 'live' && S.clock.paused);
  document.body.classList.toggle('paused', S.mode === 'live' && !!S.clock.paused);
}

const CLOCK_BUTTONS = ['pause', 'resume', 'scale-1', 'scale-60', 'scale-3600', 'scale-custom', 'scale-set', 'jump-15m', 'jump-1h', 'jump-48h'];

// renderControls disables the clock controls on a clock that cannot be
// controlled, saying why in the tooltip, and marks the current speed.
function renderControls() {
  const { controllable, reason, paused, scale } = S.clock;
  for (const id of CLOCK_BUTTONS) {
    const b = document.getElementById(id);
    b.disabled = !controllable;
    b.title = controllable ? (b.dataset.title || '') : (reason || 'This clock cannot be controlled');
    if (b.dataset.scale) b.classList.toggle('active', Number(b.dataset.scale) === scale);
  }
  $('#pause').classList.toggle('active', !!paused);
}

function setConn(state) {
  const el = $('#conn');
  el.textContent = state;
  el.className = `badge conn live-only conn-${state.replace(/\W/g, '')}`;
}

// -------------------------------------------------------------- cluster grid

// Worst first. A failed configuration outranks connectivity (it needs a
// person); Offline/Expired outrank Pending, since they explain it.
const STATUS = {
  failed: 'Failed', expired: 'Expired', offline: 'Offline', noncompliant: 'Noncompliant',
  pending: 'Pending', connecting: 'Connecting', other: 'Other', installed: 'Installed', none: 'No configuration',
};
const STATUS_ORDER = Object.keys(STATUS);
const STATE_RANK = { Failed: 5, Noncompliant: 4, Pending: 3, Installed: 1 };

function worstState(c) {
  let worst = null, rank = -1;
  for (const cfg of c.configurations || []) {
    const r = STATE_RANK[cfg.state] ?? 2;
    if (r > rank) { rank = r; worst = cfg.state || 'Unknown'; }
  }
  return worst || 'none';
}

function cellStatus(c) {
  const st = worstState(c);
  if (st === 'Failed') return 'failed';
  if (c.connectivity === 'Expired') return 'expired';
  if (c.connectivity === 'Offline') return 'offline';
  if (st === 'Noncompliant') return 'noncompliant';
  if (st === 'Pending') return 'pending';
  if (c.connectivity === 'Connecting') return 'connecting';
  if (st === 'Installed') return 'installed';
  return st === 'none' ? 'none' : 'other';
}

const CONNECTIVITY_FILTERS = new Set(['Connected', 'Connecting', 'Offline', 'Expired']);

function matches(c) {
  const f = S.filters;
  if (f.rg && c.resourceGroup !== f.rg) return false;
  if (f.name && !`${c.name}`.toLowerCase().includes(f.name.toLowerCase())) return false;
  if (!f.state) return true;
  if (CONNECTIVITY_FILTERS.has(f.state)) return c.connectivity === f.state;
  return worstState(c) === f.state;
}

const filtering = () => !!(S.filters.rg || S.filters.state || S.filters.name);

function sortedClusters() {
  return Array.from(S.clusters.values()).sort((a, b) =>
    collator.compare(a.resourceGroup || '', b.resourceGroup || '') || collator.compare(a.name || '', b.name || ''));
}

// renderFilterOptions keeps the resource group select in step with the
// fleet, without losing the current choice.
function renderFilterOptions() {
  const sel = $('#filter-rg');
  const rgs = new Set(S.resourceGroups);
  for (const c of S.clusters.values()) if (c.resourceGroup) rgs.add(c.resourceGroup);
  const want = ['', ...Array.from(rgs).sort(collator.compare)];
  const have = Array.from(sel.options, o => o.value);
  if (want.join('\n') === have.join('\n')) return;
  sel.replaceChildren(...want.map(v => h('option', { value: v }, v || 'All')));
  sel.value = want.includes(S.filters.rg) ? S.filters.rg : '';
}

const CARD_LIMIT = 12;

function renderGrid() {
  const all = sortedClusters();
  const shown = all.filter(matches);
  renderCounts(all, shown);
  const grid = $('#grid');
  const cards = shown.length <= CARD_LIMIT;
  grid.className = `grid ${cards ? 'cards' : 'cells'}`;
  grid.style.setProperty('--cell', `${cellSize(shown.length)}px`);
  if (!shown.length) {
    patch(grid, h('p', { class: 'hint' }, all.length ? 'No cluster matches the filter.' : 'No clusters yet.'));
    return;
  }
  const make = c => (cards ? clusterCard(c) : clusterCell(c));
  if (cards) { patch(grid, shown.map(make)); return; }
  // Many clusters: squares, grouped by resource group when there are several.
  const groups = groupBy(shown, c => c.resourceGroup || '');
  if (groups.size === 1) { patch(grid, h('div', { class: 'cell-row' }, shown.map(make))); return; }
  patch(grid, Array.from(groups, ([rg, cs]) => h('div', { class: 'rg-group' },
    h('h3', {}, rg, h('span', { class: 'note' }, ` ${cs.length}`)),
    h('div', { class: 'cell-row' }, cs.map(make)))));
}

const cellSize = n => (n <= 60 ? 34 : n <= 200 ? 24 : n <= 500 ? 18 : 13);

function groupBy(items, keyOf) {
  const m = new Map();
  for (const it of items) {
    const k = keyOf(it);
    if (!m.has(k)) m.set(k, []);
    m.get(k).push(it);
  }
  return m;
}

function cellAttrs(c, kind) {
  const status = cellStatus(c);
  return {
    class: `cluster ${kind} st-${status}${c.linksOffline ? ' links-cut' : ''}${c.key === S.selected ? ' selected' : ''}`,
    'data-cluster': c.key, 'data-connectivity': c.connectivity || 'Unknown',
    'data-state': worstState(c), 'data-status': status,
  };
}

function clusterTooltip(c) {
  const lines = [`${c.key}`, `${c.connectivity || 'Unknown'}${c.linksOffline ? ' (links cut)' : ''}`];
  for (const cfg of c.configurations || []) lines.push(`${cfg.name}: ${cfg.state || '?'} ${short(cfg.revision)}`);
  return lines.join('\n');
}

function clusterCell(c) {
  return h('div', { ...cellAttrs(c, 'cell'), title: clusterTooltip(c) });
}

function clusterCard(c) {
  const cfgs = c.configurations || [];
  return h('div', { ...cellAttrs(c, 'card'), tabindex: 0, title: clusterTooltip(c) },
    h('div', { class: 'card-head' },
      h('span', { class: 'card-name' }, c.name),
      h('span', { class: `badge conn-${(c.connectivity || 'unknown').toLowerCase()}` }, c.connectivity || 'Unknown')),
    h('div', { class: 'card-sub' }, c.resourceGroup,
      c.lastHeartbeat ? ` · heartbeat ${fmtHMS(ms(c.lastHeartbeat))}` : '',
      c.linksOffline ? h('span', { class: 'badge cut' }, 'links cut') : ''),
    cfgs.length ? h('ul', { class: 'card-cfgs' }, cfgs.map(cfg => h('li', {},
      h('span', { class: `chip state-${(cfg.state || 'unknown').toLowerCase()}` }, cfg.state || '?'),
      h('span', { class: 'cfg-name' }, cfg.name),
      cfg.revision ? h('code', { title: cfg.revision }, short(cfg.revision)) : '',
      cfg.message ? h('div', { class: `cfg-msg level-${(cfg.level || '').toLowerCase()}`, title: cfg.message }, cfg.message) : '')))
      : h('div', { class: 'card-sub' }, 'no configuration'));
}

// renderCounts is the legend: a swatch and a count per status, clickable to
// filter; it counts what the filter shows, and the total when they differ.
function renderCounts(all, shown) {
  const n = groupBy(shown, cellStatus);
  const parts = STATUS_ORDER.slice().reverse().filter(s => n.has(s))
    .map(s => `${n.get(s).length.toLocaleString('en')} ${STATUS[s]}`);
  let text = parts.join(' · ') || '0 clusters';
  if (shown.length !== all.length) text += `  (${shown.length.toLocaleString('en')} of ${all.length.toLocaleString('en')})`;
  $('#counts').textContent = text;
  patch($('#legend'), STATUS_ORDER.filter(s => n.has(s) || ['installed', 'pending', 'failed', 'offline'].includes(s))
    .map(s => h('button', {
      type: 'button', class: `legend-item st-${s}`, 'data-status': s, 'data-action': 'legend',
      title: STATUS_FILTER[s] ? `Show only ${STATUS[s]} (again: all)` : STATUS[s],
    }, h('i', { class: 'sw' }), h('b', {}, (n.get(s)?.length || 0).toLocaleString('en')), ` ${STATUS[s]}`)));
}

const STATUS_FILTER = { failed: 'Failed', expired: 'Expired', offline: 'Offline', noncompliant: 'Noncompliant', pending: 'Pending', installed: 'Installed' };

function setFilter(name, value) {
  S.filters[name] = value;
  const input = { rg: '#filter-rg', state: '#filter-state', name: '#filter-name' }[name];
  if ($(input).value !== value) $(input).value = value;
  invalidate('grid', 'timeline');
}

// ---------------------------------------------------------------- timeline

const TL = {
  label: 170, right: 28, axis: 30, globalH: 34, stepsH: 28,
  rowH: 17, barH: 13, lanePad: 4, stripH: 5, maxLanes: 40, maxRows: 4, charW: 6.3,
};
// Global lane: what happens to the fleet rather than to one cluster.
const GLOBAL_KINDS = new Set(['push', 'config', 'policy', 'git', 'clock', 'step']);
// Cluster lanes: what explains a cluster's delays.
const LANE_KINDS = new Set(['cluster', 'link', 'agent']);
const TICK_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
  86400, 172800, 345600, 604800, 1209600].map(s => s * 1000);

// r1 rounds a coordinate to a tenth of a pixel: plenty, and it keeps the
// attributes short and unchanged between redraws when nothing moved.
const r1 = v => Math.round(v * 10) / 10;
const spanEnd = (s, now) => (s.end ? ms(s.end) : now);
const spanSeconds = (s, now) => (s.end && Number.isFinite(s.seconds) ? s.seconds : (spanEnd(s, now) - ms(s.start)) / 1000);

// scenarioSteps gives the report's steps with absolute times.
function scenarioSteps() {
  const sc = S.scenario, start = ms(sc?.start);
  if (!sc || !Number.isFinite(start)) return [];
  return (sc.steps || []).map(st => {
    const at = start + parseOffset(st.at) * 1000;
    let end = start + parseOffset(st.end) * 1000;
    if (!Number.isFinite(end) || end < at) end = at;
    return { ...st, t0: at, t1: end };
  }).filter(st => Number.isFinite(st.t0));
}

// timeRange fits the axis from the first thing that happened to now.
function timeRange(now) {
  let lo = Infinity, hi = -Infinity;
  const see = t => { if (Number.isFinite(t)) { if (t < lo) lo = t; if (t > hi) hi = t; } };
  for (const ev of S.events) see(ms(ev.time));
  for (const s of S.spans.values()) { see(ms(s.start)); see(ms(s.end)); }
  if (S.scenario) see(ms(S.scenario.start));
  for (const st of scenarioSteps()) { see(st.t0); see(st.t1); }
  see(now);
  if (S.mode === 'live') hi = Math.max(now, hi === -Infinity ? now : hi);
  if (!Number.isFinite(lo)) { lo = Date.now() - 3600e3; hi = Date.now(); }
  if (S.windowSec) lo = Math.max(lo, hi - S.windowSec * 1000);
  if (hi - lo < 60e3) lo = hi - 60e3;
  const padMs = (hi - lo) * 0.01;
  return [lo - padMs, hi + padMs];
}

// laneEvent: a cluster's events worth a mark on its lane: links and
// connectivity changing, and the agent's warnings and errors. Its creation
// and routine syncs would only be noise at fleet scale.
function laneEvent(ev) {
  if (!ev.cluster || !LANE_KINDS.has(ev.kind)) return false;
  if (ev.kind === 'agent') return ev.level === 'warn' || ev.level === 'error';
  return ev.action !== 'created' || ev.level === 'warn' || ev.level === 'error';
}

// timelineLanes picks the clusters that get a lane: those with spans or
// telling events, within the grid's filter; the ones that were late or
// offline first, since they are the story.
function timelineLanes() {
  const spansBy = groupBy(S.spans.values(), s => s.cluster || '');
  const evBy = groupBy(S.events.filter(laneEvent), ev => ev.cluster);
  spansBy.delete('');
  const keys = new Set([...spansBy.keys(), ...evBy.keys()]);
  const cand = Array.from(keys).filter(k => {
    const c = S.clusters.get(k);
    return c ? matches(c) : !filtering();
  });
  const score = k => {
    const sp = spansBy.get(k) || [];
    const c = S.clusters.get(k);
    if (sp.some(s => s.late)) return 4;
    if (sp.some(s => s.kind === 'offline')) return 3;
    if (c && ['failed', 'expired', 'offline'].includes(cellStatus(c))) return 2;
    if ((evBy.get(k) || []).some(ev => ev.level === 'error' || ev.level === 'warn')) return 1;
    return 0;
  };
  const scores = new Map(cand.map(k => [k, score(k)]));
  cand.sort((a, b) => scores.get(b) - scores.get(a) || collator.compare(a, b));
  const shown = cand.slice(0, TL.maxLanes);
  if (S.selected && cand.includes(S.selected) && !shown.includes(S.selected)) shown[shown.length - 1] = S.selected;
  return { shown, more: cand.length - shown.length, spansBy, evBy };
}

function renderTimeline() {
  const svg = $('#timeline');
  const width = Math.max(640, Math.floor(svg.parentElement.clientWidth));
  const now = virtualNow();
  const [t0, t1] = timeRange(now);
  const plotW = width - TL.label - TL.right;
  const x = t => r1(TL.label + ((Math.min(Math.max(t, t0), t1) - t0) / (t1 - t0)) * plotW);
  // Layers, bottom up: lane backgrounds, marks through all lanes (jumps,
  // failed steps), bars and markers, the "now" line.
  const ctx = { x, t0, t1, now, width, back: [], mid: [], front: [], top: [] };
  let y = TL.axis;

  y += globalLane(ctx, y);
  if (S.mode === 'report' && S.scenario) y += stepsLane(ctx, y);
  const { shown, more, spansBy, evBy } = timelineLanes();
  const names = laneNames(shown);
  shown.forEach((key, i) => { y += clusterLane(ctx, key, names.get(key), y, i, spansBy.get(key) || [], evBy.get(key) || []); });
  if (!shown.length) {
    ctx.front.push(`<text class="empty" x="${TL.label + 8}" y="${y + 20}">${S.events.length || S.spans.size ? 'No cluster lanes for this filter.' : 'Nothing has happened yet.'}</text>`);
    y += 32;
  }
  const height = y + 8;

  if (S.mode === 'live') ctx.top.push(`<line class="now-line" x1="${x(now)}" x2="${x(now)}" y1="${TL.axis - 6}" y2="${height}"/><text class="now-label" x="${x(now) - 4}" y="${TL.axis - 9}" text-anchor="end">now</text>`);
  svg.setAttribute('width', width);
  svg.setAttribute('height', height);
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  const next = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  next.innerHTML = svgDefs() + axisMarkup(ctx, height) + ctx.back.join('') + ctx.mid.join('') +
    ctx.front.join('') + ctx.top.join('');
  morph(svg, next);

  const note = $('#timeline-more');
  note.hidden = more <= 0;
  note.textContent = more > 0 ? `+${more.toLocaleString('en')} more cluster${more === 1 ? '' : 's'} with activity — narrow the filter to see them.` : '';
}

// laneNames labels lanes by name, or by key when names repeat across groups.
function laneNames(keys) {
  const nameOf = k => S.clusters.get(k)?.name || k.split('/').pop();
  const count = groupBy(keys, nameOf);
  return new Map(keys.map(k => [k, count.get(nameOf(k)).length > 1 ? k : nameOf(k)]));
}

function svgDefs() {
  return '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">' +
    '<rect width="6" height="6" class="hatch-bg"/><line x1="0" y1="0" x2="0" y2="6" class="hatch-line"/></pattern></defs>';
}

function axisMarkup(ctx, height) {
  const { t0, t1, x } = ctx;
  const maxTicks = Math.max(2, Math.floor((ctx.width - TL.label - TL.right) / 100));
  const step = TICK_STEPS.find(s => (t1 - t0) / s <= maxTicks) || TICK_STEPS[TICK_STEPS.length - 1];
  const multiDay = dayOf(t0) !== dayOf(t1);
  let out = `<rect class="axis-bg" x="0" y="0" width="${ctx.width}" height="${TL.axis - 4}"/><text class="tick tz" x="8" y="18">UTC</text>`;
  let prevDay = null;
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
    const px = x(t);
    let label = step >= 86400e3 ? fmtDay(t) : step < 60e3 ? fmtHMS(t) : fmtHM(t);
    if (step < 86400e3 && multiDay && dayOf(t) !== prevDay) label = `${fmtDay(t)} ${label}`;
    prevDay = dayOf(t);
    out += `<line class="gridline" x1="${px}" x2="${px}" y1="${TL.axis - 6}" y2="${height}"/>` +
      `<text class="tick" x="${px}" y="18" text-anchor="middle">${esc(label)}</text>`;
  }
  return out;
}

function laneBackground(ctx, y, hgt, cls, attrs = '') {
  ctx.back.push(`<rect class="lane-bg ${cls}" ${attrs} x="0" y="${y}" width="${ctx.width}" height="${hgt}"/>`);
}

function laneLabel(ctx, y, hgt, text, attrs = '', status = '') {
  const maxChars = Math.floor((TL.label - 26) / 7);
  const shownText = text.length > maxChars ? `${text.slice(0, maxChars - 1)}…` : text;
  const dot = status ? `<circle class="dot st-${status}" cx="12" cy="${y + hgt / 2}" r="4.5"/>` : '';
  ctx.front.push(`<g class="lane-label" ${attrs}>${dot}<text x="${status ? 22 : 10}" y="${y + hgt / 2 + 4}">${esc(shownText)}<title>${esc(text)}</title></text></g>`);
}

function eventText(ev) {
  if (ev.message) return ev.message;
  const ref = ev.ref ? ev.ref.replace(/^refs\/heads\//, '') : '';
  return [ev.configuration, ev.repo, ref, short(ev.revision), ev.reason].filter(Boolean).join(' ');
}

function eventTitle(ev) {
  return `${fmtHMS(ms(ev.time))} ${ev.kind}${ev.action ? ` ${ev.action}` : ''}${ev.cluster ? ` ${ev.cluster}` : ''}: ${eventText(ev)}`;
}

// The global lane: markers for fleet-wide events. Events closer than a few
// pixels share one marker (a policy remediation creates a configuration per
// cluster in the same minute), its tooltip listing them.
function globalLane(ctx, y) {
  const hgt = TL.globalH;
  laneBackground(ctx, y, hgt, 'global');
  laneLabel(ctx, y, hgt, 'Fleet events');
  const hasSteps = S.mode === 'report' && S.scenario && (S.scenario.steps || []).length;
  const evs = S.events.filter(ev => {
    if (ev.kind === 'step' && hasSteps) return false;
    if (!GLOBAL_KINDS.has(ev.kind) && ev.cluster) return false;
    if (ev.cluster && filtering()) { const c = S.clusters.get(ev.cluster); if (c && !matches(c)) return false; }
    return true;
  });
  markers(ctx, evs, y + hgt / 2, 6);
  for (const ev of evs) {
    if (ev.kind === 'clock' && ev.action === 'jumped') {
      const px = ctx.x(ms(ev.time));
      ctx.mid.push(`<line class="jump-line" x1="${px}" x2="${px}" y1="${y}" y2="100000"/>`);
    }
  }
  return hgt;
}

const KIND_RANK = { git: 6, clock: 5, push: 4, policy: 3, config: 2, step: 2 };
const LEVEL_RANK = { error: 2, warn: 1 };

function markers(ctx, evs, cy, r) {
  const buckets = new Map();
  for (const ev of evs) {
    const t = ms(ev.time);
    if (!(t >= ctx.t0 && t <= ctx.t1)) continue;
    const b = Math.round(ctx.x(t) / (r * 1.6));
    if (!buckets.has(b)) buckets.set(b, []);
    buckets.get(b).push(ev);
  }
  for (const group of buckets.values()) {
    const lead = group.reduce((a, b) => ((LEVEL_RANK[b.level] || 0) * 10 + (KIND_RANK[b.kind] || 0) >
      (LEVEL_RANK[a.level] || 0) * 10 + (KIND_RANK[a.kind] || 0) ? b : a));
    const px = ctx.x(ms(lead.time));
    const lines = group.slice(0, 12).map(eventTitle);
    if (group.length > 12) lines.push(`… and ${group.length - 12} more`);
    const cls = `marker k-${esc(lead.kind)} a-${esc(lead.action || '')} lvl-${esc(lead.level || 'info')}`;
    ctx.front.push(`<g class="${cls}" data-kind="${esc(lead.kind)}" data-seq="${esc(lead.seq ?? '')}">${shape(lead, px, cy, r)}` +
      (group.length > 1 && r >= 5 ? `<text class="marker-count" x="${px + r + 1}" y="${cy - r + 2}">${group.length}</text>` : '') +
      `<title>${esc(lines.join('\n'))}</title></g>`);
  }
}

function shape(ev, x, y, r) {
  switch (ev.kind) {
    case 'push': return `<circle cx="${x}" cy="${y}" r="${r}"/>`;
    case 'config': return `<path d="M${x} ${y - r - 1}L${x + r + 1} ${y}L${x} ${y + r + 1}L${x - r - 1} ${y}Z"/>`;
    case 'policy': return `<rect x="${x - r}" y="${y - r}" width="${2 * r}" height="${2 * r}" rx="1.5"/>`;
    case 'git': case 'link': return ev.action === 'up' || ev.action === 'online'
      ? `<path d="M${x} ${y - r}L${x + r} ${y + r}L${x - r} ${y + r}Z"/>`
      : `<path d="M${x - r} ${y - r}L${x + r} ${y - r}L${x} ${y + r}Z"/>`;
    case 'clock': return `<rect x="${x - 2}" y="${y - r - 2}" width="4" height="${2 * r + 4}" rx="1"/>`;
    default: return `<circle cx="${x}" cy="${y}" r="${r * 0.7}"/>`;
  }
}

// The steps lane of a report: a bar per step from its start to its end;
// failed steps red, with a red band through every lane below.
function stepsLane(ctx, y) {
  const hgt = TL.stepsH;
  laneBackground(ctx, y, hgt, 'steps');
  laneLabel(ctx, y, hgt, 'Scenario steps');
  // Neighbouring ranged steps alternate shades so that each shows its extent.
  let ranged = 0;
  const steps = scenarioSteps().map(st => ({ ...st, alt: st.t1 > st.t0 && ranged++ % 2 === 1 }))
    .sort((a, b) => (a.result === 'failed') - (b.result === 'failed'));
  for (const st of steps) {
    const x1 = ctx.x(st.t0), x2 = Math.max(x1 + 3, ctx.x(st.t1));
    const failed = st.result === 'failed';
    const title = [`step ${st.step}${st.line ? ` (line ${st.line})` : ''}${st.name ? ` “${st.name}”` : ''}: ${st.summary || st.action || ''}`,
      `at ${st.at}${st.end && st.end !== st.at ? ` – ${st.end}` : ''}: ${st.result || ''}`,
      st.detail, st.error].filter(Boolean).join('\n');
    ctx.front.push(`<rect class="step result-${esc(st.result || 'unknown')}${st.alt ? ' alt' : ''}" data-step="${esc(st.step)}" x="${x1 - (x2 - x1 < 4 ? 1.5 : 0)}" y="${y + 6}" width="${r1(x2 - x1)}" height="${hgt - 12}" rx="2"><title>${esc(title)}</title></rect>`);
    if (failed) {
      ctx.mid.push(`<rect class="failed-band" x="${r1(x1 - 2)}" y="${y}" width="${r1(x2 - x1 + 4)}" height="100000"/>`);
      // The label goes where there is room: after the bar, else before it.
      const label = `step ${st.step} failed`;
      const right = x2 + 4 + label.length * TL.charW < ctx.width;
      ctx.front.push(`<text class="step-label failed" x="${right ? x2 + 4 : x1 - 4}" y="${y + hgt / 2 + 4}"${right ? '' : ' text-anchor="end"'}>${esc(label)}</text>`);
    }
  }
  return hgt;
}

// packRows puts bars that would overlap (or whose labels would) on separate
// rows, in pixels, so that the lane stays readable at any zoom.
function packRows(ctx, spans) {
  const rows = [], placed = [];
  for (const s of spans.slice().sort((a, b) => ms(a.start) - ms(b.start))) {
    const x1 = ctx.x(ms(s.start)), x2 = Math.max(x1 + 3, ctx.x(spanEnd(s, ctx.now)));
    const labels = spanLabels(s, ctx.now);
    const inside = fitLabel(labels, x2 - x1);
    // A late bar too short for its words says them after its end: the
    // lateness is the point of the timeline.
    const outside = !inside && s.late && x2 + textW(labels[1]) < ctx.width ? labels[1] : '';
    const reach = x2 + (outside ? textW(outside) : 0);
    let r = rows.findIndex(end => end + 3 <= x1);
    if (r < 0) { r = rows.length < TL.maxRows ? rows.length : rows.length - 1; if (r === rows.length) rows.push(0); }
    rows[r] = Math.max(rows[r], reach);
    placed.push({ s, x1, x2, row: r, label: inside || outside, outside: !!outside });
  }
  return { placed, rows: rows.length };
}

// spanLabels: what a bar can say, longest first; the widest that fits is
// drawn. An open span says "so far": it is still growing.
function spanLabels(s, now) {
  const d = fmtDur(spanSeconds(s, now));
  const sofar = s.end ? '' : ' so far';
  if (s.kind === 'offline') return [`offline ${d}${sofar}`, `offline ${d}`, d];
  if (s.late) return [`${d} late${sofar}`, `${d} late`, d];
  if (s.kind === 'install') return [`install ${d}${sofar}`, `${d}${sofar}`, d];
  return [`${d}${sofar}`, d];
}

const spanLabel = (s, now) => spanLabels(s, now)[0];
const textW = t => t.length * TL.charW + 10;
const fitLabel = (labels, w) => labels.find(l => textW(l) <= w) || '';

function spanTitle(s, now) {
  const when = `${fmtHMS(ms(s.start))} → ${s.end ? fmtHMS(ms(s.end)) : 'now (open)'} · ${fmtDur(spanSeconds(s, now))}`;
  const what = [s.kind, s.configuration, short(s.revision)].filter(Boolean).join(' ');
  return [s.message, `${what}${s.late ? ' (late)' : ''}`, when].filter(Boolean).join('\n');
}

// A cluster's lane: offline time as a hatched band behind everything and as
// its own labelled row, then install/delivery bars, packed into rows.
function clusterLane(ctx, key, name, y, index, spans, evs) {
  const offline = spans.filter(s => s.kind === 'offline');
  const packed = packRows(ctx, spans.filter(s => s.kind !== 'offline'));
  const first = offline.length ? 1 : 0;
  const rows = Math.max(1, first + packed.rows);
  const strip = evs.length ? TL.stripH : 0;   // room for event marks under the bars
  const hgt = rows * TL.rowH + TL.lanePad * 2 + strip;
  const c = S.clusters.get(key);
  const attrs = `data-cluster="${esc(key)}"`;
  laneBackground(ctx, y, hgt, `${index % 2 ? 'odd' : 'even'}${key === S.selected ? ' selected' : ''}`, attrs);
  laneLabel(ctx, y, hgt, name, attrs, c ? cellStatus(c) : '');

  for (const s of offline) {
    const x1 = ctx.x(ms(s.start)), x2 = Math.max(x1 + 3, ctx.x(spanEnd(s, ctx.now)));
    ctx.back.push(`<rect class="offline-band" x="${x1}" y="${y}" width="${r1(x2 - x1)}" height="${hgt}"/>`);
    packed.placed.push({ s, x1, x2, row: -1, label: fitLabel(spanLabels(s, ctx.now), x2 - x1), outside: false });
  }
  for (const p of packed.placed) {
    const row = p.row < 0 ? 0 : p.row + first;
    const by = y + TL.lanePad + row * TL.rowH + (TL.rowH - TL.barH) / 2;
    const s = p.s;
    const cls = `span kind-${esc(s.kind)}${s.late ? ' late' : ''}${s.end ? '' : ' open'}`;
    ctx.front.push(`<rect class="${cls}" data-kind="${esc(s.kind)}" data-cluster="${esc(key)}" data-id="${esc(s.id)}"` +
      `${s.late ? ' data-late="true"' : ''} x="${p.x1}" y="${by}" width="${r1(p.x2 - p.x1)}" height="${TL.barH}" rx="2.5">` +
      `<title>${esc(spanTitle(s, ctx.now))}</title></rect>`);
    if (p.label) {
      const tx = r1(p.outside ? p.x2 + 5 : p.x1 + 5);
      ctx.front.push(`<text class="span-label kind-${esc(s.kind)}${s.late ? ' late' : ''}${p.outside ? ' outside' : ''}" x="${tx}" y="${by + TL.barH - 3}">${esc(p.label)}</text>`);
    }
  }
  markers(ctx, evs, y + hgt - TL.lanePad - 1, 3);
  return hgt;
}

// --------------------------------------------------------------- event log

function renderLog() {
  const list = $('#event-log');
  const evs = S.events.slice(-LOG_EVENTS).reverse();
  $('#event-count').textContent = S.events.length ? `${S.events.length.toLocaleString('en')} events${S.events.length > LOG_EVENTS ? `, the last ${LOG_EVENTS} shown` : ''}` : '';
  if (!evs.length) { patch(list, h('li', { class: 'hint' }, 'No events yet.')); return; }
  const multiDay = dayOf(ms(evs[0].time)) !== dayOf(ms(evs[evs.length - 1].time));
  patch(list, evs.map(ev => {
    const t = ms(ev.time);
    return h('li', { class: `ev level-${ev.level || 'info'} kind-${ev.kind}`, 'data-seq': ev.seq, 'data-kind': ev.kind },
      h('time', { datetime: ev.time }, multiDay ? `${fmtDay(t)} ${fmtHMS(t)}` : fmtHMS(t)),
      h('span', { class: 'ev-kind' }, ev.kind, ev.action ? h('span', { class: 'ev-action' }, ` ${ev.action}`) : ''),
      ev.cluster ? h('a', { class: 'ev-cluster', href: '#', 'data-cluster': ev.cluster }, ev.cluster) : h('span', { class: 'ev-cluster' }),
      h('span', { class: 'ev-msg', title: eventText(ev) }, eventText(ev)));
  }));
}

// ---------------------------------------------------------- cluster detail

function selectCluster(key) {
  if (!key) return;
  S.selected = key;
  S.detail = null;
  S.detailError = '';
  invalidate('grid', 'detail', 'timeline');
  if (S.mode === 'live') fetchDetail(key);
  $('#cluster-detail').scrollIntoView?.({ block: 'nearest', behavior: 'smooth' });
}

function clusterPath(key) {
  const c = S.clusters.get(key);
  const [rg, name] = c ? [c.resourceGroup, c.name] : [key.slice(0, key.indexOf('/')), key.slice(key.indexOf('/') + 1)];
  return `/api/clusters/${encodeURIComponent(rg)}/${encodeURIComponent(name)}`;
}

async function fetchDetail(key) {
  try {
    const d = await api('GET', clusterPath(key));
    if (S.selected !== key) return;
    S.detail = d;
    S.detailError = '';
  } catch (e) {
    if (S.selected !== key) return;
    S.detailError = e.message;
  }
  invalidate('detail');
}

// The detail follows its cluster's row changes, at most once a second.
let detailTimer = 0;
function scheduleDetailRefresh() {
  if (S.mode !== 'live' || !S.selected || detailTimer) return;
  detailTimer = setTimeout(() => { detailTimer = 0; if (S.selected) fetchDetail(S.selected); }, 1000);
}

function renderDetail() {
  const box = $('#cluster-detail');
  const key = S.selected;
  if (!key) {
    patch(box, h('p', { class: 'hint' }, 'Click a cluster (or its timeline lane) to see its configurations, objects and events.'));
    return;
  }
  // The stream's row is newer than the last fetch; the fetch adds objects/events.
  const c = S.clusters.get(key) || S.detail?.cluster;
  if (!c) { patch(box, detailHead(key, null), h('p', { class: 'hint' }, 'This cluster is gone.')); return; }
  const extra = S.mode === 'live' ? S.detail : reportDetail(c);
  patch(box,
    detailHead(key, c),
    S.detailError ? h('p', { class: 'error' }, S.detailError) : '',
    configTable(c),
    spanList(key),
    h('h3', {}, 'Objects'),
    objectsTable(extra?.objects, S.mode === 'live' && !S.detail && !S.detailError),
    h('h3', {}, 'Events'),
    detailEvents(key, extra?.events));
}

// reportDetail finds what a report has about a cluster beyond its row.
function reportDetail(c) {
  const rep = S.report?.reports?.[S.reportIndex] || {};
  const more = rep.details?.[c.key] || rep.clusterDetails?.[c.key] || {};
  return { objects: c.objects || more.objects, events: c.events || more.events };
}

function detailHead(key, c) {
  const head = h('div', { class: 'detail-head' },
    h('h2', {}, c?.name || key),
    c ? h('span', { class: `badge conn-${(c.connectivity || 'unknown').toLowerCase()}` }, c.connectivity || 'Unknown') : '',
    c?.linksOffline ? h('span', { class: 'badge cut' }, 'links cut') : '',
    h('button', { id: 'detail-close', type: 'button', class: 'ghost', title: 'Close', 'data-action': 'close-detail' }, '×'));
  const sub = h('div', { class: 'detail-sub' },
    c?.resourceGroup ? `resource group ${c.resourceGroup}` : '',
    c?.lastHeartbeat ? ` · last heartbeat ${fmtDay(ms(c.lastHeartbeat))} ${fmtHMS(ms(c.lastHeartbeat))}` : (c ? ' · no heartbeat yet' : ''));
  const parts = [head, sub];
  if (c?.id) parts.push(h('div', { class: 'detail-id', title: c.id }, c.id));
  if (S.mode === 'live' && c) {
    parts.push(h('button', {
      id: 'links-toggle', type: 'button', class: c.linksOffline ? 'primary' : 'warn',
      'data-offline': String(!!c.linksOffline), 'data-action': 'links', 'data-cluster-key': c.key,
      title: c.linksOffline ? 'Restore its links to Azure and to git' : 'Cut its links to Azure and to git',
    }, c.linksOffline ? 'Bring online' : 'Take offline'));
  }
  return h('div', { class: 'detail-top' }, parts);
}

function configTable(c) {
  const cfgs = c.configurations || [];
  if (!cfgs.length) return h('p', { class: 'hint' }, 'No configuration.');
  return h('table', { class: 'configs' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Configuration'), h('th', {}, 'State'), h('th', {}, 'Revision'), h('th', {}, 'Message'))),
    h('tbody', {}, cfgs.map(cfg => h('tr', { 'data-configuration': cfg.name },
      h('td', {}, h('b', {}, cfg.name), h('div', { class: 'note', title: cfg.repositoryUrl || '' },
        [cfg.scope, cfg.namespace].filter(Boolean).join(' · '))),
      h('td', {}, h('span', { class: `chip state-${(cfg.state || 'unknown').toLowerCase()}` }, cfg.state || '?')),
      h('td', {}, cfg.revision ? h('code', { title: cfg.revision }, short(cfg.revision)) : '—'),
      h('td', { class: `level-${(cfg.level || '').toLowerCase()}` }, cfg.message || '')))));
}

// spanList says in words what the timeline shows for this cluster.
function spanList(key) {
  const now = virtualNow();
  const spans = Array.from(S.spans.values()).filter(s => s.cluster === key).sort((a, b) => ms(b.start) - ms(a.start)).slice(0, 8);
  if (!spans.length) return '';
  return h('ul', { class: 'span-list' }, spans.map(s => h('li', { class: `kind-${s.kind}${s.late ? ' late' : ''}` },
    h('b', {}, spanLabel(s, now)), ' ', s.message || `${s.kind} ${s.configuration || ''} ${short(s.revision)}`,
    s.end ? '' : h('span', { class: 'badge' }, 'open'))));
}

function objectsTable(objects, loading) {
  if (loading) return h('p', { class: 'hint' }, 'Loading…');
  if (!objects) return h('p', { class: 'hint' }, S.mode === 'report' ? 'This report has no object data.' : 'No objects.');
  if (!objects.length) return h('p', { class: 'hint' }, 'No objects.');
  // Two columns so that it reads in a side panel: the object (its
  // configuration, source and error under it) and its status.
  return h('table', { class: 'objects' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Object · configuration · source'), h('th', {}, 'Status'))),
    h('tbody', {}, objects.map(o => h('tr', { class: `status-${o.status}`, 'data-object': o.id, 'data-status': o.status },
      h('td', {}, h('code', { class: 'obj-id' }, o.id),
        h('div', { class: 'note' }, [o.configuration, o.source].filter(Boolean).join(' · ')),
        o.error ? h('div', { class: 'error obj-error' }, o.error) : ''),
      h('td', {}, h('span', { class: `chip obj-${o.status}` }, o.status))))));
}

function detailEvents(key, events) {
  let rows;
  if (events) {
    rows = events.slice(-100).reverse().map(ev => [ev.time, ev.configuration, ev.reason, ev.message, '']);
  } else {
    // No agent events (a report): the timeline's events about the cluster.
    rows = S.events.filter(ev => ev.cluster === key).slice(-100).reverse()
      .map(ev => [ev.time, ev.configuration, `${ev.kind} ${ev.action || ''}`, eventText(ev), ev.level]);
  }
  if (!rows.length) return h('p', { class: 'hint' }, 'No events.');
  return h('ol', { class: 'detail-events' }, rows.map(([time, cfg, reason, msg, level]) => h('li', { class: `level-${level || 'info'}` },
    h('time', {}, time ? fmtHMS(ms(time)) : ''), h('span', { class: 'ev-kind' }, [cfg, reason].filter(Boolean).join(' · ')),
    h('span', { class: 'ev-msg' }, msg || ''))));
}

// ---------------------------------------------------------------- git panel

function renderGit() {
  const t = $('#git-toggle');
  t.textContent = S.gitDown ? 'Bring git server up' : 'Take git server down';
  t.className = S.gitDown ? 'primary' : 'warn';
  t.dataset.down = String(S.gitDown);
  $('#git').classList.toggle('down', S.gitDown);
  patch($('#repo-list'), S.repos.length ? h('ul', { class: 'repos' }, S.repos.map(repoItem)) : h('p', { class: 'hint' }, 'No repositories.'),
    S.gitDown ? h('p', { class: 'error' }, 'The git server is down: every fetch fails.') : '');
  // Keep the push select's choice across updates.
  const sel = $('#push-repo');
  const names = S.repos.map(r => r.name);
  if (Array.from(sel.options, o => o.value).join('\n') !== names.join('\n')) {
    const keep = sel.value;
    sel.replaceChildren(...names.map(n => h('option', { value: n }, n)));
    if (names.includes(keep)) sel.value = keep;
  }
  for (const id of ['push-demo', 'push-files']) $(`#${id}`).disabled = !names.length;
}

function repoItem(r) {
  const branches = Object.entries(r.branches || {}).sort(([a], [b]) => collator.compare(a, b));
  return h('li', { class: `repo${r.down ? ' down' : ''}`, 'data-repo': r.name },
    h('div', { class: 'repo-head' }, h('b', {}, r.name), r.down ? h('span', { class: 'badge bad' }, 'down') : '',
      h('button', { type: 'button', class: `repo-toggle small ${r.down ? 'primary' : 'warn'}`, 'data-repo': r.name, 'data-down': String(!!r.down), 'data-action': 'repo-toggle' },
      r.down ? 'Make available' : 'Make unavailable')),
    branches.length ? h('div', { class: 'branches' }, branches.map(([b, sha]) =>
      h('span', { class: 'branch', title: sha }, b, ' ', h('code', {}, short(sha))))) : h('div', { class: 'note' }, 'no branches'));
}

function setRepoRow(r) {
  if (r && r.name) { S.repos = S.repos.map(x => (x.name === r.name ? { ...x, ...r } : x)); invalidate('git'); }
  else setRepos(r);
}

// --------------------------------------------------------------- controls

async function api(method, path, body) {
  const opts = { method, headers: { Accept: 'application/json' } };
  if (body !== undefined) { opts.headers['Content-Type'] = 'application/json'; opts.body = JSON.stringify(body); }
  let res;
  try { res = await fetch(path, opts); } catch (e) { throw new Error(`cannot reach the simulator (${e.message})`); }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { /* not JSON: say the text */ }
  if (!res.ok) {
    const err = new Error(data?.error?.message || text.trim() || `${res.status} ${res.statusText}`);
    err.code = data?.error?.code;
    throw err;
  }
  return data;
}

// post runs one control; a failure becomes a toast with the server's words.
async function post(path, body, what, onOk) {
  try {
    const r = await api('POST', path, body);
    if (onOk) onOk(r);
    return r;
  } catch (e) {
    toast(`${what} failed: ${e.message}`, 'error', e.code);
    return null;
  }
}

function toast(message, kind = 'info', code) {
  // Toasts let clicks through (pointer-events: none): they must never
  // stand between the presenter and a button.
  const t = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status', 'data-code': code },
    message, code ? h('span', { class: 'toast-code' }, ` (${code})`) : '');
  const box = $('#toasts');
  box.append(t);
  // A burst of clicks shows its last few answers, not a wall of them.
  while (box.children.length > 3) box.firstElementChild.remove();
  setTimeout(() => t.remove(), kind === 'error' ? 8000 : 3500);
}

const clockAnswer = r => { if (r && r.now) setClock(r); return r; };

function bindControls() {
  $('#pause').addEventListener('click', () => post('/api/clock/pause', undefined, 'Pause', clockAnswer));
  $('#resume').addEventListener('click', () => post('/api/clock/resume', undefined, 'Resume', clockAnswer));
  for (const b of $$('[data-scale]')) {
    b.addEventListener('click', () => setScale(Number(b.dataset.scale)));
  }
  $('#scale-set').addEventListener('click', () => setScale(Number(String($('#scale-custom').value).replace(/[x×]\s*$/, ''))));
  $('#scale-custom').addEventListener('keydown', e => { if (e.key === 'Enter') $('#scale-set').click(); });
  for (const b of $$('[data-by]')) {
    b.addEventListener('click', () => post('/api/clock/jump', { by: b.dataset.by }, `Jump +${b.dataset.by}`, r => {
      clockAnswer(r);
      if (r && Number.isFinite(r.ran)) toast(`Jumped ${b.dataset.by}: ${r.ran} timer${r.ran === 1 ? '' : 's'} ran`);
    }));
  }
  $('#git-toggle').addEventListener('click', () => post('/api/git', { down: !S.gitDown },
    S.gitDown ? 'Bringing git up' : 'Taking git down', r => { if (r && typeof r.gitDown === 'boolean') setRepos(r); }));
  $('#push-demo').addEventListener('click', pushDemo);
  $('#push-change').addEventListener('focus', loadChanges);
  $('#push-files').addEventListener('click', pushFile);
  bindFilters();
  bindSelection();
  bindActions();
}

// bindActions handles every button drawn by a renderer, by its data-action:
// one listener for the page, whatever element currently carries it.
function bindActions() {
  const actions = {
    'legend': b => { const f = STATUS_FILTER[b.dataset.status]; if (f) setFilter('state', S.filters.state === f ? '' : f); },
    'close-detail': () => { S.selected = null; invalidate('grid', 'detail', 'timeline'); },
    'links': b => toggleLinks(b.dataset.clusterKey),
    'repo-toggle': b => {
      const r = S.repos.find(x => x.name === b.dataset.repo);
      if (r) post(`/api/repos/${encodeURIComponent(r.name)}`, { down: !r.down }, `${r.down ? 'Restoring' : 'Taking down'} ${r.name}`, setRepoRow);
    },
    'report': b => {
      const i = Number(b.dataset.index);
      location.hash = encodeURIComponent(b.dataset.scenario);
      loadReport(i);
    },
  };
  document.addEventListener('click', e => {
    const b = e.target.closest?.('[data-action]');
    if (b && actions[b.dataset.action] && !b.disabled) actions[b.dataset.action](b);
  });
}

function setScale(scale) {
  if (!(scale > 0 && scale <= 86400)) { toast('The scale must be a number above 0 and at most 86400', 'error'); return; }
  post('/api/clock/scale', { scale }, `Scale ${scale}×`, clockAnswer);
}

function pushDemo() {
  const repo = $('#push-repo').value;
  if (!repo) return;
  const change = $('#push-change').value;
  const what = change ? `change ${change}` : 'the demo change';
  post(`/api/repos/${encodeURIComponent(repo)}/push`, change ? { change } : {}, `Push to ${repo}`,
    r => toast(`Pushed ${what} to ${repo}${pushRevision(r)}`));
}

// loadChanges fills the change picker with the prepared changes, read
// again whenever the picker is opened (they may be edited during a demo).
async function loadChanges() {
  if (S.mode !== 'live') return;
  let set;
  try {
    const res = await fetch('/api/changes', { cache: 'no-store' });
    if (!res.ok) return;
    set = await res.json();
  } catch { return; }
  const sel = $('#push-change');
  const keep = sel.value;
  const names = (set.changes || []).map(c => c.name);
  const opts = [h('option', { value: '' }, 'demo change (a counter goes up)')];
  for (const c of set.changes || []) {
    const files = [...(c.files || []), ...(c.deletes || []).map(f => `-${f}`)].join(', ');
    opts.push(h('option', { value: c.name, title: files }, c.message ? `${c.name}: ${c.message}` : c.name));
  }
  if (Array.from(sel.options, o => o.value).join('\n') !== ['', ...names].join('\n')) sel.replaceChildren(...opts);
  if (names.includes(keep)) sel.value = keep;
  for (const p of set.problems || []) console.warn('prepared change:', p);
}

function pushFile() {
  const repo = $('#push-repo').value;
  const path = $('#push-path').value.trim();
  if (!repo || !path) { toast('Say which file to push', 'error'); return; }
  const body = { files: { [path]: $('#push-delete').checked ? null : $('#push-content').value } };
  const branch = $('#push-branch').value.trim(), message = $('#push-message').value.trim();
  if (branch) body.branch = branch;
  if (message) body.message = message;
  post(`/api/repos/${encodeURIComponent(repo)}/push`, body, `Push to ${repo}`, r => toast(`Pushed ${path} to ${repo}${pushRevision(r)}`));
}

const pushRevision = r => { const rev = r && (r.revision || r.commit || r.sha); return rev ? ` (${short(rev)})` : ''; };

function toggleLinks(key) {
  const c = S.clusters.get(key);
  if (!c) return;
  const offline = !c.linksOffline;
  post(`${clusterPath(c.key)}/links`, { offline }, `${offline ? 'Taking' : 'Bringing'} ${c.name} ${offline ? 'offline' : 'online'}`, r => {
    const row = r?.key ? r : r?.cluster?.key ? r.cluster : null;
    if (row) mergeClusters([row]);
    fetchDetail(c.key);
  });
}

function bindFilters() {
  $('#filter-rg').addEventListener('change', e => setFilter('rg', e.target.value));
  $('#filter-state').addEventListener('change', e => setFilter('state', e.target.value));
  $('#filter-name').addEventListener('input', e => setFilter('name', e.target.value.trim()));
  $('#timeline-window').addEventListener('change', e => { S.windowSec = Number(e.target.value) || 0; invalidate('timeline'); });
  window.addEventListener('resize', () => invalidate('timeline'));
}

// Clicks on anything carrying data-cluster (cells, lane labels, log links)
// open that cluster's detail.
function bindSelection() {
  const pick = e => {
    const t = e.target.closest?.('.cluster, .lane-label[data-cluster], .lane-bg[data-cluster], a.ev-cluster');
    if (!t || !t.dataset.cluster) return;
    e.preventDefault();
    selectCluster(t.dataset.cluster);
  };
  for (const id of ['grid', 'timeline', 'event-log']) document.getElementById(id).addEventListener('click', pick);
  $('#grid').addEventListener('keydown', e => { if (e.key === 'Enter') pick(e); });
}

// ---------------------------------------------------------------- live mode

async function bootLive() {
  loadChanges();
  document.body.classList.add('live');
  setConn('connecting…');
  try {
    applyState(await api('GET', '/api/state'));
    autoSelect();
    flushNow();
  } catch (e) {
    S.needResync = true;
    toast(`Cannot load the state: ${e.message}`, 'error');
  }
  connectStream();
  setInterval(renderClock, 200);   // local extrapolation: no request
  setInterval(() => { if (!S.clock.paused) invalidate('timeline'); }, 1000);
}

let stream = null;
function connectStream() {
  stream = new EventSource('/api/stream');
  const on = (type, fn) => stream.addEventListener(type, m => {
    try { fn(JSON.parse(m.data)); } catch (e) { console.error(`stream ${type}:`, e); }
  });
  on('timeline', ev => addEvents([ev]));
  on('spans', d => mergeSpans(d.spans));
  on('clusters', d => mergeClusters(d.clusters, d.removed));
  on('clock', setClock);
  on('repos', setRepos);
  stream.onopen = () => {
    setConn('live');
    // Whatever happened while the page was not listening: the state again
    // after a loss, else only the events since the last one seen.
    if (S.needResync) { S.needResync = false; resync(); } else fillGap();
  };
  stream.onerror = () => {
    setConn('reconnecting…');
    S.needResync = true;
    if (stream.readyState === EventSource.CLOSED) setTimeout(connectStream, 3000);
  };
}

// resync reloads the state, keeping what the stream brought meanwhile.
async function resync() {
  const mark = S.events.length;
  try {
    const st = await api('GET', '/api/state');
    const meanwhile = S.events.slice(mark);
    applyState(st);
    addEvents(meanwhile);
    autoSelect();
  } catch (e) { S.needResync = true; }
}

async function fillGap() {
  const last = S.events[S.events.length - 1];
  if (!last || typeof last.seq !== 'number') return;
  try {
    const d = await api('GET', `/api/events?after=${last.seq}`);
    addEvents(d?.events);
    mergeSpans(d?.spans);
  } catch (_) { /* the stream carries on regardless */ }
}

// A single cluster (the usual `gitopsim up`) is shown in detail at once.
function autoSelect() {
  if (!S.selected && S.clusters.size === 1) selectCluster(S.clusters.keys().next().value);
  else if (S.selected) { if (S.mode === 'live') scheduleDetailRefresh(); invalidate('detail'); }
}

// -------------------------------------------------------------- report mode

function bootReport(data) {
  S.mode = 'report';
  document.body.classList.add('report');
  // A bare state object is taken as a report of one.
  S.report = Array.isArray(data.reports) ? data : { mode: 'report', reports: [data] };
  $('#scenario').hidden = false;
  renderPicker();
  const fromHash = decodeURIComponent(location.hash.replace(/^#/, ''));
  const i = S.report.reports.findIndex(r => r.scenario?.name === fromHash);
  loadReport(i >= 0 ? i : 0);
  window.addEventListener('hashchange', () => {
    const j = S.report.reports.findIndex(r => r.scenario?.name === decodeURIComponent(location.hash.slice(1)));
    if (j >= 0 && j !== S.reportIndex) loadReport(j);
  });
}

function loadReport(i) {
  S.reportIndex = i;
  S.selected = null;
  S.detail = null;
  applyState(S.report.reports[i] || {});
  S.clock.controllable = false;
  autoSelect();
  for (const b of $$('.report-tab')) b.setAttribute('aria-selected', String(Number(b.dataset.index) === i));
  invalidate('all');
  flushNow();
}

function renderPicker() {
  const reps = S.report.reports;
  const nav = $('#report-picker');
  nav.hidden = reps.length < 2;
  const failed = reps.filter(r => r.scenario?.result === 'failed').length;
  nav.replaceChildren(
    h('span', { class: 'note' }, `${reps.length} scenarios${failed ? `, ${failed} failed` : ''}:`),
    ...reps.map((r, i) => {
      const sc = r.scenario || {};
      const name = sc.name || `report ${i + 1}`;
      return h('button', {
        type: 'button', class: `report-tab result-${sc.result || 'unknown'}`, 'data-index': i, 'data-result': sc.result || '',
        'data-scenario': name, 'aria-selected': 'false', title: `${sc.file || name}: ${sc.result || ''}`, 'data-action': 'report',
      }, sc.result === 'failed' ? '✗ ' : sc.result === 'passed' ? '✓ ' : '', name);
    }));
}

function renderScenario() {
  if (S.mode !== 'report') return;
  const sc = S.scenario;
  const box = $('#scenario-summary');
  if (!sc) { box.replaceChildren(h('p', { class: 'hint' }, 'No scenario in this report.')); return; }
  const failed = sc.result === 'failed';
  box.replaceChildren(
    h('div', { class: 'scenario-head' },
      h('h2', {}, sc.name || 'scenario'),
      h('span', { id: 'scenario-result', class: `badge result-${sc.result || 'unknown'}` }, sc.result || 'unknown'),
      h('span', { class: 'note' }, [sc.file, sc.start ? `started ${fmtDate(ms(sc.start))} ${fmtHMS(ms(sc.start))}` : '',
        sc.virtualDuration ? `${sc.virtualDuration} of simulated time` : '',
        S.report.generated ? `report written ${fmtWall(S.report.generated)}` : ''].filter(Boolean).join(' · '))),
    (sc.failures || []).length ? h('ul', { id: 'scenario-failures', class: 'failures' }, sc.failures.map(f => h('li', { class: 'failure' }, f))) : '',
    stepsTable(sc.steps || [], failed));
}

function stepsTable(steps, open) {
  if (!steps.length) return '';
  const nFailed = steps.filter(s => s.result === 'failed').length;
  return h('details', { id: 'scenario-steps', open: open || null },
    h('summary', {}, `${steps.length} steps${nFailed ? `, ${nFailed} failed` : ''}`),
    h('div', { class: 'scroll steps-scroll' }, h('table', { class: 'steps' },
      h('thead', {}, h('tr', {}, ['#', 'line', 'at', 'end', 'step', 'result', 'detail'].map(t => h('th', {}, t)))),
      h('tbody', {}, steps.map(st => h('tr', { class: `result-${st.result || 'unknown'}`, 'data-step': st.step },
        h('td', {}, st.step), h('td', {}, st.line ?? ''), h('td', {}, st.at || ''), h('td', {}, st.end || ''),
        h('td', {}, st.name ? h('b', {}, `${st.name}: `) : '', st.summary || st.action || ''),
        h('td', {}, st.result || ''), h('td', { class: st.error ? 'error' : '' }, st.error || st.detail || '')))))));
}

// -------------------------------------------------------------------- boot

function boot() {
  bindControls();
  const raw = ($('#gitopsim-data')?.textContent || '').trim();
  if (!raw) { bootLive(); return; }
  let data;
  try { data = JSON.parse(raw); } catch (e) {
    document.body.prepend(h('p', { class: 'error fatal' }, `The report's data cannot be read: ${e.message}`));
    return;
  }
  bootReport(data);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
else boot();
})();
