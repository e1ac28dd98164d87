// RenderFarm operators' dashboard. Reads only the coordinator's HTTP API: /v1/monitoring/*, /v1/jobs/* (with each
// job's server-sent events) and /v1/dead-letters when the coordinator serves it. No framework and no build step:
// a page is a mount function that draws its skeleton once and a refresh function the router calls every
// REFRESH_MS (and, on a job's page, whenever its event stream reports something).
'use strict';

const REFRESH_MS = 1500;
const ITEMS_PAGE = 50;
const JOBS_PAGE = 25;
const MAX_PREVIEWS = 12;
const MAX_TILES = 1000;
const JOB_STATES = ['Queued', 'Running', 'Succeeded', 'CompletedWithErrors', 'Failed', 'Canceled'];
const ITEM_STATES = ['Queued', 'Running', 'Retrying', 'Succeeded', 'Failed', 'Canceled'];
const JOB_EVENTS = ['snapshot', 'item-started', 'item-progress', 'item-done', 'item-retrying', 'item-failed', 'job-state', 'job-done', 'preview'];

const view = document.getElementById('view');
const statusLine = document.getElementById('status');
let current = null; // { refresh, dispose }
let timer = null;

// ---------- helpers ----------

const esc = value => String(value ?? '').replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));

async function api(path, options) {
  const response = await fetch(path, { headers: { Accept: 'application/json' }, ...options });
  if (!response.ok) {
    let problem = null;
    try { problem = await response.json(); } catch { /* not JSON */ }
    const error = new Error(problem?.title ? `${problem.title} ${problem.detail ?? ''}` : `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = Number(n) || 0, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
  return `${value >= 10 || unit === 0 ? value.toFixed(0) : value.toFixed(1)} ${units[unit]}`;
}

function ago(iso) {
  if (!iso) return '';
  const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (seconds < 90) return `${seconds.toFixed(0)} s ago`;
  if (seconds < 5400) return `${(seconds / 60).toFixed(0)} min ago`;
  return `${(seconds / 3600).toFixed(1)} h ago`;
}

const time = iso => iso ? new Date(iso).toLocaleString() : '';
const badge = (text, cls = text) => `<span class="badge s-${esc(cls)}">${esc(text)}</span>`;
const pct = (part, whole) => whole > 0 ? Math.min(100, Math.max(0, 100 * part / whole)) : 0;

function bar(segments, label, testid = '') {
  const parts = segments.map(([cls, width]) => `<i class="${cls}" style="width:${width.toFixed(2)}%"></i>`).join('');
  return `<div class="bar"${testid ? ` data-testid="${testid}"` : ''}>${parts}<label>${esc(label)}</label></div>`;
}

function progressBar(p, testid) {
  const segments = ['Succeeded', 'Failed', 'Canceled', 'Running', 'Retrying'].map(s => [`fill-${s}`, pct(p[s.toLowerCase()], p.total)]);
  return bar(segments, `${p.done} / ${p.total} done · ${p.running} running · ${p.queued} queued`, testid);
}

function setStatus(ok, text) {
  statusLine.textContent = ok ? `updated ${new Date().toLocaleTimeString()}` : text;
  statusLine.className = ok ? 'muted' : 'error';
}

// ---------- router ----------

function route() {
  const hash = location.hash || '#/fleet';
  const job = hash.match(/^#\/jobs\/([0-9a-fA-F-]{36})/);
  const page = job ? 'jobs' : (hash.match(/^#\/(\w+)/)?.[1] ?? 'fleet');
  document.querySelectorAll('nav a').forEach(a => a.classList.toggle('active', a.dataset.page === page));
  if (current?.dispose) current.dispose();
  clearInterval(timer);
  current = job ? jobPage(job[1]) : page === 'queues' ? queuesPage() : page === 'jobs' ? jobsPage() : fleetPage();
  tick();
  timer = setInterval(tick, REFRESH_MS);
}

async function tick() {
  const page = current;
  try {
    await page.refresh();
    if (page === current) setStatus(true);
  } catch (error) {
    if (page === current) setStatus(false, `cannot read the farm: ${error.message}`);
  }
}

// ---------- Fleet ----------

function fleetPage() {
  view.innerHTML = '<h2>Fleet</h2><div class="grid" id="workers"></div>';
  const box = document.getElementById('workers');
  return {
    async refresh() {
      const fleet = await api('/v1/monitoring/fleet');
      if (fleet.length === 0) {
        box.innerHTML = '<p class="muted" data-testid="no-workers">No worker has heartbeated yet.</p>';
        return;
      }
      box.innerHTML = fleet.map(workerCard).join('');
    },
  };
}

function workerCard({ worker: w, status, current }) {
  const used = w.memoryTotalBytes - w.memoryFreeBytes;
  const items = current.length === 0 ? '<span class="muted">nothing</span>' : current.map(c => `
      <div data-testid="worker-item">
        <a href="#/jobs/${esc(c.jobId)}">job ${esc(c.jobId.slice(0, 8))}</a> item #${esc(c.index)}
        ${c.stepsPerSecond != null ? `<span class="muted">· ${c.stepsPerSecond.toFixed(2)} steps/s</span>` : ''}
        ${bar([['fill-step', pct(c.step, c.totalSteps)]], `step ${c.step} / ${c.totalSteps}`)}
      </div>`).join('');
  return `
    <section class="panel" data-testid="worker" data-worker-id="${esc(w.id)}" data-status="${esc(status)}">
      <h2>${esc(w.id)} ${badge(status)} ${badge(w.state)}</h2>
      <dl class="kv">
        <dt>device</dt><dd>${esc(w.device)} <span class="muted">on ${esc(w.host)}</span></dd>
        <dt>memory</dt><dd>${bar([['fill-used', pct(used, w.memoryTotalBytes)]], `${bytes(used)} used of ${bytes(w.memoryTotalBytes)}`)}</dd>
        <dt>budget</dt><dd>${bar([['fill-budget', pct(w.memoryBudgetBytes, w.memoryTotalBytes)]], `${bytes(w.memoryBudgetBytes)} budget`)}</dd>
        <dt>largest image</dt><dd>${w.maxSquareSide > 0 ? `${w.maxSquareSide}×${w.maxSquareSide}` : 'unknown (no limit)'}</dd>
        <dt>strategy</dt><dd>${esc(w.strategy)}</dd>
        <dt>providers</dt><dd>${esc(w.providers.join(', '))}</dd>
        <dt>loaded models</dt><dd>${esc(w.loadedModels.join(', ') || 'none')}</dd>
        <dt>pool</dt><dd>${esc(w.pool)}</dd>
        <dt>rendering</dt><dd>${items}</dd>
        <dt>heartbeat</dt><dd title="${esc(time(w.lastHeartbeat))}">${esc(ago(w.lastHeartbeat))}</dd>
      </dl>
    </section>`;
}

// ---------- Queues ----------

function queuesPage() {
  view.innerHTML = `
    <h2>Queues</h2>
    <div class="panel"><h3>Items</h3><div class="counts" id="items"></div><h3>Jobs</h3><div class="counts" id="jobs"></div></div>
    <div class="panel"><h3>Outbox and dead letters</h3><div class="counts" id="outbox"></div></div>
    <div class="panel">
      <h3>Throughput per minute <span class="legend"><i class="fill-Succeeded"></i>succeeded<i class="fill-Failed"></i>failed</span></h3>
      <div id="throughput"></div>
      <h3>Mean wait from submission to start (s)</h3>
      <div id="wait"></div>
    </div>
    <div class="panel"><h3>Waiting jobs: why each waits</h3><div id="waiting"></div></div>`;
  return {
    async refresh() {
      const [stats, waiting, dead] = await Promise.all([
        api('/v1/monitoring/queues?minutes=30'),
        api('/v1/monitoring/waiting?pageSize=20'),
        deadLetters(),
      ]);
      const counts = o => Object.entries(o).map(([k, v]) => `<div class="count" data-testid="count-${esc(k)}"><b>${esc(v)}</b><span>${esc(k)}</span></div>`).join('');
      document.getElementById('items').innerHTML = counts(stats.items);
      document.getElementById('jobs').innerHTML = counts(stats.jobs);
      document.getElementById('outbox').innerHTML = counts({
        'work units to send': stats.outbox.workUnits,
        'events to send': stats.outbox.events,
        'oldest due row (s)': stats.outbox.oldestAgeSeconds.toFixed(1),
      }) + dead;
      document.getElementById('throughput').innerHTML = barsChart(stats.minutes);
      document.getElementById('wait').innerHTML = lineChart(stats.minutes.map(m => m.meanWaitSeconds));
      document.getElementById('waiting').innerHTML = waitingTable(waiting);
    },
  };
}

// The dead-letter endpoint comes with the broker's management API; a coordinator without it answers 404.
async function deadLetters() {
  try {
    const report = await api('/v1/dead-letters');
    const queues = report.queues.filter(q => q.messages > 0).map(q => `${esc(q.errorQueue)}: ${esc(q.messages)}`).join(', ');
    return `<div class="count" data-testid="dead-letters" title="${queues}"><b>${esc(report.total)}</b><span>dead-lettered</span></div>`;
  } catch (error) {
    return `<div class="count muted" data-testid="dead-letters"><b>–</b><span>dead letters: ${error.status === 404 ? 'not served here' : esc(error.message)}</span></div>`;
  }
}

function barsChart(minutes) {
  const width = 600, height = 140, pad = 18;
  const max = Math.max(1, ...minutes.map(m => m.succeeded + m.failed));
  const w = (width - pad) / minutes.length;
  const bars = minutes.map((m, i) => {
    const hs = (height - pad) * m.succeeded / max, hf = (height - pad) * m.failed / max;
    const x = pad + i * w;
    return `<rect x="${x}" y="${height - pad - hs}" width="${w - 2}" height="${hs}" fill="var(--ok)"><title>${esc(time(m.start))}: ${m.succeeded} succeeded</title></rect>`
      + `<rect x="${x}" y="${height - pad - hs - hf}" width="${w - 2}" height="${hf}" fill="var(--fail)"><title>${m.failed} failed</title></rect>`;
  }).join('');
  return `<svg class="chart" data-testid="throughput-chart" viewBox="0 0 ${width} ${height}" preserveAspectRatio="none">
    <text x="2" y="12" font-size="10" fill="#6b7280">${max}</text><text x="2" y="${height - 4}" font-size="10" fill="#6b7280">0</text>${bars}</svg>`;
}

function lineChart(values) {
  const width = 600, height = 140, pad = 18;
  const known = values.filter(v => v != null);
  const max = Math.max(1, ...known);
  const step = (width - pad) / Math.max(1, values.length - 1);
  const points = values.map((v, i) => v == null ? null : `${pad + i * step},${height - pad - (height - pad) * v / max}`).filter(Boolean);
  return `<svg class="chart" data-testid="wait-chart" viewBox="0 0 ${width} ${height}" preserveAspectRatio="none">
    <text x="2" y="12" font-size="10" fill="#6b7280">${max.toFixed(1)}</text><text x="2" y="${height - 4}" font-size="10" fill="#6b7280">0</text>
    <polyline fill="none" stroke="var(--run)" stroke-width="2" points="${points.join(' ')}"/>
    ${points.map(p => `<circle r="3" fill="var(--run)" cx="${p.split(',')[0]}" cy="${p.split(',')[1]}"/>`).join('')}</svg>`;
}

function waitingTable(page) {
  if (page.items.length === 0) return '<p class="muted">No job is waiting.</p>';
  const rows = page.items.map(j => `
    <tr data-testid="waiting-job" data-job-id="${esc(j.jobId)}">
      <td>#${esc(j.position)}</td>
      <td><a href="#/jobs/${esc(j.jobId)}">${esc(j.jobId.slice(0, 8))}</a></td>
      <td>${esc(j.queuedItems)}</td><td>${esc(j.itemsAhead)}</td>
      <td>${j.estimatedStartSeconds != null ? `${Math.ceil(j.estimatedStartSeconds)} s` : '<span class="muted">unknown</span>'}</td>
      <td>${esc(j.summary)}${verdicts(j.workers)}</td>
    </tr>`).join('');
  return `<table><thead><tr><th>position</th><th>job</th><th>queued</th><th>items ahead</th><th>estimated start</th><th>why</th></tr></thead>
    <tbody>${rows}</tbody></table>${page.total > page.items.length ? `<p class="muted">${page.total} waiting jobs; the first ${page.items.length} shown.</p>` : ''}`;
}

function verdicts(workers) {
  if (workers.length === 0) return '';
  return `<ul class="muted">${workers.map(v => `<li data-testid="verdict" data-worker-id="${esc(v.workerId)}">${esc(v.workerId)}${v.canTake ? ' (can take it)' : ''}: ${esc(v.explanation)}</li>`).join('')}</ul>`;
}

// ---------- Jobs ----------

function jobsPage() {
  const state = { filter: '', page: 1 };
  view.innerHTML = `
    <h2>Jobs</h2>
    <div class="toolbar">
      <label>state <select id="filter" data-testid="job-filter"><option value="">all</option>${JOB_STATES.map(s => `<option>${s}</option>`).join('')}</select></label>
      <button id="prev">previous</button><span id="pageinfo" class="muted"></span><button id="next">next</button>
    </div>
    <div class="panel"><table><thead><tr><th>job</th><th>state</th><th>submitted</th><th>model</th><th>size</th><th>mode</th><th style="width:35%">progress</th></tr></thead>
      <tbody id="jobrows"></tbody></table></div>`;
  document.getElementById('filter').onchange = e => { state.filter = e.target.value; state.page = 1; tick(); };
  document.getElementById('prev').onclick = () => { if (state.page > 1) { state.page--; tick(); } };
  document.getElementById('next').onclick = () => { state.page++; tick(); };
  return {
    async refresh() {
      const query = new URLSearchParams({ page: state.page, pageSize: JOBS_PAGE });
      if (state.filter) query.set('state', state.filter);
      const result = await api(`/v1/jobs?${query}`);
      const pages = Math.max(1, Math.ceil(result.total / result.pageSize));
      if (state.page > pages) { state.page = pages; }
      document.getElementById('pageinfo').textContent = `page ${result.page} of ${pages} (${result.total} jobs)`;
      document.getElementById('prev').disabled = result.page <= 1;
      document.getElementById('next').disabled = result.page >= pages;
      document.getElementById('jobrows').innerHTML = result.items.map(j => `
        <tr data-testid="job-row" data-job-id="${esc(j.id)}">
          <td><a class="mono" href="#/jobs/${esc(j.id)}">${esc(j.id)}</a></td>
          <td>${badge(j.state)}</td><td>${esc(time(j.createdAt))}</td><td>${esc(j.model)}</td>
          <td>${esc(j.width)}×${esc(j.height)}</td><td>${esc(j.mode)}</td><td>${progressBar(j.progress)}</td>
        </tr>`).join('') || '<tr><td colspan="7" class="muted">No jobs.</td></tr>';
    },
  };
}

function jobPage(id) {
  const items = { after: -1, history: [], filter: '' };
  let events = null;
  let pending = null;
  view.innerHTML = `
    <h2>Job <span class="mono">${esc(id)}</span> <span id="jobstate"></span></h2>
    <div class="panel">
      <div class="toolbar">
        <button class="danger" id="cancel" data-testid="cancel">Cancel job</button>
        <button id="retry" data-testid="retry">Retry failed items</button>
        <span id="actionresult" data-testid="action-result"></span>
      </div>
      <div id="progress"></div>
      <dl class="kv" id="facts"></dl>
    </div>
    <div class="panel" id="waitingpanel" hidden><h3>Why it waits</h3><div id="waiting"></div></div>
    <div class="panel" id="runningpanel" hidden><h3>Running items</h3><div class="previews" id="running"></div></div>
    <div class="panel" id="tilespanel" hidden><h3>Tiles</h3><div id="tiles"></div></div>
    <div class="panel" id="errorspanel" hidden><h3>Errors</h3><div id="errors"></div></div>
    <div class="panel">
      <h3>Items</h3>
      <div class="toolbar">
        <label>state <select id="itemfilter"><option value="">all</option>${ITEM_STATES.map(s => `<option>${s}</option>`).join('')}</select></label>
        <button id="iprev">previous</button><button id="inext">next</button>
      </div>
      <table><thead><tr><th>#</th><th>seed</th><th>state</th><th>attempt</th><th>worker</th><th>step</th><th>finished</th><th>error / image</th></tr></thead>
        <tbody id="items"></tbody></table>
    </div>`;

  const act = async (verb, question) => {
    if (!confirm(question)) return;
    const result = document.getElementById('actionresult');
    try {
      const body = await api(`/v1/jobs/${id}/${verb}`, { method: 'POST' });
      result.textContent = verb === 'retry' ? `${body.requeued} item(s) queued again` : 'canceled';
      result.className = '';
    } catch (error) {
      result.textContent = error.message;
      result.className = 'error';
    }
    tick();
  };
  document.getElementById('cancel').onclick = () => act('cancel', 'Cancel this job? Finished images are kept.');
  document.getElementById('retry').onclick = () => act('retry', 'Queue a new attempt of every failed and canceled item?');
  document.getElementById('itemfilter').onchange = e => { items.filter = e.target.value; items.after = -1; items.history = []; tick(); };
  document.getElementById('iprev').onclick = () => { if (items.history.length) { items.after = items.history.pop(); tick(); } };
  document.getElementById('inext').onclick = () => { if (items.next != null) { items.history.push(items.after); items.after = items.next; tick(); } };

  // Server-sent events make the page react at once; the periodic refresh still runs, because a coordinator
  // streams only the events it handled itself.
  events = new EventSource(`/v1/jobs/${id}/events`);
  const soon = () => { if (!pending) pending = setTimeout(() => { pending = null; tick(); }, 250); };
  JOB_EVENTS.forEach(type => events.addEventListener(type, soon));
  events.addEventListener('job-done', () => events.close());

  return {
    dispose() { events?.close(); clearTimeout(pending); },
    async refresh() {
      const query = new URLSearchParams({ limit: ITEMS_PAGE, after: items.after });
      if (items.filter) query.set('state', items.filter);
      let job, page;
      try {
        [job, page] = await Promise.all([
          api(`/v1/jobs/${id}?imagesLimit=0&tilesLimit=${MAX_TILES}`),
          api(`/v1/jobs/${id}/items?${query}`),
        ]);
      } catch (error) {
        if (error.status === 404) {
          events.close();
          view.innerHTML = `<p class="error" data-testid="no-such-job">The farm has no job ${esc(id)}.</p>`;
          return;
        }
        throw error;
      }
      const p = job.progress;
      const final = ['Succeeded', 'CompletedWithErrors', 'Failed', 'Canceled'].includes(job.state);
      document.getElementById('jobstate').innerHTML = `<span data-testid="job-state" data-state="${esc(job.state)}">${badge(job.state)}</span>`;
      document.getElementById('progress').innerHTML = progressBar(p, 'job-progress');
      document.getElementById('progress').firstElementChild.dataset.done = p.done;
      document.getElementById('progress').firstElementChild.dataset.succeeded = p.succeeded;
      document.getElementById('cancel').disabled = final;
      document.getElementById('retry').disabled = p.failed + p.canceled === 0 || job.mode === 'hires' || job.mode === 'upscale';
      document.getElementById('facts').innerHTML = `
        <dt>model</dt><dd>${esc(job.model)}</dd><dt>size</dt><dd>${esc(job.width)}×${esc(job.height)} · ${esc(job.mode)}</dd>
        <dt>items</dt><dd>${esc(p.total)}: ${esc(p.succeeded)} succeeded, ${esc(p.failed)} failed, ${esc(p.canceled)} canceled, ${esc(p.running)} running, ${esc(p.retrying)} retrying, ${esc(p.queued)} queued</dd>
        <dt>submitted</dt><dd>${esc(time(job.createdAt))}</dd>
        ${job.finishedAt ? `<dt>finished</dt><dd>${esc(time(job.finishedAt))}</dd>` : ''}
        ${job.cancelReason ? `<dt>cancel reason</dt><dd>${esc(job.cancelReason)}</dd>` : ''}
        ${job.resultImage ? `<dt>result</dt><dd><a href="${esc(job.resultImage)}" target="_blank">stitched image</a></dd>` : ''}`;

      await showWaiting(id, !final && p.queued + p.retrying > 0);
      showRunning(id, job.runningItems);
      showTiles(job);
      document.getElementById('errorspanel').hidden = job.errors.length === 0;
      document.getElementById('errors').innerHTML = job.errors.map(e =>
        `<div data-testid="item-error">#${esc(e.index)} (attempt ${esc(e.attempt)}${e.final ? ', final' : ', retrying'}): <span class="error">${esc(e.error)}</span></div>`).join('');

      items.next = page.next;
      document.getElementById('iprev').disabled = items.history.length === 0;
      document.getElementById('inext').disabled = page.next == null;
      document.getElementById('items').innerHTML = page.items.map(i => `
        <tr data-testid="item-row" data-index="${esc(i.index)}" data-state="${esc(i.state)}">
          <td>${esc(i.index)}</td><td class="mono">${esc(i.seed)}</td><td>${badge(i.state)}</td><td>${esc(i.attempt)}</td>
          <td>${esc(i.workerId ?? '')}</td><td>${i.state === 'Running' ? `${esc(i.step)} / ${esc(i.totalSteps)}` : ''}</td>
          <td>${esc(time(i.finishedAt))}</td>
          <td>${i.imageUrl ? `<a href="${esc(i.imageUrl)}" target="_blank">image</a>` : ''} <span class="error">${esc(i.error ?? '')}</span></td>
        </tr>`).join('') || '<tr><td colspan="8" class="muted">No items.</td></tr>';
    },
  };
}

async function showWaiting(id, waits) {
  const panel = document.getElementById('waitingpanel');
  panel.hidden = !waits;
  if (!waits) return;
  const w = await api(`/v1/jobs/${id}/waiting`);
  document.getElementById('waiting').innerHTML = `<p data-testid="waiting-summary">${esc(w.summary)}</p>${verdicts(w.workers)}`;
}

// A running item's latest preview comes from GET /v1/jobs/{id}/items/{index}/preview where the coordinator keeps
// previews: an image when it answers 200; on 404 (no preview yet, or a coordinator without previews) nothing shows.
function showRunning(id, running) {
  const panel = document.getElementById('runningpanel');
  const box = document.getElementById('running');
  panel.hidden = running.length === 0;
  const shown = running.slice(0, MAX_PREVIEWS);
  const keep = new Set(shown.map(r => String(r.index)));
  [...box.children].forEach(child => { if (!keep.has(child.dataset.index)) child.remove(); });
  for (const r of shown) {
    let card = box.querySelector(`[data-index="${r.index}"]`);
    if (!card) {
      card = document.createElement('div');
      card.className = 'preview';
      card.dataset.index = r.index;
      card.dataset.testid = 'running-item';
      card.innerHTML = '<img alt="preview" data-testid="preview"><div class="caption"></div>';
      const img = card.querySelector('img');
      img.onload = () => img.classList.add('loaded');
      img.onerror = () => img.classList.remove('loaded');
      box.appendChild(card);
    }
    card.querySelector('.caption').innerHTML = `#${esc(r.index)} on ${esc(r.workerId ?? '?')}${bar([['fill-step', pct(r.step, r.totalSteps)]], `step ${r.step} / ${r.totalSteps}`)}`;
    const img = card.querySelector('img');
    const src = `/v1/jobs/${id}/items/${r.index}/preview?step=${r.step}&attempt=${r.attempt}`;
    if (img.getAttribute('src') !== src) img.setAttribute('src', src);
  }
}

function showTiles(job) {
  const panel = document.getElementById('tilespanel');
  panel.hidden = !job.tiles;
  if (!job.tiles) return;
  const scale = Math.min(1, 480 / job.width);
  const tiles = job.tiles.map(t => `<div data-testid="tile" data-state="${esc(t.state)}" class="s-${esc(t.state)}" title="tile ${t.index}: ${esc(t.state)}${t.workerId ? ' on ' + esc(t.workerId) : ''}"
      style="left:${t.x * scale}px;top:${t.y * scale}px;width:${t.width * scale}px;height:${t.height * scale}px">${t.index}</div>`).join('');
  const done = job.tiles.filter(t => t.state === 'Succeeded').length;
  const more = job.tiles.length >= MAX_TILES ? ` (the first ${MAX_TILES} tiles)` : '';
  document.getElementById('tiles').innerHTML = `<p class="muted" data-testid="tiles-done">${done} of ${job.tiles.length} tiles done${more}</p>
    <div class="tilemap" data-testid="tilemap" style="width:${job.width * scale}px;height:${job.height * scale}px">${tiles}</div>`;
}

window.addEventListener('hashchange', route);
route();
