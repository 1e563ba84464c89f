// The dashboard's app.js, served at /app.js (docs/api.md, "Dashboard").

extension DashboardAssets {
    /// The dashboard script: hash router, fetches, one EventSource, views built with DOM calls.
    static let appJS = #"""
        // sparsegrid dashboard. Plain ES2020, no dependencies. Every text from the server goes into the
        // page through textContent or setAttribute, never as markup.
        'use strict';

        (() => {
          // `?token=` decoded as the server decodes it: percent-escapes only. URLSearchParams would
          // turn a `+` into a space, and a token with a `+` pasted into the address bar would be refused.
          const token = (() => {
            for (const part of location.search.slice(1).split('&')) {
              const eq = part.indexOf('=');
              if (eq < 0 || part.slice(0, eq) !== 'token') continue;
              try { return decodeURIComponent(part.slice(eq + 1)); } catch (e) { return part.slice(eq + 1); }
            }
            return null;
          })();
          const STATES = ['pending', 'ready', 'running', 'succeeded', 'failed', 'cancelled'];
          const SVGNS = 'http://www.w3.org/2000/svg';
          const PALETTE = ['#0969da', '#cf222e', '#1a7f37', '#8250df', '#bf8700', '#1b7c83', '#bc4c00', '#e85aad',
            '#57606a', '#0550ae'];
          const MAX_ROWS = 2000;
          window.sparsegridEvents = 0;
          let renders = 0;

          // ---- fetching ----------------------------------------------------------------------------

          function withToken(path) {
            if (!token) return path;
            return path + (path.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token);
          }

          async function fetchJSON(path) {
            const headers = token ? { Authorization: 'Bearer ' + token } : {};
            const response = await fetch(path, { headers, cache: 'no-store' });
            let body = null;
            try { body = await response.json(); } catch (e) { body = null; }
            if (!response.ok) {
              const message = body && typeof body.error === 'string' ? body.error : 'HTTP ' + response.status;
              throw new Error(message.slice(0, 500));
            }
            return body;
          }

          const enc = (s) => encodeURIComponent(String(s));

          // ---- DOM helpers -------------------------------------------------------------------------

          function setAttrs(node, attrs) {
            for (const [key, value] of Object.entries(attrs || {})) {
              if (value === null || value === undefined || value === false) continue;
              if (key === 'text') node.textContent = String(value);
              else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
              else if (!key.startsWith('on')) node.setAttribute(key, String(value));
            }
          }

          function add(node, children) {
            for (const child of children.flat()) {
              if (child === null || child === undefined || child === false) continue;
              node.append(child instanceof Node ? child : document.createTextNode(String(child)));
            }
            return node;
          }

          function el(tag, attrs, ...children) {
            const node = document.createElement(tag);
            setAttrs(node, attrs);
            return add(node, children);
          }

          function svgEl(tag, attrs, ...children) {
            const node = document.createElementNS(SVGNS, tag);
            setAttrs(node, attrs);
            return add(node, children);
          }

          // Replaces a node's children (null and false children are skipped, as in el()).
          function fill(node, ...children) {
            node.replaceChildren();
            return add(node, children);
          }

          function table(cls, headers, rows) {
            return el('table', { class: cls },
              el('thead', null, el('tr', null, headers.map((h) => el('th', { class: h.cls }, h.text ?? h)))),
              el('tbody', null, rows));
          }

          // ---- formatting --------------------------------------------------------------------------

          const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

          function num(v, digits = 2) {
            if (!isNum(v)) return '—';
            if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
            return v.toFixed(digits);
          }

          function duration(seconds) {
            if (!isNum(seconds) || seconds < 0) return '—';
            const s = Math.round(seconds);
            if (s < 60) return s + 's';
            if (s < 3600) return Math.floor(s / 60) + 'm' + String(s % 60).padStart(2, '0') + 's';
            const h = Math.floor(s / 3600);
            if (h < 48) return h + 'h' + String(Math.floor((s % 3600) / 60)).padStart(2, '0') + 'm';
            return Math.floor(h / 24) + 'd' + (h % 24) + 'h';
          }

          function clock(t) {
            if (!isNum(t) || t <= 0) return '—';
            const d = new Date(t * 1000);
            const p = (n) => String(n).padStart(2, '0');
            return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + ' ' + p(d.getHours()) + ':' +
              p(d.getMinutes()) + ':' + p(d.getSeconds());
          }

          function bytes(n) {
            if (!isNum(n) || n < 0) return '—';
            const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
            let i = 0;
            while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
            return (i === 0 ? String(n) : n.toFixed(1)) + ' ' + units[i];
          }

          function plain(v) {
            if (v === null || v === undefined) return '—';
            if (typeof v === 'string') return v;
            if (typeof v === 'number') return String(v);
            return JSON.stringify(v);
          }

          function etaText(eta) {
            if (!eta || typeof eta !== 'object') return 'ETA —';
            switch (eta.state) {
              case 'estimate':
                return 'ETA ' + duration(eta.seconds) + ' (' + duration(eta.low) + '–' + duration(eta.high) + ')';
              case 'unknown': {
                const stages = Array.isArray(eta.stagesUnmeasured) ? eta.stagesUnmeasured.slice(0, 5).join(', ') : '';
                const bound = isNum(eta.atLeastSeconds) && eta.atLeastSeconds >= 1;
                const least = bound ? ', at least ' + duration(eta.atLeastSeconds) : '';
                return 'ETA unknown until a task of ' + (stages || 'each stage') + ' finishes' + least;
              }
              case 'no_workers': return 'ETA — no workers';
              case 'done': return 'done';
              default: return 'ETA —';
            }
          }

          const stateChip = (state) => el('span', { class: 'badge s-' + safeClass(state), text: state });
          const safeClass = (s) => String(s).replace(/[^a-z_]/gi, '').slice(0, 20) || 'unknown';
          const taskLink = (id, text) => el('a', { href: '#/tasks/' + enc(id), text: text ?? id });

          // The headline metric of a task: its accuracy, else the first of a few common metrics.
          function headline(metrics) {
            if (!metrics || typeof metrics !== 'object') return '';
            if (isNum(metrics.accuracy)) return metrics.accuracy.toFixed(1) + '%';
            if (isNum(metrics.val_accuracy)) return metrics.val_accuracy.toFixed(1) + '% val';
            for (const name of ['loss', 'latency_ms', 'gmacs_effective']) {
              if (isNum(metrics[name])) return name + ' ' + num(metrics[name], 3);
            }
            return '';
          }

          function countsRow(counts) {
            return el('div', { class: 'counts' }, STATES.map((s) => el('span', { class: 'chip s-' + s },
              el('span', { class: 'count', 'data-state': s, text: isNum(counts?.[s]) ? counts[s] : 0 }), s)));
          }

          function progressBar(counts, total) {
            const bar = el('div', { class: 'progress', role: 'progressbar' });
            const sum = Math.max(isNum(total) ? total : 0, 1);
            for (const s of ['succeeded', 'failed', 'cancelled', 'running']) {
              const n = isNum(counts?.[s]) ? counts[s] : 0;
              if (n <= 0) continue;
              const part = el('div', { class: 'bg-' + s, title: n + ' ' + s });
              part.style.width = Math.min(100, (100 * n) / sum).toFixed(2) + '%';
              bar.append(part);
            }
            const done = (counts?.succeeded || 0) + (counts?.failed || 0) + (counts?.cancelled || 0);
            bar.setAttribute('aria-valuenow', String(done));
            bar.setAttribute('aria-valuemax', String(sum));
            return bar;
          }

          function rateText(perMinute) {
            return isNum(perMinute) ? num(perMinute, perMinute < 10 ? 2 : 1) + ' tasks/min' : '— tasks/min';
          }

          // ---- sweeps view -------------------------------------------------------------------------

          // A sweep's tasks, tables and results change only when a task changes state: they are
          // fetched again only when the counts differ from the last fetch (or on a new page).
          const countsKey = (sweep) => STATES.map((k) => (isNum(sweep?.counts?.[k]) ? sweep.counts[k] : 0)).join('-');
          const cache = new Map();

          async function cached(path, key, fetcher) {
            const hit = cache.get(path);
            if (hit && hit.key === key) return hit.value;
            const value = await fetcher();
            cache.set(path, { key, value });
            return value;
          }

          async function loadSweeps() {
            const list = await fetchJSON('api/sweeps');
            const sweeps = Array.isArray(list?.sweeps) ? list.sweeps.slice(-50) : [];
            const details = await Promise.all(sweeps.map((s) => {
              const path = 'api/sweeps/' + enc(s.name);
              return cached(path, countsKey(s), () => fetchJSON(path)).catch(() => null);
            }));
            return { sweeps, details };
          }

          function renderSweeps(main, data) {
            const out = [el('h1', { text: 'Sweeps' })];
            if (data.sweeps.length === 0) {
              out.push(el('p', { class: 'muted', text: 'No sweep has been launched yet.' }));
            }
            data.sweeps.slice().reverse().forEach((sweep, i) => {
              const detail = data.details[data.sweeps.length - 1 - i];
              out.push(sweepSection(sweep, detail));
            });
            fill(main, out);
          }

          function sweepSection(sweep, detail) {
            const name = String(sweep.name);
            const section = el('section', { class: 'sweep', 'data-sweep': name });
            const head = el('div', { class: 'sweep-head' },
              el('h2', null, el('a', { class: 'sweep-link', href: '#/sweeps/' + enc(name), text: name })),
              el('span', { class: 'muted', text: 'engine ' + plain(sweep.engine) + ' · ' + plain(sweep.total) +
                ' tasks · created ' + clock(sweep.createdAt) }),
              sweep.cancelled ? stateChip('cancelled') : null);
            section.append(head, progressBar(sweep.counts, sweep.total), countsRow(sweep.counts),
              el('div', { class: 'stats' },
                el('span', { class: 'rate', text: rateText(sweep.perMinute) }),
                el('span', { class: 'eta', text: etaText(sweep.eta) }),
                typeof sweep.waitingReason === 'string'
                  ? el('span', { class: 'waiting', text: sweep.waitingReason }) : null));
            if (detail && Array.isArray(detail.tasks)) {
              section.append(el('div', { class: 'scroll' }, matrix(detail.tasks)));
            }
            return section;
          }

          // Model × method matrix: one cell per task; more tasks of a model and method (seeds, other
          // parameters) get columns of their own.
          function matrix(tasks) {
            const models = [];
            const byKey = new Map();
            const seeds = new Set(tasks.map((t) => plain(t.params?.seed)));
            const columns = [];
            for (const task of tasks.slice(0, MAX_ROWS)) {
              const model = plain(task.params?.model ?? '—');
              const method = typeof task.params?.method === 'string' ? task.params.method : 'dense';
              let column = method + (seeds.size > 1 ? ' · seed ' + plain(task.params?.seed) : '');
              if (!models.includes(model)) models.push(model);
              let n = 1;
              while (byKey.has(model + '\u0000' + column + (n > 1 ? ' #' + n : ''))) n += 1;
              if (n > 1) column += ' #' + n;
              if (!columns.includes(column)) columns.push(column);
              byKey.set(model + '\u0000' + column, task);
            }
            const rows = models.map((model) => el('tr', null, el('th', { text: model }), columns.map((column) => {
              const task = byKey.get(model + '\u0000' + column);
              if (!task) return el('td', { class: 'empty' });
              const state = String(task.state);
              return el('td', { 'data-task-id': String(task.id), 'data-state': state, class: 's-' + safeClass(state),
                title: String(task.stage) + ' · ' + String(task.id) },
              el('a', { href: '#/tasks/' + enc(task.id) },
                el('span', { class: 'metric', text: headline(task.metrics) || '\u00a0' }),
                el('span', { class: 'label', text: state })));
            })));
            return table('matrix', ['model \\ method', ...columns], rows);
          }

          // ---- sweep view --------------------------------------------------------------------------

          async function loadSweep(route) {
            const base = 'api/sweeps/' + enc(route.name);
            const sweep = await fetchJSON(base);
            const key = countsKey(sweep);
            const [tables, results] = await Promise.all([
              cached(base + '/tables', key, () => fetchJSON(base + '/tables')).catch((e) => ({ error: e.message })),
              cached(base + '/results', key, () => fetchJSON(base + '/results')).catch(() => []),
            ]);
            return { sweep, tables, results: Array.isArray(results) ? results : [] };
          }

          // State kept across renders of one sweep page: the filter and sort, and the figures' version.
          let sweepPage = null;

          function buildSweepPage(main, name) {
            const filter = el('input', { id: 'task-filter', type: 'search', 'aria-label': 'filter tasks',
              placeholder: 'filter tasks (e.g. resnet failed)' });
            const page = {
              name, sort: { key: 'model', dir: 1 }, rows: [], figureVersion: null,
              counts: el('div', { id: 'sweep-counts' }), stats: el('div', { class: 'stats' }),
              bar: el('div'), tables: el('div', { id: 'tables' }),
              figures: el('div', { id: 'figures', class: 'figures' }),
              pareto: el('div', { id: 'pareto', class: 'pareto' }), tasks: el('div', { id: 'tasks', class: 'scroll' }),
              filter, shown: el('span', { class: 'muted' }),
            };
            filter.addEventListener('input', () => renderTaskTable(page));
            for (let n = 1; n <= 4; n += 1) {
              const img = el('img', { alt: 'Figure ' + n + ' of the report', 'data-figure': n });
              page.figures.append(el('figure', null, img));
            }
            fill(main,
              el('h1', null, el('a', { href: '#/', text: 'Sweeps' }), ' / ', el('span', { text: name })),
              el('div', { class: 'card' }, page.bar, page.counts, page.stats),
              el('h2', { text: 'Comparison tables' }), el('div', { class: 'card scroll' }, page.tables),
              el('h2', { text: 'Figures' }), page.figures,
              el('h2', { text: 'Pareto view' }), page.pareto,
              el('h2', { text: 'Tasks' }), el('div', { class: 'card' },
                el('div', { class: 'toolbar' }, filter, page.shown), page.tasks));
            return page;
          }

          function renderSweep(main, data, route) {
            if (!sweepPage || sweepPage.name !== route.name || !main.contains(sweepPage.tasks)) {
              sweepPage = buildSweepPage(main, route.name);
            }
            const page = sweepPage;
            const s = data.sweep;
            fill(page.bar, progressBar(s.counts, s.total));
            fill(page.counts, countsRow(s.counts));
            fill(page.stats, el('span', { text: plain(s.total) + ' tasks' }),
              el('span', { class: 'rate', text: rateText(s.perMinute) }),
              el('span', { class: 'eta', text: etaText(s.eta) }),
              typeof s.waitingReason === 'string' ? el('span', { text: s.waitingReason }) : null);
            renderTables(page.tables, data.tables);
            // Figures are drawn again only when a task finished since they were last loaded.
            const version = countsKey(s);
            if (version !== page.figureVersion) {
              page.figureVersion = version;
              page.figures.querySelectorAll('img').forEach((img) => {
                const n = img.getAttribute('data-figure');
                const path = 'api/sweeps/' + enc(route.name) + '/figures/' + n + '.svg?v=' + version;
                img.setAttribute('src', withToken(path));
              });
            }
            fill(page.pareto,
              pareto(data.results, 'latency_ms', 'latency (ms, dense kernels)', 'Accuracy against latency'),
              pareto(data.results, 'gmacs_effective', 'effective MACs (GMAC, nonzero weights)',
                'Accuracy against effective MACs'));
            page.rows = data.results;
            renderTaskTable(page);
          }

          function renderTables(box, report) {
            if (!report || report.error) {
              fill(box, el('p', { class: 'error', text: 'tables: ' + (report?.error ?? 'no answer') }));
              return;
            }
            const out = [];
            for (const w of (Array.isArray(report.warnings) ? report.warnings : []).slice(0, 20)) {
              out.push(el('p', { class: 'warning', text: plain(w) }));
            }
            for (const t of (Array.isArray(report.tables) ? report.tables : []).slice(0, 50)) {
              out.push(el('h3', { text: plain(t.title) }));
              for (const w of (Array.isArray(t.warnings) ? t.warnings : []).slice(0, 20)) {
                out.push(el('p', { class: 'warning', text: plain(w) }));
              }
              const groups = Array.isArray(t.groups) ? t.groups : [];
              const columns = groups.flatMap((g) => (Array.isArray(g.columns) ? g.columns : []));
              const head = el('thead', null,
                el('tr', null, el('th', { rowspan: 2, text: plain(t.rows_by) }),
                  groups.map((g) => el('th', { class: 'group', colspan: Math.max(1, g.columns?.length || 1),
                    text: plain(g.title) }))),
                el('tr', null, columns.map((c) => el('th', { text: plain(c) }))));
              const rows = (Array.isArray(t.rows) ? t.rows : []).slice(0, MAX_ROWS).map((r) =>
                el('tr', null, el('th', { text: plain(r.label) }),
                  (Array.isArray(r.cells) ? r.cells : []).map((c) => el('td', { text: plain(c) }))));
              out.push(el('table', { class: 'report', 'data-title': plain(t.title) }, head, el('tbody', null, rows)));
              const notes = (Array.isArray(t.notes) ? t.notes : []).slice(0, 50);
              if (notes.length) out.push(el('ul', { class: 'notes' }, notes.map((n) => el('li', { text: plain(n) }))));
            }
            if (out.length === 0) out.push(el('p', { class: 'muted', text: 'No table yet.' }));
            fill(box, out);
          }

          // ---- Pareto view -------------------------------------------------------------------------

          // Points with both metrics; the frontier is the points no other point beats on both
          // (higher accuracy and lower cost).
          function frontierOf(points) {
            const sorted = points.slice().sort((a, b) => a.x - b.x || b.y - a.y);
            const frontier = [];
            let best = -Infinity;
            for (const p of sorted) {
              if (p.y > best) { frontier.push(p); best = p.y; }
            }
            return frontier;
          }

          function ticks(lo, hi, count) {
            if (!(hi > lo)) { const pad = Math.abs(lo) * 0.1 || 1; lo -= pad; hi += pad; }
            const raw = (hi - lo) / count;
            const mag = Math.pow(10, Math.floor(Math.log10(raw)));
            const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
            const start = Math.floor(lo / step) * step;
            const end = Math.ceil(hi / step) * step;
            const out = [];
            for (let v = start; v <= end + step / 2 && out.length < 50; v += step) out.push(Number(v.toPrecision(12)));
            return out;
          }

          // A scatter plot with axes: returns { svg, x(v), y(v) } to draw on.
          function plotFrame(width, height, xs, ys, xLabel, yLabel, cls) {
            const m = { left: 58, right: 16, top: 14, bottom: 42 };
            const xt = ticks(Math.min(...xs), Math.max(...xs), 6);
            const yt = ticks(Math.min(...ys), Math.max(...ys), 5);
            const [x0, x1, y0, y1] = [xt[0], xt[xt.length - 1], yt[0], yt[yt.length - 1]];
            const x = (v) => m.left + ((v - x0) / (x1 - x0 || 1)) * (width - m.left - m.right);
            const y = (v) => height - m.bottom - ((v - y0) / (y1 - y0 || 1)) * (height - m.top - m.bottom);
            const svg = svgEl('svg', { class: cls, viewBox: '0 0 ' + width + ' ' + height, width: '100%',
              role: 'img', preserveAspectRatio: 'xMidYMid meet' });
            const axis = svgEl('g', { class: 'axis' });
            for (const v of xt) {
              axis.append(svgEl('line', { class: 'grid', x1: x(v), x2: x(v), y1: m.top, y2: height - m.bottom }),
                svgEl('text', { x: x(v), y: height - m.bottom + 15, 'text-anchor': 'middle', text: fmtTick(v) }));
            }
            for (const v of yt) {
              axis.append(svgEl('line', { class: 'grid', x1: m.left, x2: width - m.right, y1: y(v), y2: y(v) }),
                svgEl('text', { x: m.left - 6, y: y(v) + 4, 'text-anchor': 'end', text: fmtTick(v) }));
            }
            axis.append(
              svgEl('line', { x1: m.left, x2: width - m.right, y1: height - m.bottom, y2: height - m.bottom }),
              svgEl('line', { x1: m.left, x2: m.left, y1: m.top, y2: height - m.bottom }),
              svgEl('text', { class: 'title', x: (m.left + width - m.right) / 2, y: height - 8, 'text-anchor': 'middle',
                text: xLabel }),
              svgEl('text', { class: 'title', x: 14, y: (m.top + height - m.bottom) / 2, 'text-anchor': 'middle',
                transform: 'rotate(-90 14 ' + (m.top + height - m.bottom) / 2 + ')', text: yLabel }));
            svg.append(axis);
            return { svg, x, y };
          }

          function fmtTick(v) {
            const a = Math.abs(v);
            if (a === 0) return '0';
            if (a >= 1000) return Math.round(v).toLocaleString('en-US');
            if (a >= 1) return String(Number(v.toPrecision(4)));
            return String(Number(v.toPrecision(3)));
          }

          function pareto(results, metric, xLabel, title) {
            const points = [];
            for (const r of results) {
              const m = r?.metrics;
              if (!m || !isNum(m.accuracy) || !isNum(m[metric]) || m[metric] < 0) continue;
              points.push({ x: m[metric], y: m.accuracy, row: r });
              if (points.length >= MAX_ROWS) break;
            }
            const models = [...new Set(points.map((p) => plain(p.row.model)))];
            const colour = (model) => PALETTE[models.indexOf(model) % PALETTE.length];
            const width = 640;
            const height = 380;
            const frame = points.length
              ? plotFrame(width, height, points.map((p) => p.x), points.map((p) => p.y), xLabel, 'accuracy (%)',
                'pareto')
              : plotFrame(width, height, [0, 1], [0, 100], xLabel, 'accuracy (%)', 'pareto');
            frame.svg.setAttribute('data-metric', metric);
            const frontier = frontierOf(points);
            const onFrontier = new Set(frontier);
            frame.svg.append(svgEl('polyline', { class: 'frontier',
              points: frontier.map((p) => frame.x(p.x).toFixed(1) + ',' + frame.y(p.y).toFixed(1)).join(' ') }));
            for (const p of points) {
              const r = p.row;
              const label = plain(r.model) + ' · ' + plain(r.method) + ' · seed ' + plain(r.seed) + ' · ' +
                plain(r.stage) + ': ' + p.y.toFixed(2) + '% at ' + num(p.x, 3) +
                (onFrontier.has(p) ? ' (on the frontier)' : '');
              const circle = svgEl('circle', { class: 'point' + (onFrontier.has(p) ? ' on-frontier' : ''),
                cx: frame.x(p.x).toFixed(1), cy: frame.y(p.y).toFixed(1), r: 5, fill: colour(plain(r.model)),
                'data-task-id': plain(r.task_id), tabindex: 0 }, svgEl('title', { text: label }));
              circle.addEventListener('click', () => { location.hash = '#/tasks/' + enc(r.task_id); });
              frame.svg.append(circle);
            }
            if (!points.length) {
              frame.svg.append(svgEl('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle',
                text: 'no result has both accuracy and ' + metric + ' yet' }));
            }
            const legend = el('div', { class: 'legend' }, models.map((model) => {
              const item = el('span', { text: model });
              item.style.setProperty('--c', colour(model));
              return item;
            }));
            return el('figure', null, frame.svg,
              el('figcaption', { text: title + ' (' + metric + '; dashed: the non-dominated frontier, ' +
                frontier.length + ' of ' + points.length + ' results)' }), legend);
          }

          // ---- task table --------------------------------------------------------------------------

          const TASK_COLUMNS = [
            { key: 'task_id', text: 'task' }, { key: 'stage', text: 'stage' }, { key: 'model', text: 'model' },
            { key: 'method', text: 'method' }, { key: 'seed', text: 'seed', cls: 'num' },
            { key: 'state', text: 'state' }, { key: 'attempts', text: 'attempts', cls: 'num' },
            { key: 'accuracy', text: 'accuracy %', cls: 'num', metric: true },
            { key: 'latency_ms', text: 'latency ms', cls: 'num', metric: true },
            { key: 'latency_sparse_ms', text: 'sparse latency ms', cls: 'num', metric: true },
            { key: 'gmacs_effective', text: 'eff. GMAC', cls: 'num', metric: true },
          ];

          function cellValue(row, column) {
            return column.metric ? row?.metrics?.[column.key] : row?.[column.key];
          }

          function compare(a, b) {
            const an = isNum(a);
            const bn = isNum(b);
            if (an && bn) return a - b;
            if (an !== bn) return an ? -1 : 1;
            if (a == null || b == null) return a == null ? (b == null ? 0 : 1) : -1;
            return String(a).localeCompare(String(b), 'en', { numeric: true });
          }

          function renderTaskTable(page) {
            const terms = page.filter.value.toLowerCase().split(/\s+/).filter(Boolean).slice(0, 20);
            const matches = (r) => {
              const text = [r.task_id, r.stage, r.model, r.method, r.seed, r.state].map(plain).join(' ').toLowerCase();
              return terms.every((t) => text.includes(t));
            };
            const column = TASK_COLUMNS.find((c) => c.key === page.sort.key) || TASK_COLUMNS[0];
            const rows = page.rows.filter(matches).sort((a, b) =>
              page.sort.dir * compare(cellValue(a, column), cellValue(b, column)) ||
              compare(a.task_id, b.task_id));
            const shown = rows.slice(0, MAX_ROWS);
            const head = el('tr', null, TASK_COLUMNS.map((c) => {
              const th = el('th', { class: [c.cls, c.key === page.sort.key ? (page.sort.dir > 0 ? 'asc' : 'desc') : '']
                .filter(Boolean).join(' '), 'data-key': c.key, title: 'sort by ' + c.text, text: c.text });
              th.addEventListener('click', () => {
                page.sort = { key: c.key, dir: page.sort.key === c.key ? -page.sort.dir : (c.metric ? -1 : 1) };
                renderTaskTable(page);
              });
              return th;
            }));
            const body = shown.map((r) => el('tr', { 'data-task-id': plain(r.task_id), 'data-state': plain(r.state) },
              el('td', { class: 'mono' }, taskLink(r.task_id, plain(r.task_id).slice(0, 12))),
              el('td', { text: plain(r.stage) }), el('td', { text: plain(r.model) }),
              el('td', { text: plain(r.method) }),
              el('td', { class: 'num', text: plain(r.seed) }), el('td', null, stateChip(plain(r.state))),
              el('td', { class: 'num', text: plain(r.attempts) }),
              TASK_COLUMNS.filter((c) => c.metric).map((c) =>
                el('td', { class: 'num', text: num(cellValue(r, c), c.key === 'gmacs_effective' ? 3 : 2) }))));
            fill(page.tasks, el('table', { class: 'data sortable' }, el('thead', null, head),
              el('tbody', null, body)));
            page.shown.textContent = rows.length + ' of ' + page.rows.length + ' tasks' +
              (rows.length > shown.length ? ' (first ' + shown.length + ' shown)' : '');
          }

          // ---- task view ---------------------------------------------------------------------------

          const loadTask = (route) => fetchJSON('api/tasks/' + enc(route.id));

          function renderTask(main, task) {
            const running = Array.isArray(task.running) ? task.running : [];
            const info = el('dl', { class: 'kv' },
              el('dt', { text: 'sweep' }),
              el('dd', null, el('a', { href: '#/sweeps/' + enc(task.sweep), text: plain(task.sweep) })),
              el('dt', { text: 'stage' }), el('dd', { text: plain(task.stage) }),
              el('dt', { text: 'state' }), el('dd', null, stateChip(plain(task.state))),
              el('dt', { text: 'attempts' }), el('dd', { text: plain(task.attempts) }),
              el('dt', { text: 'result from' }),
              el('dd', { text: clock(task.startedAt) + ' → ' + clock(task.finishedAt) }),
              typeof task.error === 'string'
                ? [el('dt', { text: 'error' }), el('dd', { class: 'error', text: task.error })] : null,
              running.map((r) => [el('dt', { text: 'running' }), el('dd', { text: 'on ' + plain(r.worker) +
                ', epoch ' + plain(r.epoch) + '/' + plain(r.epochs) + ', loss ' + num(r.loss, 4) + ', ' +
                duration(r.elapsedSeconds) })]));
            const params = Object.entries(task.params && typeof task.params === 'object' ? task.params : {});
            const metrics = Object.entries(task.metrics && typeof task.metrics === 'object' ? task.metrics : {});
            const units = task.units && typeof task.units === 'object' ? task.units : {};
            const attempts = Array.isArray(task.attemptList) ? task.attemptList : [];
            const artifacts = Array.isArray(task.artifacts) ? task.artifacts : [];
            fill(main,
              el('h1', null, 'Task ', el('span', { class: 'mono', text: plain(task.id) })),
              el('div', { class: 'grid2' },
                el('div', { class: 'card' }, el('h2', { text: 'Task' }), info),
                el('div', { class: 'card' }, el('h2', { text: 'Parameters' }), el('div', { id: 'params' },
                  table('data', ['name', 'value'], params.map(([k, v]) =>
                    el('tr', null, el('td', { text: k }), el('td', { class: 'mono', text: plain(v) }))))))),
              el('div', { class: 'card' }, el('h2', { text: 'Metrics' }), metrics.length === 0
                ? el('p', { class: 'muted', text: 'No result yet.' })
                : el('div', { class: 'scroll' }, table('data', ['metric', { text: 'value', cls: 'num' }, 'unit'],
                  metrics.map(([k, v]) => el('tr', null, el('td', { text: k }),
                    el('td', { class: 'num', text: isNum(v) ? String(Number(v.toPrecision(6))) : '—' }),
                    el('td', { class: 'muted', text: plain(units[k] ?? '') })))))),
              el('div', { class: 'card' }, el('h2', { text: 'Learning curves' }), curves(task)),
              el('div', { class: 'card' }, el('h2', { text: 'Attempts' }),
                el('div', { id: 'attempts', class: 'scroll' },
                table('data', ['attempt', 'worker', 'started', 'ended', 'outcome', { text: 'exit', cls: 'num' },
                  'error / stderr tail'], attempts.map(attemptRow)))),
              el('div', { class: 'card' }, el('h2', { text: 'Artifacts' }), el('div', { class: 'scroll' },
                el('table', { class: 'data' }, el('thead', null, el('tr', null, el('th', { text: 'name' }),
                  el('th', { text: 'sha256' }), el('th', { class: 'num', text: 'bytes' }))),
                el('tbody', { id: 'artifacts' }, artifacts.slice(0, 500).map((a) => el('tr', null,
                  el('td', { text: plain(a.name) }), el('td', { class: 'mono hash', text: plain(a.sha256) }),
                  el('td', { class: 'num', title: plain(a.bytes), text: bytes(a.bytes) })))))),
                artifacts.length === 0 ? el('p', { class: 'muted', text: 'No artifacts.' }) : null));
          }

          function attemptRow(a) {
            const tail = typeof a.stderrTail === 'string' && a.stderrTail.length > 0 ? a.stderrTail : null;
            return el('tr', { 'data-attempt-id': plain(a.id) },
              el('td', { class: 'mono', text: plain(a.id) }), el('td', { text: plain(a.worker) }),
              el('td', { text: clock(a.startedAt) }), el('td', { text: clock(a.endedAt) }),
              el('td', null, stateChip(plain(a.outcome))), el('td', { class: 'num', text: plain(a.exitCode) }),
              el('td', null, typeof a.error === 'string' ? el('div', { class: 'error', text: a.error }) : null,
                tail ? el('details', null,
                  el('summary', { text: 'stderr tail (' + tail.split('\n').length + ' lines)' }),
                  el('pre', { class: 'stderr', text: tail })) : null));
          }

          // ---- learning curves ---------------------------------------------------------------------

          function curves(task) {
            const box = el('div', { id: 'curves', class: 'grid2' });
            const list = Array.isArray(task.curves) ? task.curves.filter((c) => Array.isArray(c?.points) &&
              c.points.length > 0) : [];
            if (list.length === 0) {
              box.append(el('p', { class: 'muted', text: 'no progress stored' }));
              return box;
            }
            for (const c of list.slice(0, 50)) box.append(curve(c));
            return box;
          }

          const SERIES = [
            { key: 'loss', label: 'loss', colour: '#cf222e', axis: 'loss' },
            { key: 'train_acc', label: 'train accuracy %', colour: '#8250df', axis: 'acc' },
            { key: 'test_acc', label: 'test accuracy %', colour: '#0969da', axis: 'acc' },
            { key: 'val_acc', label: 'validation accuracy %', colour: '#1a7f37', axis: 'acc' },
          ];

          function curve(c) {
            const points = c.points.slice(0, 1000);
            // x: the epoch when each point is one epoch; else the step (an engine that reports
            // several times per epoch); else the event's index.
            const rising = (k) => points.every((p, i) => isNum(p[k]) && (i === 0 || p[k] >= points[i - 1][k]));
            const distinct = (k) => new Set(points.map((p) => p[k])).size === points.length;
            let xKey = null;
            if (rising('epoch') && distinct('epoch')) xKey = 'epoch';
            else if (rising('step')) xKey = 'step';
            else if (rising('epoch')) xKey = 'epoch';
            const xOf = (p, i) => (xKey ? p[xKey] : i + 1);
            const xs = points.map(xOf);
            const width = 560;
            const height = 300;
            const m = { left: 52, right: 52, top: 26, bottom: 40 };
            const losses = points.map((p) => p.loss).filter(isNum);
            const xt = ticks(Math.min(...xs), Math.max(...xs), 6);
            const lt = ticks(Math.min(0, ...losses), losses.length ? Math.max(...losses) : 1, 5);
            const at = [0, 20, 40, 60, 80, 100];
            const sx = (v) => m.left + ((v - xt[0]) / (xt[xt.length - 1] - xt[0] || 1)) * (width - m.left - m.right);
            const scale = (t) => (v) => height - m.bottom -
              ((v - t[0]) / (t[t.length - 1] - t[0] || 1)) * (height - m.top - m.bottom);
            const sy = { loss: scale(lt), acc: scale(at) };
            const svg = svgEl('svg', { class: 'curve', viewBox: '0 0 ' + width + ' ' + height, width: '100%',
              role: 'img', 'data-attempt-id': plain(c.attemptId) });
            const axis = svgEl('g', { class: 'axis' });
            // Epochs and steps are whole numbers: no 1.5 on their axis.
            for (const v of xKey ? xt.filter((t) => Number.isInteger(t)) : xt) {
              axis.append(svgEl('line', { class: 'grid', x1: sx(v), x2: sx(v), y1: m.top, y2: height - m.bottom }),
                svgEl('text', { x: sx(v), y: height - m.bottom + 15, 'text-anchor': 'middle', text: fmtTick(v) }));
            }
            for (const v of lt) {
              axis.append(svgEl('text', { x: m.left - 6, y: sy.loss(v) + 4, 'text-anchor': 'end', text: fmtTick(v) }));
            }
            for (const v of at) {
              const yv = sy.acc(v);
              axis.append(svgEl('line', { class: 'grid', x1: m.left, x2: width - m.right, y1: yv, y2: yv }),
                svgEl('text', { x: width - m.right + 6, y: sy.acc(v) + 4, text: String(v) }));
            }
            const base = height - m.bottom;
            axis.append(svgEl('line', { x1: m.left, x2: width - m.right, y1: base, y2: base }),
              svgEl('text', { class: 'title', x: (m.left + width - m.right) / 2, y: height - 8, 'text-anchor': 'middle',
                text: xKey || 'progress event' }),
              svgEl('text', { class: 'title', x: 12, y: 14, text: 'loss' }),
              svgEl('text', { class: 'title', x: width - 12, y: 14, 'text-anchor': 'end', text: 'accuracy %' }));
            svg.append(axis);
            const legend = [];
            for (const s of SERIES) {
              const present = points.map((p, i) => [xOf(p, i), p[s.key]]).filter(([, v]) => isNum(v));
              if (present.length === 0 && s.key !== 'loss') continue;
              const y = sy[s.axis];
              const pairs = present.map(([x, v]) => sx(x).toFixed(1) + ',' + y(v).toFixed(1));
              svg.append(svgEl('polyline', { 'data-series': s.key, stroke: s.colour, points: pairs.join(' ') }));
              for (const [x, v] of present.slice(0, 200)) {
                svg.append(svgEl('circle', { class: 'pt', cx: sx(x).toFixed(1), cy: y(v).toFixed(1), r: 2.5,
                  fill: s.colour },
                  svgEl('title', { text: s.label + ' ' + num(v, 4) + ' at ' + (xKey || 'event') + ' ' + x })));
              }
              const item = el('span', { text: s.label });
              item.style.setProperty('--c', s.colour);
              legend.push(item);
            }
            const dropped = isNum(c.dropped) && c.dropped > 0 ? ', ' + c.dropped + ' more dropped' : '';
            return el('figure', null, svg, el('figcaption', { text: 'attempt ' + plain(c.attemptId) + ' on ' +
              plain(c.worker) + ': ' + points.length + ' points' + dropped }), el('div', { class: 'legend' }, legend));
          }

          // ---- workers view ------------------------------------------------------------------------

          const loadWorkers = () => fetchJSON('api/workers');

          function devicesOf(info) {
            if (!info || typeof info !== 'object') return '—';
            const list = Array.isArray(info.devices) ? info.devices : Array.isArray(info.slots) ? info.slots : [];
            const counts = new Map();
            for (const d of list.slice(0, 256)) counts.set(plain(d), (counts.get(plain(d)) || 0) + 1);
            return [...counts].map(([d, n]) => (n > 1 ? n + '× ' + d : d)).join(', ') || '—';
          }

          function renderWorkers(main, data) {
            const workers = Array.isArray(data?.workers) ? data.workers.slice(0, MAX_ROWS) : [];
            const rows = workers.map((w) => {
              const running = Array.isArray(w.running) ? w.running : [];
              return el('tr', { 'data-worker-id': plain(w.id) },
                el('td', { class: 'mono', text: plain(w.id) }),
                el('td', { class: 'state' }, stateChip(plain(w.state))),
                el('td', { text: plain(w.host) }), el('td', { text: devicesOf(w.info) }),
                el('td', { class: 'num', text: plain(w.slots) }),
                el('td', { class: 'running' }, running.length === 0 ? el('span', { class: 'muted', text: 'idle' })
                  : el('ul', { class: 'running-list' }, running.slice(0, 64).map((r) => el('li', null,
                    taskLink(r.taskId, plain(r.label || r.taskId)),
                    el('span', { class: 'muted', text: ' · ' +
                      (isNum(r.epoch) ? 'epoch ' + r.epoch + '/' + plain(r.epochs) : 'no epoch yet') +
                      (isNum(r.loss) ? ' · loss ' + num(r.loss, 4) : '') + ' · ' + duration(r.elapsedSeconds) }))))),
                el('td', { class: 'num heartbeat',
                  text: isNum(w.heartbeatAgeSeconds) ? w.heartbeatAgeSeconds.toFixed(1) + ' s' : '—' }),
                el('td', { class: 'num', text: plain(w.tasksDone ?? '—') }));
            });
            fill(main, el('h1', { text: 'Workers' }),
              data?.live === false ? el('p', { class: 'warning',
                text: 'The coordinator does not answer: workers as the database last saw them.' }) : null,
              el('div', { class: 'card scroll' }, el('table', { class: 'data' },
                el('thead', null, el('tr', null, ['worker', 'state', 'host', 'devices', 'slots', 'running',
                  'heartbeat age', 'tasks done'].map((h, i) => el('th', { class: [4, 6, 7].includes(i) ? 'num' : null,
                  text: h })))),
                el('tbody', { id: 'workers' }, rows)),
              workers.length === 0 ? el('p', { class: 'muted', text: 'No worker has joined yet.' }) : null));
          }

          // ---- router and live updates -------------------------------------------------------------

          const VIEWS = {
            sweeps: { load: loadSweeps, render: renderSweeps },
            sweep: { load: loadSweep, render: renderSweep },
            task: { load: loadTask, render: renderTask },
            workers: { load: loadWorkers, render: renderWorkers },
          };

          function decode(part) {
            try { return decodeURIComponent(part); } catch (e) { return part; }
          }

          function parseRoute() {
            const hash = location.hash || '#/';
            let m = hash.match(/^#\/sweeps\/([^/]+)$/);
            if (m) return { view: 'sweep', name: decode(m[1]), key: hash };
            m = hash.match(/^#\/tasks\/([^/]+)$/);
            if (m) return { view: 'task', id: decode(m[1]), key: hash };
            if (hash === '#/workers') return { view: 'workers', key: hash };
            return { view: 'sweeps', key: '#/' };
          }

          let route = parseRoute();
          let generation = 0;
          let busy = false;
          let again = false;
          let lastLoad = 0;
          let timer = null;

          // Loads the current view's data and renders it, at most once a second.
          function schedule(now) {
            if (timer) {
              if (!now) return;
              clearTimeout(timer);
            }
            const wait = now ? 0 : Math.max(0, lastLoad + 1000 - Date.now());
            timer = setTimeout(refresh, wait);
          }

          async function refresh() {
            timer = null;
            if (busy) { again = true; return; }
            busy = true;
            lastLoad = Date.now();
            const current = route;
            const mine = generation;
            const main = document.getElementById('main');
            try {
              const data = await VIEWS[current.view].load(current);
              if (mine !== generation) return;
              VIEWS[current.view].render(main, data, current);
              document.getElementById('load-error')?.remove();
              document.body.dataset.view = current.view;
              renders += 1;
              document.body.dataset.renders = String(renders);
            } catch (error) {
              if (mine !== generation) return;
              const message = el('p', { class: 'error', id: 'load-error', text: String(error.message || error) });
              const old = document.getElementById('load-error');
              if (old) old.replaceWith(message);
              else if (!document.body.dataset.view) fill(main, message);
              else main.prepend(message);
            } finally {
              busy = false;
              if (again || mine !== generation) { again = false; schedule(mine !== generation); }
            }
          }

          function navigate() {
            route = parseRoute();
            generation += 1;
            sweepPage = null;
            cache.clear();
            delete document.body.dataset.view;
            document.getElementById('nav-sweeps').classList.toggle('active', route.view === 'sweeps' ||
              route.view === 'sweep');
            document.getElementById('nav-workers').classList.toggle('active', route.view === 'workers');
            fill(document.getElementById('main'), el('p', { class: 'muted', text: 'Loading…' }));
            schedule(true);
          }

          // One EventSource; it reconnects by itself after a dropped stream, and is opened again
          // after 5 s when the server refused it (e.g. the coordinator restarting).
          function connect() {
            const live = document.getElementById('live');
            const setLive = (on) => {
              live.textContent = on ? 'live' : 'offline';
              live.className = on ? 'live' : 'offline';
            };
            const source = new EventSource(withToken('api/events'));
            source.addEventListener('open', () => setLive(true));
            source.addEventListener('error', () => {
              setLive(false);
              if (source.readyState === EventSource.CLOSED) setTimeout(connect, 5000);
            });
            source.addEventListener('status', (event) => {
              window.sparsegridEvents += 1;
              let ok = true;
              try { ok = !JSON.parse(event.data)?.error; } catch (e) { ok = false; }
              setLive(ok);
              schedule(false);
            });
          }

          function start() {
            window.addEventListener('hashchange', navigate);
            navigate();
            connect();
          }

          if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
          else start();
        })();

        """#
}
