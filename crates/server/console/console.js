// livetape console: plain JS over the /v1 REST API. Pages are hash routes, so the server
// serves one shell. The API key (if the server has one) is asked for once and kept in
// sessionStorage (this tab only). Players load on demand from vendored copies.
'use strict';

const HLS_SRC = '/console/vendor/hls.js-1.7.4/hls.light.min.js';
const MPEGTS_SRC = '/console/vendor/mpegts.js-1.8.2/mpegts.js';
const KEY_STORE = 'livetape.apiKey';
const PAGE_SIZE = 20;
const LIVE_REFRESH_MS = 5000;
const DELIVERY_REFRESH_MS = 2000;

const main = document.getElementById('main');
const EVENT_NAMES = { 0: 'push end', 1: 'push start', 100: 'recording', 332: 'recording status' };

// ---- small helpers -------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

function toast(msg) {
  const t = document.getElementById('toast');
  t.textContent = msg;
  t.classList.add('show');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove('show'), 2500);
}

const pad = (n) => String(n).padStart(2, '0');
function fmtTime(ms) {
  if (ms === null || ms === undefined) return '';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
function fmtDuration(ms) {
  const s = Math.round(ms / 1000);
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  return hh ? `${hh}:${pad(mm)}:${pad(ss)}` : `${mm}:${pad(ss)}`;
}
function fmtSize(b) {
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (b >= 1000 && i < u.length - 1) { b /= 1000; i++; }
  return `${b.toFixed(i ? 1 : 0)} ${u[i]}`;
}
function fmtAgo(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}
// When a live stream started: `started_at_ms` (epoch ms) or `since` (ms or an ISO string).
const sinceMs = (s) => { const v = s.started_at_ms ?? s.since; return typeof v === 'string' ? Date.parse(v) : v; };
// datetime-local <-> epoch ms (local time, as the browser shows it)
const toLocalInput = (ms) => { const d = new Date(ms); return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`; };

// ---- API -----------------------------------------------------------------------------

class AuthNeeded extends Error {}

async function api(path, opts = {}) {
  const headers = { Accept: 'application/json' };
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) headers.Authorization = `Bearer ${key}`;
  const r = await fetch(path, { ...opts, headers });
  if (r.status === 401) throw new AuthNeeded();
  if (!r.ok) {
    let msg = r.statusText;
    try { msg = (await r.json()).error || msg; } catch (_) { /* not JSON */ }
    throw new Error(`${r.status}: ${msg}`);
  }
  return r.status === 204 ? null : r.json();
}

// ---- players -------------------------------------------------------------------------

const scripts = {};
function loadScript(src) {
  scripts[src] ||= new Promise((resolve, reject) => {
    const s = h('script', { src });
    s.onload = resolve;
    s.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.append(s);
  });
  return scripts[src];
}

let current = null; // { destroy(), box }

function stopPlayer() {
  if (current) { current.destroy(); current.box.remove(); current = null; }
}

// kind: 'native' (MP4/M4A), 'flv' (mpegts.js), 'hls' (hls.js, or native HLS on Safari).
// `fallback` is tried if the first source fails (live FLV → live HLS).
async function play(host, title, sources, live) {
  stopPlayer();
  const video = h('video', { controls: true, playsinline: true, preload: 'auto', 'aria-label': title });
  const status = h('span', { class: 'muted', 'aria-live': 'polite' });
  const close = h('button', { type: 'button', onclick: stopPlayer }, 'Close');
  const box = h('section', { class: 'player', 'aria-label': 'Player' }, video,
    h('div', { class: 'bar' }, h('span', { class: 'title' }, title), status, close));
  host.prepend(box);
  const cleanups = [];
  current = { box, destroy: () => { cleanups.forEach((f) => f()); video.removeAttribute('src'); video.load(); } };
  const mine = current;
  window.livetapePlayer = { video, kind: null };

  for (const [i, src] of sources.entries()) {
    if (current !== mine) return;
    cleanups.forEach((f) => f()); cleanups.length = 0;
    try {
      await attach(video, src, live, cleanups);
      window.livetapePlayer.kind = src.kind;
      status.textContent = `${src.kind === 'flv' ? 'FLV (mpegts.js)' : src.kind === 'hls' ? 'HLS' : 'native'}${live ? ' · live' : ''}`;
      video.play().catch(() => { /* autoplay refused: the controls are there */ });
      return;
    } catch (e) {
      status.textContent = i + 1 < sources.length ? `${e.message}; trying ${sources[i + 1].kind}` : e.message;
      status.classList.add('error');
    }
  }
}

// Resolves once the source has produced media, rejects if it fails first.
function attach(video, src, live, cleanups) {
  return new Promise((resolve, reject) => {
    const ok = () => { done(); resolve(); };
    const fail = (msg) => { done(); reject(new Error(msg)); };
    const onErr = () => fail(`cannot play ${src.kind}: ${video.error ? video.error.message || video.error.code : 'error'}`);
    const done = () => { video.removeEventListener('loadedmetadata', ok); video.removeEventListener('error', onErr); };
    video.addEventListener('loadedmetadata', ok);
    video.addEventListener('error', onErr);
    if (src.kind === 'native') {
      video.src = src.url;
    } else if (src.kind === 'flv') {
      loadScript(MPEGTS_SRC).then(() => {
        const m = window.mpegts;
        if (!m.isSupported()) return fail('FLV playback needs MediaSource (not on this browser)');
        const p = m.createPlayer({ type: 'flv', isLive: live, url: src.url },
          { enableStashBuffer: !live, liveBufferLatencyChasing: live, autoCleanupSourceBuffer: true });
        p.on(m.Events.ERROR, (type, detail) => fail(`FLV: ${type} ${detail}`));
        p.attachMediaElement(video);
        p.load();
        cleanups.push(() => { try { p.destroy(); } catch (_) { /* already gone */ } });
      }, (e) => fail(e.message));
    } else if (src.kind === 'hls') {
      loadScript(HLS_SRC).then(() => {
        const Hls = window.Hls;
        if (Hls.isSupported()) {
          const hls = new Hls({ liveDurationInfinity: true });
          hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) fail(`HLS: ${d.details}`); });
          hls.loadSource(src.url);
          hls.attachMedia(video);
          cleanups.push(() => hls.destroy());
        } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
          video.src = src.url;
        } else {
          fail('HLS playback is not supported by this browser');
        }
      }, (e) => fail(e.message));
    }
  });
}

// A recording plays from this server (same origin) whatever public_url says.
function recordingSource(r) {
  const name = r.video_url.split('/').pop();
  const url = `/vod/${encodeURIComponent(r.file_id)}/${encodeURIComponent(name)}`;
  return { kind: r.format === 'flv' ? 'flv' : r.format === 'hls' ? 'hls' : 'native', url };
}

function liveSources(s) {
  const base = `/live/${encodeURIComponent(s.app)}/${encodeURIComponent(s.stream)}`;
  return [{ kind: 'flv', url: `${base}.flv` }, { kind: 'hls', url: `${base}.m3u8` }];
}

// ---- routing -------------------------------------------------------------------------

let timer = null;
let generation = 0;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '') || 'live';
  const [path, query] = raw.split('?');
  return { parts: path.split('/').map(decodeURIComponent), params: new URLSearchParams(query || '') };
}

function go(path, params) {
  const q = params ? new URLSearchParams([...params].filter(([, v]) => v !== '' && v !== null)).toString() : '';
  location.hash = `#/${path}${q ? `?${q}` : ''}`;
}

async function route() {
  clearInterval(timer); timer = null;
  stopPlayer();
  const gen = ++generation;
  const { parts, params } = parseHash();
  const page = parts[0];
  document.querySelectorAll('nav a').forEach((a) => {
    if (a.dataset.nav === page || (page === 'stream' && a.dataset.nav === 'recordings')) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
  document.getElementById('forget').hidden = !sessionStorage.getItem(KEY_STORE);
  const view = { live: liveView, recordings: recordingsView, stream: streamView, deliveries: deliveriesView, templates: templatesView, api: apiView }[page];
  main.replaceChildren();
  try {
    if (!view) throw new Error(`no page ${page}`);
    await view(params, parts.slice(1), () => gen === generation);
  } catch (e) {
    if (gen !== generation) return;
    if (e instanceof AuthNeeded) keyView();
    else main.replaceChildren(h('p', { class: 'error', role: 'alert' }, e.message));
  }
}

function keyView() {
  clearInterval(timer); timer = null;
  const had = !!sessionStorage.getItem(KEY_STORE);
  const input = h('input', { type: 'password', id: 'apikey', name: 'apikey', autocomplete: 'current-password', required: true });
  const form = h('form', { class: 'key', onsubmit: (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY_STORE, input.value);
    route();
  } },
  h('h1', {}, 'API key'),
  h('p', { class: had ? 'error' : 'muted' }, had ? 'That key was refused.' : 'This server needs its API key ([api] key). It is kept for this tab only.'),
  h('label', { for: 'apikey' }, 'Key', input),
  h('div', {}, h('button', { type: 'submit', class: 'primary' }, 'Continue')));
  main.replaceChildren(form);
  input.focus();
}

// ---- pages ---------------------------------------------------------------------------

async function liveView(_params, _rest, alive) {
  const host = h('div');
  const list = h('div', { 'aria-live': 'polite' });
  const jobs = h('section', { 'aria-live': 'polite' });
  main.replaceChildren(h('h1', {}, 'Live streams'), host, list, jobs);
  const refresh = async () => {
    const [{ streams }, running] = await Promise.all([api('/v1/streams'), api('/v1/jobs')]);
    if (!alive()) return;
    jobs.replaceChildren(...jobsPanel(running));
    if (!streams.length) {
      list.replaceChildren(h('p', { class: 'empty' }, 'No stream is being published. Push one to rtmp://this-host/APP/STREAM.'));
      return;
    }
    const cols = [
      ['bitrate_kbps', 'Bitrate', (v) => `${v} kbit/s`],
      ['video_codec', 'Codec', (v) => v],
      ['width', 'Resolution', (v, s) => `${v}×${s.height}`],
      ['viewers', 'Viewers', (v) => v],
    ].filter(([k]) => streams.some((s) => s[k] !== undefined && s[k] !== null));
    list.replaceChildren(h('table', {},
      h('thead', {}, h('tr', {}, h('th', {}, 'Stream'), h('th', {}, 'Live for'), cols.map(([, t]) => h('th', {}, t)), h('th', {}, h('span', { class: 'muted' }, 'Actions')))),
      h('tbody', {}, streams.map((s) => h('tr', { dataset: { stream: `${s.app}/${s.stream}` } },
        h('td', { 'data-label': 'Stream' }, h('span', { class: 'badge live' }, 'live'), ' ', h('strong', {}, `${s.app}/${s.stream}`)),
        h('td', { class: 'num', 'data-label': 'Live for', title: `since ${fmtTime(sinceMs(s))}` }, fmtAgo(sinceMs(s))),
        cols.map(([k, t, f]) => h('td', { class: 'num', 'data-label': t }, s[k] === undefined || s[k] === null ? '' : f(s[k], s))),
        h('td', { class: 'actions' },
          h('button', { type: 'button', class: 'primary', onclick: () => play(host, `${s.app}/${s.stream} (live)`, liveSources(s), true) }, 'Watch'),
          h('a', { class: 'btn', href: `#/stream/${encodeURIComponent(s.app)}/${encodeURIComponent(s.stream)}` }, 'History')))))));
  };
  await refresh();
  timer = setInterval(() => refresh().catch((e) => { if (e instanceof AuthNeeded) keyView(); }), LIVE_REFRESH_MS);
}

// Long jobs running now (retention sweeps, upload backlogs) and uploads waiting: nothing
// when there are none.
function jobsPanel({ jobs, uploads_pending: waiting }) {
  if (!jobs.length && !waiting) return [];
  const out = [h('h2', {}, 'Running jobs')];
  if (jobs.length) {
    out.push(h('table', {},
      h('thead', {}, h('tr', {}, h('th', {}, 'Job'), h('th', {}, 'Done'), h('th', {}, 'Rate'), h('th', {}, 'Running for'))),
      h('tbody', {}, jobs.map((j) => h('tr', { dataset: { job: j.job } },
        h('td', { 'data-label': 'Job' }, j.job),
        h('td', { class: 'num', 'data-label': 'Done' }, j.total === null || j.total === undefined ? `${j.done}` : `${j.done} of ${j.total}`),
        h('td', { class: 'num', 'data-label': 'Rate' }, `${j.per_s}/s`),
        h('td', { class: 'num', 'data-label': 'Running for' }, fmtDuration(j.running_ms)))))));
  }
  if (waiting) out.push(h('p', { class: 'muted', dataset: { uploads: waiting } }, `${waiting} finished file${waiting === 1 ? '' : 's'} waiting for upload to the bucket.`));
  return out;
}

async function recordingsView(params, _rest, alive) {
  const f = (name, label, input) => h('label', {}, label, input);
  const val = (k) => params.get(k) || '';
  const msInput = (k) => (params.get(k) ? toLocalInput(Number(params.get(k))) : '');
  const form = h('form', { class: 'filters', role: 'search', onsubmit: (e) => {
    e.preventDefault();
    const fd = new FormData(form);
    const ms = (v) => (v ? String(new Date(v).getTime()) : '');
    go('recordings', new URLSearchParams({ app: fd.get('app'), stream: fd.get('stream'), format: fd.get('format'), from: ms(fd.get('from')), to: ms(fd.get('to')) }));
  } },
  f('app', 'App', h('input', { name: 'app', value: val('app'), size: 8 })),
  f('stream', 'Stream', h('input', { name: 'stream', value: val('stream'), size: 14 })),
  f('format', 'Format', h('select', { name: 'format' }, ['', 'mp4', 'flv', 'hls', 'aac'].map((x) => h('option', { value: x, selected: x === val('format') }, x || 'any')))),
  f('from', 'Started from', h('input', { type: 'datetime-local', name: 'from', value: msInput('from') })),
  f('to', 'until', h('input', { type: 'datetime-local', name: 'to', value: msInput('to') })),
  h('button', { type: 'submit', class: 'primary' }, 'Filter'),
  h('a', { class: 'btn', href: '#/recordings' }, 'Clear'));
  const host = h('div');
  const list = h('div');
  main.replaceChildren(h('h1', {}, 'Recordings'), form, host, list);
  const q = { app: val('app'), stream_id: val('stream'), format: val('format'), from: val('from'), to: val('to') };
  await recordingList(list, host, q, Number(params.get('page')) || 1, (p) => { params.set('page', p); go('recordings', params); }, alive);
}

async function streamView(_params, rest, alive) {
  const [app, stream] = rest;
  if (!app || !stream) throw new Error('which stream?');
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const host = h('div');
  const list = h('div');
  const head = h('div', { class: 'pager' });
  main.replaceChildren(h('h1', {}, `${app}/${stream}`), head, host, list);
  const [{ streams }] = await Promise.all([api('/v1/streams')]);
  const live = streams.find((s) => s.app === app && s.stream === stream);
  if (live) {
    head.append(h('span', { class: 'badge live' }, `live for ${fmtAgo(sinceMs(live))}`),
      h('button', { type: 'button', class: 'primary', onclick: () => play(host, `${app}/${stream} (live)`, liveSources(live), true) }, 'Watch live'));
  } else {
    head.append(h('span', { class: 'muted' }, 'Not live now.'));
  }
  const page = Number(params.get('page')) || 1;
  await recordingList(list, host, { app, stream_id: stream }, page,
    (p) => go(`stream/${encodeURIComponent(app)}/${encodeURIComponent(stream)}`, new URLSearchParams({ page: p })), alive, true);
}

async function recordingList(list, host, filters, page, toPage, alive, inStream) {
  const q = new URLSearchParams({ page, page_size: PAGE_SIZE, order: 'desc' });
  for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
  const data = await api(`/v1/recordings?${q}`);
  if (!alive()) return;
  if (!data.recordings.length) {
    list.replaceChildren(h('p', { class: 'empty' }, page > 1 ? 'No more recordings.' : 'No recordings match.'));
    return;
  }
  const pages = Math.max(1, Math.ceil(data.total / data.page_size));
  const rows = data.recordings.map((r) => {
    const tr = h('tr', { dataset: { fileId: r.file_id, format: r.format } },
      h('td', { class: 'num', 'data-label': 'Started' }, fmtTime(r.start_ms)),
      inStream ? null : h('td', { 'data-label': 'Stream' }, h('a', { href: `#/stream/${encodeURIComponent(r.app)}/${encodeURIComponent(r.stream_id)}` }, `${r.app}/${r.stream_id}`)),
      h('td', { 'data-label': 'Format' }, r.format.toUpperCase()),
      h('td', { class: 'num', 'data-label': 'Duration' }, fmtDuration(r.duration_ms)),
      h('td', { class: 'num', 'data-label': 'Size' }, fmtSize(r.size_bytes)),
      h('td', { class: 'num', 'data-label': 'Video' }, r.width ? `${r.width}×${r.height} ${r.video_codec}` : r.video_codec || 'audio'),
      h('td', { class: 'actions' },
        h('button', { type: 'button', class: 'primary', 'data-action': 'play', onclick: () => { play(host, `${r.app}/${r.stream_id} · ${fmtTime(r.start_ms)} · ${r.format}`, [recordingSource(r)], false); host.scrollIntoView({ block: 'nearest' }); } }, 'Play'),
        h('button', { type: 'button', 'data-action': 'copy', onclick: () => copy(r.video_url) }, 'Copy URL'),
        h('button', { type: 'button', class: 'danger', 'data-action': 'delete', onclick: async () => {
          if (!confirm(`Delete this ${r.format.toUpperCase()} recording of ${r.app}/${r.stream_id} (${fmtTime(r.start_ms)})? The file is removed.`)) return;
          try { await api(`/v1/recordings/${encodeURIComponent(r.file_id)}`, { method: 'DELETE' }); tr.remove(); toast('Recording deleted'); } catch (e) { toast(e.message); }
        } }, 'Delete')));
    return tr;
  });
  list.replaceChildren(
    h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Started'), inStream ? null : h('th', {}, 'Stream'), h('th', {}, 'Format'), h('th', {}, 'Duration'), h('th', {}, 'Size'), h('th', {}, 'Video'), h('th', {}, h('span', { class: 'muted' }, 'Actions')))),
      h('tbody', {}, rows)),
    pager(page, pages, `${data.total} recording${data.total === 1 ? '' : 's'}`, toPage));
}

function pager(page, pages, what, toPage) {
  return h('nav', { class: 'pager', 'aria-label': 'Pages' },
    h('button', { type: 'button', disabled: page <= 1, onclick: () => toPage(page - 1) }, '← Newer'),
    h('span', {}, `Page ${page} of ${pages} · ${what}`),
    h('button', { type: 'button', disabled: page >= pages, onclick: () => toPage(page + 1) }, 'Older →'));
}

async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast('URL copied');
  } catch (_) {
    // No clipboard API (plain http on another host): let the user copy it by hand.
    window.prompt('Copy the URL:', text);
  }
}

async function deliveriesView(params, _rest, alive) {
  const form = h('form', { class: 'filters', role: 'search', onsubmit: (e) => {
    e.preventDefault();
    const fd = new FormData(form);
    go('deliveries', new URLSearchParams({ status: fd.get('status'), stream: fd.get('stream') }));
  } },
  h('label', {}, 'Status', h('select', { name: 'status' }, ['', 'pending', 'delivered', 'dead'].map((x) => h('option', { value: x, selected: x === (params.get('status') || '') }, x || 'any')))),
  h('label', {}, 'Stream', h('input', { name: 'stream', value: params.get('stream') || '', size: 14 })),
  h('button', { type: 'submit', class: 'primary' }, 'Filter'));
  const list = h('div');
  main.replaceChildren(h('h1', {}, 'Callback deliveries'), form, list);
  const page = Number(params.get('page')) || 1;
  const q = new URLSearchParams({ page, page_size: PAGE_SIZE });
  for (const k of ['status', 'stream']) if (params.get(k)) q.set(k, params.get(k));
  const refresh = async () => {
    const data = await api(`/v1/deliveries?${q}`);
    if (!alive()) return;
    if (!data.deliveries.length) {
      list.replaceChildren(h('p', { class: 'empty' }, 'No callbacks match.'));
      return;
    }
    const pages = Math.max(1, Math.ceil(data.total / data.page_size));
    list.replaceChildren(h('table', {},
      h('thead', {}, h('tr', {}, ['Created', 'Stream', 'Event', 'Status', 'Attempts', 'Last error', 'Next attempt', ''].map((t) => h('th', {}, t)))),
      h('tbody', {}, data.deliveries.map((d) => h('tr', { dataset: { id: d.id, status: d.status } },
        h('td', { class: 'num', 'data-label': 'Created' }, fmtTime(d.created_at_ms)),
        h('td', { 'data-label': 'Stream' }, d.stream_id),
        h('td', { 'data-label': 'Event' }, h('details', {}, h('summary', {}, `${d.event_type} ${EVENT_NAMES[d.event_type] || ''}`),
          h('div', { class: 'muted' }, d.url), h('pre', {}, d.body))),
        h('td', { 'data-label': 'Status' }, h('span', { class: `badge ${d.status}` }, d.status)),
        h('td', { class: 'num', 'data-label': 'Attempts' }, `${d.attempts} / ${d.max_attempts}`),
        h('td', { 'data-label': 'Last error', class: d.last_error ? 'error' : '' }, d.last_error || ''),
        h('td', { class: 'num', 'data-label': 'Next attempt' }, d.next_attempt_at_ms ? fmtTime(d.next_attempt_at_ms) : ''),
        h('td', { class: 'actions' }, d.status === 'delivered' ? null : h('button', { type: 'button', 'data-action': 'retry', onclick: async (e) => {
          e.target.disabled = true;
          try { await api(`/v1/deliveries/${d.id}/retry`, { method: 'POST' }); toast('Retry queued'); await refresh(); } catch (err) { toast(err.message); e.target.disabled = false; }
        } }, 'Retry now')))))),
    pager(page, pages, `${data.total} callback${data.total === 1 ? '' : 's'}`, (p) => { params.set('page', p); go('deliveries', params); }));
  };
  await refresh();
  timer = setInterval(() => refresh().catch((e) => { if (e instanceof AuthNeeded) keyView(); }), DELIVERY_REFRESH_MS);
}

async function templatesView(_params, _rest, alive) {
  const [rt, rr, ct, cr] = await Promise.all(['record-templates', 'record-rules', 'callback-templates', 'callback-rules'].map((p) => api(`/v1/${p}`)));
  if (!alive()) return;
  const rowsOf = (v) => (Array.isArray(v) ? v : Object.values(v).find(Array.isArray) || []);
  const table = (title, items, cols) => [h('h2', {}, title), items.length
    ? h('table', {}, h('thead', {}, h('tr', {}, cols.map(([t]) => h('th', {}, t)))),
      h('tbody', {}, items.map((it) => h('tr', {}, cols.map(([t, f]) => h('td', { 'data-label': t }, f(it)))))))
    : h('p', { class: 'empty' }, 'None.')];
  const urls = (t) => ['stream_begin_url', 'stream_end_url', 'record_url'].filter((k) => t[k]).map((k) => h('div', {}, h('span', { class: 'muted' }, `${k.replace('_url', '')}: `), t[k]));
  main.replaceChildren(h('h1', {}, 'Templates and rules'),
    h('p', { class: 'muted' }, 'Read-only here; edit them with the REST API (/v1/record-templates, /v1/record-rules, /v1/callback-templates, /v1/callback-rules). A change applies to the next push.'),
    ...table('Record templates', rowsOf(rt), [['Name', (t) => t.name], ['Formats', (t) => t.formats.join(', ')], ['Split every', (t) => `${t.interval_s} s`], ['HLS segment', (t) => `${t.hls_target_s} s`], ['Reconnect window', (t) => `${t.resume_s} s`], ['Keep', (t) => (t.storage_days ? `${t.storage_days} days` : 'forever')]]),
    ...table('Record rules', rowsOf(rr), [['App', (r) => r.app], ['Stream', (r) => r.stream], ['Template', (r) => r.template]]),
    ...table('Callback templates', rowsOf(ct), [['Name', (t) => t.name], ['URLs', urls], ['Key', (t) => (t.key ? '•'.repeat(8) : h('span', { class: 'muted' }, 'none'))], ['Retries', (t) => `${t.retry_count} × ${t.retry_interval_s} s`]]),
    ...table('Callback rules', rowsOf(cr), [['App', (r) => r.app], ['Template', (r) => r.template]]));
}

// The REST API, browsable: built here from the server's own /v1/openapi.json (public, no key).
async function apiView(_params, _rest, alive) {
  const r = await fetch('/v1/openapi.json', { headers: { Accept: 'application/json' } });
  if (!r.ok) throw new Error(`${r.status}: /v1/openapi.json`);
  const doc = await r.json();
  if (!alive()) return;
  const schemas = (doc.components && doc.components.schemas) || {};
  const refName = (ref) => ref.split('/').pop();
  // A schema in a few words: its component's name (linked), `[T]` for arrays, or its type.
  const typeOf = (s) => {
    if (!s) return '';
    if (s.$ref) return h('a', { href: `#/api?schema=${encodeURIComponent(refName(s.$ref))}`, onclick: (e) => { e.preventDefault(); document.getElementById(`schema-${refName(s.$ref)}`)?.scrollIntoView(); } }, refName(s.$ref));
    if (s.type === 'array' || (Array.isArray(s.type) && s.type.includes('array'))) return h('span', {}, '[', typeOf(s.items), ']');
    if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
    if (s.allOf) return h('span', {}, s.allOf.map((x, i) => [i ? ' + ' : '', typeOf(x.$ref ? x : { type: 'object' })]));
    const t = Array.isArray(s.type) ? s.type.join(' | ') : s.type || 'any';
    return s.format ? `${t} (${s.format})` : t;
  };
  const mediaSchema = (content) => content && Object.values(content)[0] && Object.values(content)[0].schema;
  const methods = ['get', 'post', 'put', 'delete'];
  const byTag = new Map((doc.tags || []).map((t) => [t.name, { tag: t, ops: [] }]));
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const m of methods) {
      const op = item[m];
      if (!op) continue;
      const tag = (op.tags && op.tags[0]) || 'other';
      if (!byTag.has(tag)) byTag.set(tag, { tag: { name: tag }, ops: [] });
      byTag.get(tag).ops.push({ path, method: m, op });
    }
  }
  const opView = ({ path, method, op }) => {
    const params = op.parameters || [];
    const body = op.requestBody && mediaSchema(op.requestBody.content);
    const open = op.security && op.security.length === 1 && Object.keys(op.security[0]).length === 0;
    return h('details', { class: 'op', dataset: { method, path } },
      h('summary', {}, h('span', { class: `method ${method}` }, method.toUpperCase()), ' ', h('code', {}, path), ' ', h('span', { class: 'muted' }, op.summary || ''), open ? h('span', { class: 'badge' }, 'no key') : null),
      op.description ? h('p', {}, op.description) : null,
      params.length ? h('table', {}, h('thead', {}, h('tr', {}, ['Parameter', 'In', 'Type', ''].map((t) => h('th', {}, t)))),
        h('tbody', {}, params.map((p) => h('tr', {}, h('td', {}, h('code', {}, p.name), p.required ? ' *' : ''), h('td', {}, p.in), h('td', {}, typeOf(p.schema)), h('td', { class: 'muted' }, p.description || ''))))) : null,
      body ? h('p', {}, 'Body: ', typeOf(body)) : null,
      h('table', {}, h('thead', {}, h('tr', {}, ['Status', 'Body', ''].map((t) => h('th', {}, t)))),
        h('tbody', {}, Object.entries(op.responses || {}).map(([status, resp]) => h('tr', {}, h('td', { class: 'num' }, status), h('td', {}, typeOf(mediaSchema(resp.content))), h('td', { class: 'muted' }, resp.description || ''))))));
  };
  const schemaView = ([name, s]) => {
    const parts = s.allOf ? s.allOf : [s];
    const props = parts.flatMap((p) => Object.entries((p.$ref ? schemas[refName(p.$ref)] : p).properties || {}).map(([k, v]) => [k, v, ((p.$ref ? schemas[refName(p.$ref)] : p).required || []).includes(k)]));
    return h('section', { class: 'schema', id: `schema-${name}` }, h('h3', {}, name),
      s.description ? h('p', { class: 'muted' }, s.description) : null,
      props.length ? h('table', {}, h('thead', {}, h('tr', {}, ['Field', 'Type', ''].map((t) => h('th', {}, t)))),
        h('tbody', {}, props.map(([k, v, req]) => h('tr', {}, h('td', {}, h('code', {}, k), req ? ' *' : ''), h('td', {}, typeOf(v)), h('td', { class: 'muted' }, v.description || ''))))) : h('p', {}, typeOf(s)));
  };
  main.replaceChildren(...[h('h1', {}, doc.info.title || 'API'),
    h('p', {}, h('a', { href: '/v1/openapi.json' }, '/v1/openapi.json'), ` · OpenAPI ${doc.openapi} · version ${doc.info.version}`),
    (doc.info.description || '').split('\n\n').map((t) => h('p', { class: 'muted' }, t)),
    [...byTag.values()].filter((g) => g.ops.length).map((g) => h('section', { class: 'tag', dataset: { tag: g.tag.name } },
      h('h2', {}, g.tag.name), g.tag.description ? h('p', { class: 'muted' }, g.tag.description) : null, g.ops.map(opView))),
    h('h2', {}, 'Schemas'), h('p', { class: 'muted' }, '* required'), Object.entries(schemas).map(schemaView)].flat(Infinity));
}

document.getElementById('forget').addEventListener('click', () => { sessionStorage.removeItem(KEY_STORE); route(); });
window.addEventListener('hashchange', route);
route();
