/*
 * edgetrace serve's page (docs/ui.md): search, a trace's waterfall, the
 * services' RED figures and the service map, over serve's JSON API
 * (docs/serve.md).  Span data comes from the internet: it is only ever
 * put in the page as text (createElement, textContent, setAttribute of
 * plain attributes), never as markup; the server's Content-Security-Policy
 * runs no script but this file.  Search, services and the map re-run
 * their query every "refresh" seconds when the URL says so, not while the
 * tab is hidden.
 */

'use strict';

(function () {

var SVGNS = 'http://www.w3.org/2000/svg';
var RANGES = { '15m': 15 * 60e3, '1h': 3600e3, '1d': 86400e3 };
var REFRESH = [5, 10, 30, 60];

/*
 * "gen" counts the views opened (route()): an answer that arrives for a
 * view left since is dropped, so that a late search or a live refresh
 * never draws over the view opened after it.
 */
var gen = 0, timer = null, waiting = false;
var STALE = 'stale';

/* an element; string and number children become text nodes */
function el(tag, attrs) {
    var e = document.createElement(tag), i, c, k;

    for (k in attrs || {}) {
        e.setAttribute(k, attrs[k]);
    }

    for (i = 2; i < arguments.length; i++) {
        c = arguments[i];

        if (c === null || c === undefined) {
            continue;
        }

        e.appendChild(typeof c === 'object' ? c : document.createTextNode(c));
    }

    return e;
}

function svg(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag), k;

    for (k in attrs || {}) {
        e.setAttribute(k, attrs[k]);
    }

    return e;
}

function svgText(attrs, text) {
    var t = svg('text', attrs);

    t.textContent = text;
    return t;
}

function view() {
    return document.getElementById('view');
}

function show() {
    var v = view(), i;

    v.textContent = '';

    for (i = 0; i < arguments.length; i++) {
        if (arguments[i]) {
            v.appendChild(arguments[i]);
        }
    }
}

function api(path) {
    var g = gen;

    return fetch(path, { headers: { Accept: 'application/json' } })
        .then(function (r) {
            return r.json().then(function (j) {
                if (g !== gen) {
                    throw new Error(STALE);
                }

                if (j.errors && j.errors.length) {
                    var e = new Error(j.errors[0].msg);
                    e.status = r.status;
                    throw e;
                }

                return j.data;
            });
        });
}

function query(o) {
    var p = [], k;

    for (k in o) {
        if (o[k] !== undefined && o[k] !== null && o[k] !== '') {
            p.push(encodeURIComponent(k) + '=' + encodeURIComponent(o[k]));
        }
    }

    return p.join('&');
}

function ms(us) {
    if (us < 1000) {
        return us + ' µs';
    }

    if (us < 1e6) {
        return (us / 1000).toFixed(us < 1e4 ? 2 : 1) + ' ms';
    }

    return (us / 1e6).toFixed(2) + ' s';
}

/* a quantile of serve's histograms: the end of its bucket, -1 past 10 s */
function upTo(us) {
    return us < 0 ? '> 10 s' : '≤ ' + ms(us);
}

/* per minute, over "minutes" */
function perMin(n, minutes) {
    var r = n / minutes;

    return r >= 10 || r === 0 ? r.toFixed(1) : r.toPrecision(2);
}

function when(us) {
    return new Date(us / 1000).toISOString().replace('T', ' ')
        .replace('Z', '');
}

function tagOf(sp, key) {
    var i;

    for (i = 0; i < sp.tags.length; i++) {
        if (sp.tags[i].key === key) {
            return sp.tags[i].value;
        }
    }

    return undefined;
}

/* the window of a view's parameters, in µs: lookback or start/end */
function windowOf(p) {
    var end, start;

    if (p.range === 'custom' && p.start && p.end) {
        start = Date.parse(p.start) * 1000;
        end = Date.parse(p.end) * 1000;

        if (!isNaN(start) && !isNaN(end)) {
            return { start: start, end: end };
        }
    }

    end = Date.now() * 1000;
    return { start: end - (RANGES[p.range] || RANGES['1h']) * 1000,
             end: end };
}

function fail(e) {
    if (e.message !== STALE) {
        show(el('p', { 'class': 'error', id: 'error' },
                e.message || String(e)));
    }
}

/* the current URL with "k" set to "v" (removed when empty) */
function setParam(k, v) {
    var r = parse(location.hash);

    r.p[k] = v;
    location.hash = '#/' + r.view
                    + (r.id ? '/' + encodeURIComponent(r.id) : '')
                    + '?' + query(r.p);
}

/* the seconds between two runs of a view's query, or 0: off */
function refreshOf(p) {
    var s = parseInt(p.refresh, 10);

    return s >= 1 && s <= 3600 ? s : 0;
}

/* "refresh": off by default; a change applies at once */
function refreshSelect(p) {
    var sel = el('select', { name: 'refresh', id: 'refresh' }),
        now = refreshOf(p);

    sel.appendChild(el('option', { value: '' }, 'off'));
    REFRESH.concat(REFRESH.indexOf(now) < 0 && now ? [now] : [])
        .forEach(function (s) {
            sel.appendChild(el('option', { value: String(s) },
                               'every ' + s + ' s'));
        });
    sel.value = now ? String(now) : '';
    sel.addEventListener('change', function () {
        setParam('refresh', sel.value);
    });

    return el('label', null, 'live refresh', sel);
}

/* the time range of services and the map: last 15m, 1h, 1d or custom */
function rangeForm(p) {
    var f = el('form', { 'class': 'search', id: 'range-form' }),
        sel = el('select', { name: 'range', id: 'range' });

    ['15m', '1h', '1d', 'custom'].forEach(function (r) {
        sel.appendChild(el('option', { value: r }, r === 'custom'
                                                   ? 'custom' : 'last ' + r));
    });
    sel.value = RANGES[p.range] || p.range === 'custom' ? p.range : '1h';
    f.appendChild(el('label', null, 'time range', sel));

    ['start', 'end'].forEach(function (k) {
        var i = el('input', { name: k, type: 'datetime-local',
                              autocomplete: 'off' });

        i.value = p[k] || '';
        f.appendChild(el('label', null, k === 'start' ? 'from (custom)'
                                                      : 'to (custom)', i));
    });

    f.appendChild(refreshSelect(p));
    f.appendChild(el('button', { type: 'submit', id: 'range-go' },
                     'Apply'));

    function go() {
        var o = { range: sel.value, refresh: f.elements.refresh.value };

        if (sel.value === 'custom') {
            o.start = f.elements.start.value;
            o.end = f.elements.end.value;
        }

        location.hash = '#/' + parse(location.hash).view + '?' + query(o);
    }

    sel.addEventListener('change', function () {
        if (sel.value !== 'custom') {
            go();
        }
    });
    f.addEventListener('submit', function (ev) {
        ev.preventDefault();
        go();
    });

    return f;
}


/* --- a trace: its spans in parent order, orphans and skew marked */

function order(trace) {
    var byId = {}, kids = {}, roots = [], out = [], i, sp, p;

    for (i = 0; i < trace.spans.length; i++) {
        byId[trace.spans[i].spanID] = trace.spans[i];
    }

    for (i = 0; i < trace.spans.length; i++) {
        sp = trace.spans[i];
        p = sp.references.length ? sp.references[0].spanID : null;
        sp.service = trace.processes[sp.processID].serviceName;
        sp.kind = tagOf(sp, 'span.kind') || '';
        sp.error = tagOf(sp, 'error') === true;

        if (p && byId[p]) {
            (kids[p] = kids[p] || []).push(sp);

        } else {
            sp.orphan = !!p;
            roots.push(sp);
        }
    }

    function byStart(a, b) {
        return a.startTime - b.startTime;
    }

    function walk(sp, depth, parent) {
        var k = (kids[sp.spanID] || []).sort(byStart), j;

        sp.depth = depth;

        /* hosts' clocks differ: a child outside its parent is shown so */
        if (parent && (sp.startTime < parent.startTime
                       || sp.startTime + sp.duration
                          > parent.startTime + parent.duration))
        {
            sp.skew = sp.startTime < parent.startTime
                      ? sp.startTime - parent.startTime
                      : sp.startTime + sp.duration
                        - parent.startTime - parent.duration;
        }

        out.push(sp);

        for (j = 0; j < k.length; j++) {
            walk(k[j], depth + 1, sp);
        }
    }

    roots.sort(byStart);

    for (i = 0; i < roots.length; i++) {
        walk(roots[i], 0, null);
    }

    return out;
}

function spanDetail(sp) {
    var d = el('div', { 'class': 'detail', id: 'span-detail' }),
        t = el('table', { 'class': 'tags' }), i, j, l, f;

    d.appendChild(el('h3', null, sp.service + ' · ' + sp.operationName));
    t.appendChild(el('tr', null, el('th', null, 'span id'),
                     el('td', { 'class': 'mono' }, sp.spanID)));
    t.appendChild(el('tr', null, el('th', null, 'start'),
                     el('td', null, when(sp.startTime))));
    t.appendChild(el('tr', null, el('th', null, 'duration'),
                     el('td', null, ms(sp.duration))));

    for (i = 0; i < sp.tags.length; i++) {
        t.appendChild(el('tr', null, el('th', null, sp.tags[i].key),
                         el('td', { 'class': 'mono' },
                            String(sp.tags[i].value))));
    }

    d.appendChild(t);

    if (sp.logs && sp.logs.length) {
        d.appendChild(el('h3', null, 'Events'));
        l = el('table', { 'class': 'events' });

        for (i = 0; i < sp.logs.length; i++) {
            f = el('td', { 'class': 'mono' });

            for (j = 0; j < sp.logs[i].fields.length; j++) {
                f.appendChild(el('span', { 'class': 'tag' },
                                 sp.logs[i].fields[j].key + '='
                                 + sp.logs[i].fields[j].value));
            }

            l.appendChild(el('tr', null, el('td', null, String(i + 1)), f));
        }

        d.appendChild(l);
    }

    return d;
}

function waterfall(trace, selected) {
    var spans = order(trace), t0 = Infinity, t1 = 0, wf, i, sp, row, bar,
        label, x, w, detail, services = {};

    for (i = 0; i < spans.length; i++) {
        t0 = Math.min(t0, spans[i].startTime);
        t1 = Math.max(t1, spans[i].startTime + spans[i].duration);
        services[spans[i].service] = 1;
    }

    wf = el('div', { 'class': 'wf', id: 'waterfall' });
    detail = el('div');

    function pick(sp, row) {
        var r = wf.querySelectorAll('.row.sel'), k;

        for (k = 0; k < r.length; k++) {
            r[k].classList.remove('sel');
        }

        row.classList.add('sel');
        detail.textContent = '';
        detail.appendChild(spanDetail(sp));
    }

    for (i = 0; i < spans.length; i++) {
        sp = spans[i];
        x = (sp.startTime - t0) / Math.max(t1 - t0, 1) * 100;
        w = Math.max(sp.duration / Math.max(t1 - t0, 1) * 100, 0.3);
        /* the marks before the figures: a long name cuts the figures */
        label = el('div', { 'class': 'label' },
                   '\u00a0'.repeat(sp.depth * 3),
                   el('b', { 'class': 'svc' }, sp.service), ' ',
                   el('span', { 'class': 'name' }, sp.operationName), ' ',
                   sp.error ? el('span', { 'class': 'tag err' }, 'error')
                            : null,
                   sp.orphan ? el('span', { 'class': 'tag orphan' },
                                  'orphan: parent ' + sp.references[0].spanID
                                  + ' not stored')
                             : null,
                   sp.skew ? el('span', { 'class': 'tag skew' },
                                'clock skew ' + (sp.skew > 0 ? '+' : '-')
                                + ms(Math.abs(sp.skew)))
                           : null, ' ',
                   el('span', { 'class': 'meta' },
                      sp.kind + ' · +' + ms(sp.startTime - t0) + ' · '
                      + ms(sp.duration)
                      + (tagOf(sp, 'http.response.status_code') !== undefined
                         ? ' · ' + tagOf(sp, 'http.response.status_code')
                         : '')));
        bar = svg('svg', { viewBox: '0 0 100 10', preserveAspectRatio: 'none' });
        bar.appendChild(svg('rect', { x: x.toFixed(3), y: 2,
                                      width: w.toFixed(3), height: 6,
                                      'class': sp.error ? 'err'
                                               : sp.skew ? 'skew' : 'ok' }));
        row = el('div', { 'class': 'row', 'data-span-id': sp.spanID,
                          'data-depth': sp.depth, tabindex: 0 },
                 label, bar);

        if (sp.skew) {
            row.setAttribute('data-skew', sp.skew);
        }

        row.addEventListener('click', pick.bind(null, sp, row));
        wf.appendChild(row);

        if (sp.spanID === selected) {
            pick(sp, row);
        }
    }

    show(el('h2', null, 'Trace ',
            el('span', { 'class': 'mono', id: 'trace-id' }, trace.traceID)),
         el('p', { 'class': 'note' },
            spans.length + ' spans · ' + Object.keys(services).length
            + ' services · ' + ms(t1 - t0) + ' · ' + when(t0)),
         wf, detail);
}

function traceView(id, p) {
    return api('/api/traces/' + encodeURIComponent(id)).then(function (d) {
        waterfall(d[0], p.span);
    }).catch(fail);
}


/* --- search */

var searchFields = [
    ['traceId', 'trace id'], ['spanId', 'span id'], ['q', 'keyword'],
    ['service', 'service'], ['operation', 'span name'],
    ['minDuration', 'min duration (e.g. 10ms)'],
    ['maxDuration', 'max duration'],
    ['start', 'from (custom range)'], ['end', 'to (custom range)']
];

function searchForm(p, services) {
    var f = el('form', { 'class': 'search', id: 'search-form' }), i, s, o,
        k, sel;

    for (i = 0; i < searchFields.length; i++) {
        k = searchFields[i][0];

        if (k === 'service') {
            s = el('select', { name: k });
            s.appendChild(el('option', { value: '' }, 'any service'));

            for (o = 0; o < services.length; o++) {
                s.appendChild(el('option', { value: services[o] },
                                 services[o]));
            }

            s.value = p[k] || '';

        } else {
            s = el('input', { name: k, autocomplete: 'off',
                              type: k === 'start' || k === 'end'
                                    ? 'datetime-local' : 'text' });
            s.value = p[k] || '';
        }

        f.appendChild(el('label', null, searchFields[i][1], s));
    }

    sel = el('select', { name: 'range' });
    ['15m', '1h', '1d', 'custom'].forEach(function (r) {
        sel.appendChild(el('option', { value: r }, r === 'custom'
                                                   ? 'custom' : 'last ' + r));
    });
    sel.value = p.range || '1h';
    f.appendChild(el('label', null, 'time range', sel));

    sel = el('select', { name: 'sort' });
    sel.appendChild(el('option', { value: 'time' }, 'newest first'));
    sel.appendChild(el('option', { value: 'duration' }, 'longest first'));
    sel.value = p.sort || 'time';
    f.appendChild(el('label', null, 'sort', sel));

    s = el('input', { type: 'checkbox', name: 'errors', value: '1' });
    s.checked = p.errors === '1';
    f.appendChild(el('label', null, 'errors only', s));
    f.appendChild(refreshSelect(p));
    f.appendChild(el('button', { type: 'submit', id: 'search-go' },
                     'Search'));

    f.addEventListener('submit', function (ev) {
        var o = {}, fd = new FormData(f);

        ev.preventDefault();
        fd.forEach(function (v, k) {
            o[k] = v;
        });
        location.hash = '#/search?' + query(o);
    });

    return f;
}

/* the summary of a whole trace, for a row of results */
function summary(t) {
    var spans = order(t), s = { id: t.traceID, spans: spans.length,
                                errors: 0, start: Infinity, end: 0 };

    spans.forEach(function (sp) {
        s.errors += sp.error ? 1 : 0;
        s.start = Math.min(s.start, sp.startTime);
        s.end = Math.max(s.end, sp.startTime + sp.duration);
    });
    s.root = spans[0];
    s.duration = s.end - s.start;

    return s;
}

/*
 * The traces of "list", once each, sorted by p.sort; "sortable": the
 * start and duration headers set the URL's sort
 */
function results(list, p, sortable) {
    var t = el('table', { id: 'results' }), seen = {};

    function head(label, sort, cls) {
        var a;

        if (!sortable) {
            return el('th', cls ? { 'class': cls } : null, label);
        }

        a = el('a', { href: '#', id: 'sort-' + sort },
               label + ((p.sort || 'time') === sort ? ' ▼' : ''));
        a.addEventListener('click', function (ev) {
            ev.preventDefault();
            setParam('sort', sort);
        });

        return el('th', cls ? { 'class': cls } : null, a);
    }

    list = list.filter(function (x) {
        return seen[x.traceID] ? false : (seen[x.traceID] = true);
    }).map(summary);

    list.sort(p.sort === 'duration'
              ? function (a, b) { return b.duration - a.duration; }
              : function (a, b) { return b.start - a.start; });

    t.appendChild(el('tr', null, head('start', 'time'),
                     el('th', null, 'root service'), el('th', null, 'name'),
                     el('th', { 'class': 'n' }, 'spans'),
                     head('duration', 'duration', 'n'),
                     el('th', { 'class': 'n' }, 'errors'),
                     el('th', null, 'trace id')));

    list.forEach(function (s) {
        t.appendChild(el('tr', { 'class': 'result', 'data-trace-id': s.id,
                                 'data-start': s.start,
                                 'data-duration': s.duration },
                         el('td', null, when(s.start)),
                         el('td', null, s.root.service),
                         el('td', null, s.root.operationName),
                         el('td', { 'class': 'n' }, String(s.spans)),
                         el('td', { 'class': 'n' }, ms(s.duration)),
                         el('td', { 'class': 'n' + (s.errors ? ' bad' : '') },
                            String(s.errors)),
                         el('td', { 'class': 'mono' },
                            el('a', { href: '#/trace/' + s.id }, s.id))));
    });

    return el('div', null, el('p', { 'class': 'note', id: 'result-count' },
                              list.length + ' traces'), t);
}

function searchView(p, refreshing) {
    return api('/api/services').then(function (services) {
        var form = searchForm(p, services), w = windowOf(p), limit = 50,
            base, todo;

        if (!refreshing) {
            show(form, el('p', { 'class': 'note' }, 'Searching…'));
        }

        if (p.traceId) {
            location.hash = '#/trace/' + encodeURIComponent(p.traceId.trim());
            return;
        }

        if (p.spanId) {
            return api('/api/edgetrace/spans/'
                       + encodeURIComponent(p.spanId.trim()))
                .then(function (d) {
                    location.hash = '#/trace/' + d[0].traceID + '?'
                                    + query({ span: p.spanId.trim() });
                });
        }

        base = { start: Math.floor(w.start), end: Math.floor(w.end),
                 limit: limit };

        if (p.q) {
            /* the keyword finds spans; each of their traces, whole */
            todo = api('/api/edgetrace/search?' + query(Object.assign({
                q: p.q, service: p.service }, base)))
                .then(function (hits) {
                    var ids = [], seen = {};

                    hits.forEach(function (h) {
                        if (!seen[h.traceID] && (!p.errors || h.error)) {
                            seen[h.traceID] = 1;
                            ids.push(h.traceID);
                        }
                    });

                    return Promise.all(ids.map(function (id) {
                        return api('/api/traces/' + id).then(function (d) {
                            return d[0];
                        });
                    }));
                });

        } else {
            /* Jaeger's search needs a service: each, when none is given */
            todo = Promise.all((p.service ? [p.service] : services)
                .map(function (s) {
                    return api('/api/traces?' + query(Object.assign({
                        service: s, operation: p.operation,
                        minDuration: p.minDuration,
                        maxDuration: p.maxDuration,
                        tag: p.errors ? 'error:true' : '' }, base)));
                })).then(function (lists) {
                    return [].concat.apply([], lists);
                });
        }

        return todo.then(function (list) {
            show(form, results(list, p, true));
        });
    }).catch(fail);
}


/* --- services: RED per service and span name, slowest, recent errors */

/* a bar per point of a series: "step" ms wide, over the window "w" */
function chart(points, key, w, step, cls) {
    var s = svg('svg', { 'class': 'chart', viewBox: '0 0 100 20',
                         preserveAspectRatio: 'none' }),
        span = (w.end - w.start) / 1000, max = 1;

    points.forEach(function (pt) {
        max = Math.max(max, pt[key]);
    });
    points.forEach(function (pt) {
        var h = pt[key] / max * 19;

        s.appendChild(svg('rect', {
            x: Math.max((pt.ts - w.start / 1000) / span * 100, 0).toFixed(2),
            y: (20 - h).toFixed(2),
            width: Math.max(step / span * 100, 0.5).toFixed(2),
            height: h.toFixed(2), 'class': cls || '' }));
    });

    return s;
}

function servicesView(p) {
    var w = windowOf(p), lookback = Math.round((w.end - w.start) / 1000),
        step = Math.max(60000, Math.ceil(lookback / 60 / 60000) * 60000);

    return Promise.all([
        api('/api/edgetrace/red?' + query({ endTs: Math.floor(w.end / 1000),
                                            lookback: lookback,
                                            step: step })),
        api('/api/services')
    ]).then(function (r) {
        var red = r[0], t = el('table', { id: 'red' }), minutes,
            base = { start: Math.floor(w.start), end: Math.floor(w.end),
                     limit: 20 };

        minutes = lookback / 60000;
        t.appendChild(el('tr', null, el('th', null, 'service'),
                         el('th', null, 'span name'),
                         el('th', { 'class': 'n' }, 'spans'),
                         el('th', { 'class': 'n' }, 'rate /min'),
                         el('th', { 'class': 'n' }, 'errors'),
                         el('th', { 'class': 'n' }, 'error rate'),
                         el('th', { 'class': 'n' }, 'p50'),
                         el('th', { 'class': 'n' }, 'p95'),
                         el('th', { 'class': 'n' }, 'p99'),
                         el('th', null, 'rate'), el('th', null, 'errors'),
                         el('th', null, 'avg duration')));

        red.forEach(function (x) {
            t.appendChild(el('tr', { 'class': 'red-row',
                                     'data-service': x.service,
                                     'data-operation': x.operation,
                                     'data-p50': x.p50, 'data-p95': x.p95,
                                     'data-p99': x.p99 },
                             el('td', null, x.service),
                             el('td', null, x.operation),
                             el('td', { 'class': 'n count' }, String(x.count)),
                             el('td', { 'class': 'n' },
                                perMin(x.count, minutes)),
                             el('td', { 'class': 'n errors' },
                                String(x.errors)),
                             el('td', { 'class': 'n' },
                                (x.errorRate * 100).toFixed(1) + ' %'),
                             el('td', { 'class': 'n' }, upTo(x.p50)),
                             el('td', { 'class': 'n' }, upTo(x.p95)),
                             el('td', { 'class': 'n' }, upTo(x.p99)),
                             el('td', null, chart(x.points, 'count', w,
                                                  step)),
                             el('td', null, chart(x.points, 'errors', w,
                                                  step, 'err')),
                             el('td', null, chart(x.points, 'avgDuration',
                                                  w, step))));
        });

        show(el('h2', null, 'Services'), rangeForm(p), t,
             el('div', { 'class': 'two' },
                el('div', { id: 'slowest' }, el('p', { 'class': 'note' },
                                                 'Slowest traces…')),
                el('div', { id: 'recent-errors' },
                   el('p', { 'class': 'note' }, 'Recent errors…'))));

        function fill(id, title, list, sort) {
            var d = document.getElementById(id);

            d.textContent = '';
            d.appendChild(el('h3', null, title));
            d.appendChild(results(list, { sort: sort }));
        }

        function each(extra) {
            return Promise.all(r[1].map(function (s) {
                return api('/api/traces?' + query(Object.assign(
                    { service: s }, base, extra)));
            })).then(function (l) {
                var seen = {};

                /* a trace once, however many services it crosses */
                return [].concat.apply([], l).filter(function (t) {
                    return seen[t.traceID] ? false
                                           : (seen[t.traceID] = true);
                });
            });
        }

        /* the first "n" traces of "l" by a figure of their summary */
        function top(l, key, n) {
            return l.map(function (t) {
                return [summary(t)[key], t];
            }).sort(function (a, b) {
                return b[0] - a[0];
            }).slice(0, n).map(function (x) {
                return x[1];
            });
        }

        return Promise.all([
            each({}).then(function (l) {
                fill('slowest', 'Slowest traces', top(l, 'duration', 10),
                     'duration');
            }),
            each({ tag: 'error:true' }).then(function (l) {
                fill('recent-errors', 'Most recent errors',
                     top(l, 'start', 20), 'time');
            })
        ]);
    }).catch(fail);
}


/* --- the service map: callers -> callees, layered by depth */

function mapView(p) {
    var w = windowOf(p), lookback = Math.round((w.end - w.start) / 1000);

    return Promise.all([
        api('/api/edgetrace/dependencies?'
            + query({ endTs: Math.floor(w.end / 1000),
                      lookback: lookback })),
        api('/api/services')
    ]).then(function (r) {
        return sample(r[1], w).then(function (calls) {
            drawMap(p, r[0], calls, lookback);
        });
    }).catch(fail);
}

/*
 * The calls of the latest traces of each service (SAMPLE of them, whole)
 * to peers without tracing: a client span without a child calls one,
 * named by its server.address:server.port.  serve counts the calls
 * between services (/api/edgetrace/dependencies), not these.
 */
var SAMPLE = 200;

function sample(services, w) {
    return Promise.all(services.map(function (s) {
        return api('/api/traces?' + query({ service: s, limit: SAMPLE,
                                            start: Math.floor(w.start),
                                            end: Math.floor(w.end) }));
    })).then(function (lists) {
        var seen = {}, calls = {};

        [].concat.apply([], lists).forEach(function (t) {
            var kids = {};

            if (seen[t.traceID]) {
                return;
            }

            seen[t.traceID] = 1;
            t.spans.forEach(function (sp) {
                if (sp.references.length) {
                    (kids[sp.references[0].spanID] =
                        kids[sp.references[0].spanID] || []).push(sp);
                }
            });
            t.spans.forEach(function (sp) {
                var from = t.processes[sp.processID].serviceName, to, c;

                if (tagOf(sp, 'span.kind') !== 'client' || kids[sp.spanID]
                    || tagOf(sp, 'server.address') === undefined)
                {
                    return;
                }

                to = tagOf(sp, 'server.address') + ':'
                     + tagOf(sp, 'server.port');
                c = calls[from + '\u0000' + to] = calls[from + '\u0000' + to]
                    || { parent: from, child: to, durations: [], errors: 0 };
                c.durations.push(sp.duration);
                c.errors += tagOf(sp, 'error') === true ? 1 : 0;
            });
        });

        return calls;
    });
}

function p95(d) {
    d = d.slice().sort(function (a, b) { return a - b; });
    return d.length ? d[Math.min(d.length - 1,
                                 Math.ceil(d.length * 0.95) - 1)] : 0;
}

function drawMap(p, deps, calls, lookback) {
    var nodes = {}, depth = {}, layers = [], changed = true, edges, n, e,
        map, t, W = 800, H = 360, pos = {}, byPair = {};

    /*
     * The pairs of services as serve counted them, p95 the end of its
     * histogram's bucket (null: calls stored before the histogram); the
     * peers as sampled, p95 exact
     */
    edges = deps.map(function (d) {
        byPair[d.parent + '\u0000' + d.child] = 1;
        return { parent: d.parent, child: d.child, calls: d.callCount,
                 errors: d.errorCount, peer: false,
                 p95: d.p95, p95text: d.p95 === null ? '-' : upTo(d.p95) };
    });
    Object.keys(calls).forEach(function (k) {
        var c = calls[k], q = p95(c.durations);

        if (!byPair[k]) {
            edges.push({ parent: c.parent, child: c.child,
                         calls: c.durations.length, errors: c.errors,
                         peer: true, p95: q, p95text: ms(q) });
        }
    });

    edges.forEach(function (d) {
        nodes[d.parent] = nodes[d.parent] || 1;
        nodes[d.child] = d.peer ? 2 : 1;
        depth[d.parent] = depth[d.parent] || 0;
        depth[d.child] = depth[d.child] || 0;
    });

    /* a callee one layer right of its deepest caller (cycles capped) */
    for (n = 0; changed && n < edges.length + 2; n++) {
        changed = false;
        edges.forEach(function (d) {
            if (d.parent !== d.child && depth[d.child] < depth[d.parent] + 1) {
                depth[d.child] = depth[d.parent] + 1;
                changed = true;
            }
        });
    }

    Object.keys(nodes).sort().forEach(function (s) {
        (layers[depth[s]] = layers[depth[s]] || []).push(s);
    });

    map = svg('svg', { 'class': 'map', id: 'map-svg',
                       viewBox: '0 0 ' + W + ' ' + H });
    e = svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 38,
                        refY: 5, markerWidth: 8, markerHeight: 8,
                        orient: 'auto' });
    e.appendChild(svg('path', { d: 'M0,0 L10,5 L0,10 z' }));
    map.appendChild(svg('defs')).appendChild(e);

    layers.forEach(function (l, x) {
        (l || []).forEach(function (s, y) {
            pos[s] = { x: (x + 0.5) * W / layers.length,
                       y: (y + 0.5) * H / l.length };
        });
    });

    t = el('table', { id: 'edges' });
    t.appendChild(el('tr', null, el('th', null, 'caller'),
                     el('th', null, 'callee'),
                     el('th', { 'class': 'n' }, 'calls'),
                     el('th', { 'class': 'n' }, 'rate /min'),
                     el('th', { 'class': 'n' }, 'error rate'),
                     el('th', { 'class': 'n' }, 'p95')));

    edges.forEach(function (d) {
        var a = pos[d.parent], b = pos[d.child],
            rate = (d.errors / Math.max(d.calls, 1) * 100).toFixed(1) + ' %';

        map.appendChild(svg('line', { x1: a.x, y1: a.y, x2: b.x, y2: b.y,
                                      'marker-end': 'url(#arrow)' }));
        map.appendChild(svgText({ x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 - 20,
                                  'class': 'edge' },
                                d.calls + ' calls · '
                                + perMin(d.calls, lookback / 60000) + '/min'));
        map.appendChild(svgText({ x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 - 6,
                                  'class': 'edge', 'data-parent': d.parent,
                                  'data-child': d.child },
                                rate + ' err · p95 ' + d.p95text));
        t.appendChild(el('tr', { 'class': 'edge-row',
                                 'data-parent': d.parent,
                                 'data-child': d.child,
                                 'data-calls': d.calls,
                                 'data-errors': d.errors,
                                 'data-peer': d.peer ? 1 : 0,
                                 'data-p95': d.p95 === null ? '' : d.p95 },
                         el('td', null, d.parent), el('td', null, d.child),
                         el('td', { 'class': 'n calls' }, String(d.calls)),
                         el('td', { 'class': 'n' },
                            perMin(d.calls, lookback / 60000)),
                         el('td', { 'class': 'n' }, rate),
                         el('td', { 'class': 'n p95' }, d.p95text)));
    });

    Object.keys(pos).forEach(function (s) {
        var g = svg('g', { 'class': 'node', 'data-service': s });

        g.appendChild(svg('circle', { cx: pos[s].x, cy: pos[s].y, r: 28,
                                      'class': nodes[s] === 2 ? 'peer'
                                                              : '' }));
        g.appendChild(svgText({ x: pos[s].x, y: pos[s].y + 4 }, s));
        map.appendChild(g);
    });

    show(el('h2', null, 'Service map'), rangeForm(p),
         el('p', { 'class': 'note' }, 'A caller → callee edge is a client '
           + 'span whose child span belongs to another service: calls, '
           + 'errors and the p95 of the caller\'s spans as serve counted '
           + 'them (p95: the end of the histogram bucket that holds it).  '
           + 'A dashed node is a peer without tracing; its calls and p95 '
           + 'are those of the latest ' + SAMPLE + ' traces of each '
           + 'service.'),
         map, t);
}


/* --- the router: every view has its URL */

function parse(h) {
    var m = /^#\/([a-z]+)(?:\/([^?]*))?(?:\?(.*))?$/.exec(h || ''),
        p = {};

    if (!m) {
        return { view: 'search', p: p };
    }

    new URLSearchParams(m[3] || '').forEach(function (v, k) {
        p[k] = v;
    });

    return { view: m[1], id: m[2] ? decodeURIComponent(m[2]) : '', p: p };
}

/*
 * Opens the view of the URL; "refreshing": the same view again, its
 * query re-run (live refresh), with no "Searching…" in between
 */
function route(refreshing) {
    var r = parse(location.hash), g = ++gen, links, i, run;

    clearTimeout(timer);
    waiting = false;
    links = document.querySelectorAll('header nav a');

    for (i = 0; i < links.length; i++) {
        links[i].classList.toggle('on', links[i].id === 'nav-' + r.view);
    }

    if (r.view === 'trace' && r.id) {
        run = traceView(r.id, r.p);

    } else if (r.view === 'services') {
        run = servicesView(r.p);

    } else if (r.view === 'map') {
        run = mapView(r.p);

    } else {
        run = searchView(r.p, refreshing === true);
    }

    function next() {
        var s = refreshOf(r.p);

        if (g === gen && s && r.view !== 'trace') {
            timer = setTimeout(tick, s * 1000);
        }
    }

    Promise.resolve(run).then(next, next);
}

/* a refresh due: not while the tab is hidden (until it shows again), nor
 * while a field of the view is being typed in */
function tick() {
    var a = document.activeElement, s = refreshOf(parse(location.hash).p);

    if (document.hidden) {
        waiting = true;
        return;
    }

    if (a && a.closest && a.closest('#view form') && a.tagName === 'INPUT'
        && a.type !== 'checkbox')
    {
        timer = setTimeout(tick, s * 1000);
        return;
    }

    route(true);
}

document.addEventListener('visibilitychange', function () {
    if (!document.hidden && waiting) {
        route(true);
    }
});

document.getElementById('goto').addEventListener('submit', function (ev) {
    var id = document.getElementById('goto-id').value.trim();

    ev.preventDefault();
    /* 32 hex digits: a trace id; 16 or fewer: a span id */
    location.hash = id.length > 16 ? '#/trace/' + encodeURIComponent(id)
                                   : '#/search?' + query({ spanId: id });
});

window.addEventListener('hashchange', function () {
    route();
});
route();

})();
