// Street committee dashboard (/dashboard/): KPI tiles, charts (Apache ECharts, vendored under
// /static/vendor/echarts/, global `echarts`), overdue list, CSV/XLSX exports and a dark
// full-screen wall mode (数据大屏, /dashboard/#wall) that refreshes itself every 30 s.
// Numbers come from GET /api/v1/stats/*; definitions in docs/metrics.md.

import { createClient } from '/static/common/api.js';
import { h, mount, $, toast, errorText, todayBeijing, LEVEL_ZH } from '/static/common/ui.js';

const client = createClient('dashboard');
const ALLOWED_ROLES = ['street_staff', 'community_staff', 'admin'];
const REFRESH_MS = 30_000;
const TZ = 'Asia/Shanghai';
const SORTS = [
  'resolution_rate',
  'response_rate',
  'satisfaction_rate',
  'settled_in_compound_rate',
  'overdue',
  'tickets',
];
const SORT_ZH = {
  resolution_rate: '解决率',
  response_rate: '响应率',
  satisfaction_rate: '满意率',
  settled_in_compound_rate: '小事不出小区率',
  overdue: '当前超时数',
  tickets: '工单数',
};
const UNIT_ZH = { community: '社区', compound: '小区' };

// Short definitions (docs/metrics.md), shown as the tiles' title and on tap.
const DEF = {
  response_rate:
    '响应率：本期新建工单中，在所经每一级的受理时限内得到受理（应答）的占比。分母为至少有一级已可判定（已应答或时限已过）的工单。',
  resolution_rate:
    '解决率：已办结并关闭、未被居民异议重开、未超过办结时限的工单占比。分母为已关闭的工单，加上已确定未达标（重开或办结超时）的在办工单。',
  satisfaction_rate:
    '满意率：已评价工单中评 4–5 星的占比。自动关闭的工单没有评价，不计入。',
  settled_in_compound_rate:
    '小事不出小区率：已关闭工单中，始终在小区层级办结、从未上报的占比（上报后被退回的也不算）。',
  total: '新建工单：所选日期内创建的工单数（本期工单）。',
  closed: '已关闭：本期新建工单中现已关闭的数量（居民确认或超时自动关闭）。',
  overdue:
    '当前超时：此刻仍待受理或处理中、已超过当前层级时限（或在街道层级被标记超时）的工单数，不受日期筛选影响。',
  open_compound: '小区在办：此刻在小区党支部待受理或处理中的工单数，不受日期筛选影响。',
  open_community: '社区在办：此刻在社区党支部待受理或处理中的工单数，不受日期筛选影响。',
  open_street: '街道在办：此刻在街道党工委待受理或处理中的工单数，不受日期筛选影响。',
  median_first_answer:
    '首次响应时长（中位数，自然时间）：全程为每件工单从创建到首次受理或办结；分级为在该级每次停留从到达到首次应答。',
  median_settle:
    '办结时长（中位数，自然时间）：全程为每件已关闭工单从创建到被接受的办结；分级为在该级每次停留从到达到办结。',
};

const KPIS = [
  { key: 'response_rate', label: '响应率', rate: 'response' },
  { key: 'resolution_rate', label: '解决率', rate: 'resolution' },
  { key: 'satisfaction_rate', label: '满意率', rate: 'satisfaction' },
  { key: 'settled_in_compound_rate', label: '小事不出小区率', rate: 'settled_in_compound' },
  { key: 'total', label: '新建工单', count: (s) => s.tickets },
  { key: 'closed', label: '已关闭', count: (s) => s.by_status.closed },
  { key: 'overdue', label: '当前超时', count: (s) => s.overdue, alarm: true },
  { key: 'open_compound', label: '小区在办', count: (s) => s.open_now_by_level.compound },
  { key: 'open_community', label: '社区在办', count: (s) => s.open_now_by_level.community },
  { key: 'open_street', label: '街道在办', count: (s) => s.open_now_by_level.street },
  { key: 'median_first_answer', label: '首次响应时长', median: 'median_first_answer_seconds' },
  { key: 'median_settle', label: '办结时长', median: 'median_settle_seconds' },
];

const state = {
  user: null,
  from: '',
  to: '',
  customRange: false,
  community: '',
  unit: 'community',
  sort: 'resolution_rate',
  wall: false,
  loads: 0,
  seq: 0,
  timer: null,
  data: null,
  communities: new Map(), // id → name
};

// ------------------------------------------------------------------------------------------
// Formatting
// ------------------------------------------------------------------------------------------

function fmtRate(r) {
  return r === null || r === undefined ? '—' : (r * 100).toFixed(1) + '%';
}

function fmtCount(n) {
  return n === null || n === undefined ? '—' : Number(n).toLocaleString('zh-CN');
}

/// Seconds → "3小时5分" / "25分" / "不足1分" / "52小时" (minutes dropped from a day on, so
/// that a tile stays readable); null → "—".
function fmtDur(sec) {
  if (sec === null || sec === undefined) return '—';
  const s = Math.max(0, Math.round(sec));
  if (s < 60) return '不足1分';
  const hr = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (hr === 0) return `${m}分`;
  if (hr >= 24 || m === 0) return `${hr}小时`;
  return `${hr}小时${m}分`;
}

const clockFmt = new Intl.DateTimeFormat('zh-CN', {
  timeZone: TZ,
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hour12: false,
});

function esc(s) {
  return String(s ?? '').replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c],
  );
}

function nextDay(ymd) {
  const [y, m, d] = ymd.split('-').map(Number);
  const t = new Date(Date.UTC(y, m - 1, d + 1));
  return t.toISOString().slice(0, 10);
}

function defaultRange() {
  const today = todayBeijing();
  return { from: today.slice(0, 8) + '01', to: today };
}

const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;

// ------------------------------------------------------------------------------------------
// Hash: #/?from=&to=&community=&unit=&sort=  or  #wall?...
// ------------------------------------------------------------------------------------------

function readHash() {
  const raw = location.hash.replace(/^#/, '');
  const i = raw.indexOf('?');
  const path = i < 0 ? raw : raw.slice(0, i);
  const p = new URLSearchParams(i < 0 ? '' : raw.slice(i + 1));
  const def = defaultRange();
  const from = p.get('from');
  const to = p.get('to');
  state.customRange = DATE_RE.test(from || '') && DATE_RE.test(to || '');
  state.from = state.customRange ? from : def.from;
  state.to = state.customRange ? to : def.to;
  state.community = /^\d+$/.test(p.get('community') || '') ? p.get('community') : '';
  state.unit = p.get('unit') === 'compound' ? 'compound' : 'community';
  state.sort = SORTS.includes(p.get('sort')) ? p.get('sort') : 'resolution_rate';
  return { wall: path === 'wall' || path === '/wall' };
}

function writeHash() {
  const p = new URLSearchParams();
  if (state.customRange) {
    p.set('from', state.from);
    p.set('to', state.to);
  }
  if (state.community) p.set('community', state.community);
  if (state.unit !== 'community') p.set('unit', state.unit);
  if (state.sort !== 'resolution_rate') p.set('sort', state.sort);
  const q = p.toString();
  const hash = (state.wall ? '#wall' : '#/') + (q ? '?' + q : '');
  if (location.hash !== hash) history.replaceState(null, '', hash);
}

function syncInputs() {
  $('#from').value = state.from;
  $('#to').value = state.to;
  const sel = $('#community');
  sel.value = state.community;
  if (sel.value !== state.community) {
    state.community = '';
    sel.value = '';
  }
  $('#rank-sort').value = state.sort;
  for (const b of document.querySelectorAll('.seg [data-unit]')) {
    b.setAttribute('aria-pressed', String(b.dataset.unit === state.unit));
  }
}

// ------------------------------------------------------------------------------------------
// Sign in / out
// ------------------------------------------------------------------------------------------

function showSignin(message) {
  stopTimer();
  document.body.classList.remove('wall');
  $('#app').classList.add('hidden');
  $('#signin-view').classList.remove('hidden');
  const err = $('#signin-error');
  err.hidden = !message;
  err.textContent = message || '';
  ($('#username').value ? $('#password') : $('#username')).focus();
}

async function onSignin(ev) {
  ev.preventDefault();
  const username = $('#username').value.trim();
  const password = $('#password').value;
  const err = $('#signin-error');
  if (!username || !password) {
    err.textContent = '请输入用户名和密码';
    err.hidden = false;
    return;
  }
  const btn = $('#login');
  btn.disabled = true;
  btn.textContent = '登录中…';
  try {
    const user = await client.loginWithPassword(username, password);
    if (!ALLOWED_ROLES.includes(user.role)) {
      await client.logout();
      err.textContent = '该账号没有数据看板权限（仅限街道、社区工作人员和管理员）';
      err.hidden = false;
      return;
    }
    err.hidden = true;
    $('#password').value = '';
    await start(user);
  } catch (e) {
    err.textContent = errorText(e);
    err.hidden = false;
  } finally {
    btn.disabled = false;
    btn.textContent = '登录';
  }
}

async function logout() {
  await client.logout();
  state.user = null;
  state.data = null;
  disposeCharts();
  history.replaceState(null, '', '#/');
  showSignin();
}

// ------------------------------------------------------------------------------------------
// Start: scope, communities, first load
// ------------------------------------------------------------------------------------------

async function start(user) {
  state.user = user;
  $('#signin-view').classList.add('hidden');
  $('#app').classList.remove('hidden');
  const unit = user.org_unit;
  const scopeName = user.role === 'admin' || !unit ? '全部街道' : unit.name;
  $('#scope-name').textContent = scopeName;
  document.title = `${scopeName} · 数据看板 · 呼应`;
  await fillCommunities(user);
  const { wall } = readHash();
  syncInputs();
  setWall(wall, false);
  await loadAll();
}

async function fillCommunities(user) {
  const sel = $('#community');
  state.communities.clear();
  let tree = [];
  try {
    tree = await client.get('/org/tree');
  } catch (e) {
    toast('社区列表加载失败：' + errorText(e), 'error');
  }
  const unitId = user.org_unit ? user.org_unit.id : null;
  const options = [];
  if (user.role === 'community_staff') {
    const name = user.org_unit ? user.org_unit.name : '本社区';
    options.push(h('option', { value: '' }, name));
    sel.disabled = true;
    sel.title = '社区工作人员只能查看本社区';
  } else {
    sel.disabled = false;
    options.push(h('option', { value: '' }, user.role === 'admin' ? '全部社区（全部街道）' : '全部社区'));
    const streets = (tree || []).filter(
      (s) => s.kind === 'street' && (user.role === 'admin' || s.id === unitId),
    );
    for (const s of streets) {
      const opts = (s.children || [])
        .filter((c) => c.kind === 'community')
        .map((c) => {
          state.communities.set(String(c.id), c.name);
          return h('option', { value: String(c.id) }, c.name);
        });
      if (user.role === 'admin' && streets.length > 1) {
        options.push(h('optgroup', { label: s.name }, opts));
      } else {
        options.push(...opts);
      }
    }
  }
  mount(sel, options);
}

// ------------------------------------------------------------------------------------------
// Loading
// ------------------------------------------------------------------------------------------

function statsQuery(extra = {}) {
  const p = new URLSearchParams({ from: state.from, to: state.to });
  if (state.community) p.set('community_id', state.community);
  for (const [k, v] of Object.entries(extra)) p.set(k, v);
  return p.toString();
}

function setBusy(on) {
  document.body.classList.toggle('busy', on);
  $('#apply').disabled = on;
}

async function loadAll({ quiet = false } = {}) {
  const seq = ++state.seq;
  setBusy(true);
  try {
    const q = statsQuery();
    const [summary, trend, categories, flows, ranking, overdue] = await Promise.all([
      client.get('/stats/summary?' + q),
      client.get('/stats/trend?' + q),
      client.get('/stats/categories?' + q),
      client.get('/stats/flows?' + q),
      client.get('/stats/ranking?' + statsQuery({ unit: state.unit, sort: state.sort })),
      client.get('/stats/overdue?' + q),
    ]);
    if (seq !== state.seq) return;
    state.data = {
      summary,
      trend,
      categories,
      flows,
      ranking,
      overdue,
      unit: state.unit,
      sort: state.sort,
    };
    $('#filter-error').hidden = true;
    renderAll();
    state.loads += 1;
    document.body.dataset.loaded = String(state.loads);
    $('#loaded').textContent = String(state.loads);
    $('#last-updated').textContent = '更新于 ' + clockFmt.format(new Date());
    $('#last-updated').classList.remove('stale');
  } catch (e) {
    if (seq !== state.seq) return;
    if (e.status === 401) return; // onSignedOut shows the sign-in form
    if (quiet) {
      $('#last-updated').textContent = `刷新失败 ${clockFmt.format(new Date())}，30 秒后重试`;
      $('#last-updated').classList.add('stale');
    } else if (e.status === 422 || e.status === 404) {
      showFilterError(errorText(e));
    } else {
      toast(errorText(e), 'error');
    }
  } finally {
    if (seq === state.seq) setBusy(false);
  }
}

function showFilterError(msg) {
  const el = $('#filter-error');
  el.textContent = msg;
  el.hidden = false;
}

function onApply() {
  const from = $('#from').value;
  const to = $('#to').value;
  if (!DATE_RE.test(from) || !DATE_RE.test(to)) {
    showFilterError('请选择开始和结束日期');
    return;
  }
  if (from > to) {
    showFilterError('开始日期不能晚于结束日期');
    return;
  }
  const def = defaultRange();
  state.from = from;
  state.to = to;
  state.customRange = !(from === def.from && to === def.to);
  state.community = $('#community').value;
  $('#filter-error').hidden = true;
  writeHash();
  loadAll();
}

function onRankingChange(unit, sort) {
  state.unit = unit;
  state.sort = sort;
  syncInputs();
  writeHash();
  loadAll();
}

// ------------------------------------------------------------------------------------------
// KPI tiles
// ------------------------------------------------------------------------------------------

function buildKpis() {
  const box = $('#kpis');
  mount(
    box,
    KPIS.map((k) => {
      const tile = h(
        'div.kpi',
        {
          'data-kpi': k.key,
          title: DEF[k.key],
          tabindex: '0',
          role: 'group',
          'aria-label': k.label,
          class: 'kpi' + (k.rate ? ' kpi-rate' : '') + (k.median ? ' kpi-median' : ''),
        },
        h('div.label', k.label, h('span.info', { 'aria-hidden': 'true' }, 'ⓘ')),
        h('div.value', '—'),
        h('div.sub', ''),
        h('p.def', DEF[k.key]),
      );
      const toggle = () => tile.classList.toggle('show-def');
      tile.addEventListener('click', toggle);
      tile.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          toggle();
        }
      });
      return tile;
    }),
  );
}

function renderKpis(d) {
  const s = d.summary;
  const closedInRange = (d.trend || []).reduce((n, r) => n + r.closed, 0);
  for (const k of KPIS) {
    const tile = document.querySelector(`[data-kpi="${k.key}"]`);
    const value = tile.querySelector('.value');
    const sub = tile.querySelector('.sub');
    if (k.rate) {
      const f = s.rate_counts[k.rate];
      value.textContent = fmtRate(s[k.key]);
      sub.textContent = f.denominator ? `${fmtCount(f.numerator)} / ${fmtCount(f.denominator)} 件` : '暂无可计工单';
      tile.classList.toggle('low', s[k.key] !== null && s[k.key] < 0.8);
    } else if (k.median) {
      const m = s[k.median];
      value.textContent = fmtDur(m.all);
      mount(
        sub,
        ['compound', 'community', 'street'].map((l) =>
          h('span.lvl', { 'data-level': l }, h('b', LEVEL_ZH[l].slice(0, 2)), ' ', fmtDur(m[l])),
        ),
      );
    } else {
      const n = k.count(s);
      value.textContent = fmtCount(n);
      if (k.alarm) tile.classList.toggle('alarm', n > 0);
      if (k.key === 'total') {
        const b = s.by_status;
        sub.textContent = `待受理 ${b.open} · 处理中 ${b.acknowledged} · 待确认 ${b.resolved}`;
      } else if (k.key === 'closed') {
        sub.textContent = `区间内关闭 ${fmtCount(closedInRange)} 件（含往期）`;
      } else if (k.key === 'overdue') {
        sub.textContent = '此刻';
      } else {
        sub.textContent = '此刻待受理或处理中';
      }
    }
  }
}

// ------------------------------------------------------------------------------------------
// Charts
// ------------------------------------------------------------------------------------------

const charts = {};
let resizeObserver = null;

function hasEcharts() {
  return typeof window.echarts !== 'undefined';
}

function palette() {
  return state.wall
    ? { red: '#ff4d4f', green: '#52c41a', blue: '#4096ff', orange: '#fa8c16', gold: '#fadb14', muted: '#8c9bb5', text: '#e6edf7', line: '#2a3b5c' }
    : { red: '#c8161e', green: '#1a7f37', blue: '#2f6fde', orange: '#e37318', gold: '#b8860b', muted: '#646a73', text: '#1f2329', line: '#e5e6eb' };
}

function narrow() {
  return window.innerWidth < 520;
}

function fs() {
  return state.wall ? 18 : 13;
}

function getChart(id) {
  if (!hasEcharts()) return null;
  if (!charts[id]) {
    const el = document.getElementById(id);
    charts[id] = window.echarts.init(el, state.wall ? 'dark' : null, { renderer: 'canvas' });
    if (resizeObserver) resizeObserver.observe(el);
  }
  return charts[id];
}

/// Replaces a chart's option. A tooltip still showing from the previous option is hidden
/// first: ECharts otherwise writes into its removed tooltip element and throws.
function setOpt(chart, option) {
  chart.dispatchAction({ type: 'hideTip' });
  chart.setOption(option, true);
}

function disposeCharts() {
  for (const id of Object.keys(charts)) {
    charts[id].dispatchAction({ type: 'hideTip' });
    charts[id].dispose();
    delete charts[id];
  }
}

function base(extra) {
  const c = palette();
  return {
    backgroundColor: 'transparent',
    animationDuration: state.wall ? 600 : 300,
    textStyle: { fontSize: fs(), color: c.text },
    ...extra,
  };
}

function emptyTitle(text = '暂无数据') {
  return {
    text,
    left: 'center',
    top: 'middle',
    textStyle: { fontSize: fs() + 2, color: palette().muted, fontWeight: 'normal' },
  };
}

function axisTooltip(params) {
  const list = Array.isArray(params) ? params : [params];
  if (!list.length) return '';
  const head = esc(list[0].axisValueLabel ?? list[0].name);
  const rows = list.map((p) => `${p.marker}${esc(p.seriesName)}：<b>${esc(p.value)}</b>`);
  return [head, ...rows].join('<br>');
}

function renderTrend(rows) {
  const chart = getChart('chart-trend');
  if (!chart) return;
  const c = palette();
  setOpt(
    chart,
    base({
      color: [c.red, c.green],
      tooltip: { trigger: 'axis', formatter: axisTooltip, textStyle: { fontSize: fs() } },
      legend: { top: 0, textStyle: { fontSize: fs(), color: c.text }, data: ['新建', '关闭'] },
      grid: { left: 8, right: 16, top: 36, bottom: 8, containLabel: true },
      xAxis: {
        type: 'category',
        data: rows.map((r) => r.date.slice(5)),
        axisLabel: { fontSize: fs() - 1, color: c.muted },
        axisLine: { lineStyle: { color: c.line } },
      },
      yAxis: {
        type: 'value',
        minInterval: 1,
        axisLabel: { fontSize: fs() - 1, color: c.muted },
        splitLine: { lineStyle: { color: c.line } },
      },
      series: [
        { name: '新建', type: 'bar', barMaxWidth: 24, data: rows.map((r) => r.created) },
        {
          name: '关闭',
          type: 'line',
          smooth: false,
          symbolSize: state.wall ? 8 : 6,
          lineStyle: { width: state.wall ? 3 : 2 },
          data: rows.map((r) => r.closed),
        },
      ],
    }),
  );
}

function renderCategories(rows) {
  const chart = getChart('chart-categories');
  if (!chart) return;
  const c = palette();
  if (!rows.length) {
    setOpt(chart, base({ title: emptyTitle() }));
    return;
  }
  const shown = state.wall ? rows.slice(0, 8) : rows;
  setHeight('chart-categories', shown.length);
  setOpt(
    chart,
    base({
      color: [c.blue, c.green],
      tooltip: {
        trigger: 'axis',
        axisPointer: { type: 'shadow' },
        formatter: axisTooltip,
        textStyle: { fontSize: fs() },
      },
      legend: { top: 0, textStyle: { fontSize: fs(), color: c.text }, data: ['新建', '已关闭'] },
      grid: { left: 8, right: 40, top: 36, bottom: 8, containLabel: true },
      xAxis: {
        type: 'value',
        minInterval: 1,
        axisLabel: { fontSize: fs() - 1, color: c.muted },
        splitLine: { lineStyle: { color: c.line } },
      },
      yAxis: {
        type: 'category',
        inverse: true,
        data: shown.map((r) => r.name || r.code),
        axisLabel: { fontSize: fs(), color: c.text, width: state.wall ? 150 : narrow() ? 80 : 110, overflow: 'truncate', interval: 0 },
        axisLine: { lineStyle: { color: c.line } },
      },
      series: [
        {
          name: '新建',
          type: 'bar',
          barMaxWidth: 18,
          label: { show: true, position: 'right', fontSize: fs() - 1, color: c.text },
          data: shown.map((r) => r.tickets),
        },
        { name: '已关闭', type: 'bar', barMaxWidth: 18, data: shown.map((r) => r.closed) },
      ],
    }),
  );
}

const RATE_SORTS = ['response_rate', 'resolution_rate', 'satisfaction_rate', 'settled_in_compound_rate'];

function rankValue(r, sort) {
  if (RATE_SORTS.includes(sort)) return r[sort] === null ? null : Math.round(r[sort] * 1000) / 10;
  return r[sort];
}

function renderRanking(rows, unit, sort) {
  $('#ranking-title').textContent = `${UNIT_ZH[unit]}排名 · ${SORT_ZH[sort]}`;
  renderRankingTable(rows, unit);
  const chart = getChart('chart-ranking');
  if (!chart) return;
  const c = palette();
  if (!rows.length) {
    setOpt(chart, base({ title: emptyTitle('暂无' + UNIT_ZH[unit]) }));
    return;
  }
  const isRate = RATE_SORTS.includes(sort);
  const shown = state.wall ? rows.slice(0, 8) : rows;
  setHeight('chart-ranking', shown.length);
  const color = sort === 'overdue' ? c.red : sort === 'tickets' ? c.blue : c.gold;
  setOpt(
    chart,
    base({
      tooltip: {
        trigger: 'item',
        textStyle: { fontSize: fs() },
        formatter: (p) => {
          const r = shown[p.dataIndex];
          return [
            `<b>${esc(r.rank)}. ${esc(r.name)}</b>`,
            `工单 ${esc(r.tickets)} 件 · 当前超时 ${esc(r.overdue)}`,
            `响应率 ${fmtRate(r.response_rate)} · 解决率 ${fmtRate(r.resolution_rate)}`,
            `满意率 ${fmtRate(r.satisfaction_rate)} · 小事不出小区 ${fmtRate(r.settled_in_compound_rate)}`,
            `首次响应 ${fmtDur(r.median_first_answer_seconds)} · 办结 ${fmtDur(r.median_settle_seconds)}`,
          ].join('<br>');
        },
      },
      grid: { left: 8, right: 64, top: 8, bottom: 8, containLabel: true },
      xAxis: {
        type: 'value',
        max: isRate ? 100 : null,
        minInterval: 1,
        axisLabel: {
          fontSize: fs() - 1,
          color: c.muted,
          hideOverlap: true,
          formatter: isRate ? '{value}%' : '{value}',
        },
        splitLine: { lineStyle: { color: c.line } },
      },
      yAxis: {
        type: 'category',
        inverse: true,
        data: shown.map((r) => `${r.rank}. ${r.name}`),
        axisLabel: { fontSize: fs(), color: c.text, width: state.wall ? 180 : narrow() ? 100 : 130, overflow: 'truncate', interval: 0 },
        axisLine: { lineStyle: { color: c.line } },
      },
      series: [
        {
          name: SORT_ZH[sort],
          type: 'bar',
          barMaxWidth: 20,
          itemStyle: { color },
          label: {
            show: true,
            position: 'right',
            fontSize: fs() - 1,
            color: c.text,
            formatter: (p) => {
              const r = shown[p.dataIndex];
              return isRate ? fmtRate(r[sort]) : fmtCount(r[sort]);
            },
          },
          // A unit without a rate gets an empty bar ("—" label) instead of a 0.
          data: shown.map((r) => {
            const v = rankValue(r, sort);
            return v === null ? { value: 0, label: { formatter: '—' } } : v;
          }),
        },
      ],
    }),
  );
}

function renderRankingTable(rows, unit) {
  const head = h(
    'thead',
    h(
      'tr',
      ['名次', UNIT_ZH[unit], '工单', '响应率', '解决率', '满意率', '小事不出小区率', '当前超时', '首次响应', '办结'].map(
        (t) => h('th', { scope: 'col' }, t),
      ),
    ),
  );
  const body = h(
    'tbody',
    rows.map((r) =>
      h(
        'tr',
        h('td', String(r.rank)),
        h('th', { scope: 'row' }, r.name),
        h('td', fmtCount(r.tickets)),
        h('td', fmtRate(r.response_rate)),
        h('td', fmtRate(r.resolution_rate)),
        h('td', fmtRate(r.satisfaction_rate)),
        h('td', fmtRate(r.settled_in_compound_rate)),
        h('td', { class: r.overdue ? 'overdue' : '' }, fmtCount(r.overdue)),
        h('td', fmtDur(r.median_first_answer_seconds)),
        h('td', fmtDur(r.median_settle_seconds)),
      ),
    ),
  );
  mount($('#ranking-table'), head, body);
}

function renderFlows(f) {
  const c = palette();
  const items = [
    { name: '小区→社区\n上报', value: f.up_compound_to_community, color: c.red },
    { name: '社区→街道\n上报', value: f.up_community_to_street, color: c.orange },
    { name: '街道→社区\n退回', value: f.down_street_to_community, color: c.blue },
    { name: '社区→小区\n退回', value: f.down_community_to_compound, color: c.green },
  ];
  const up = f.up_compound_to_community + f.up_community_to_street;
  const manual = Math.max(0, up - f.up_automatic - f.up_by_dispute);
  $('#flows-note').textContent = up
    ? `共上报 ${up} 次：主动上报 ${manual} 次，超时自动上报 ${f.up_automatic} 次，居民异议上报 ${f.up_by_dispute} 次。`
    : '所选时段内没有上报。';
  const chart = getChart('chart-flows');
  if (!chart) return;
  setOpt(
    chart,
    base({
      tooltip: {
        trigger: 'item',
        textStyle: { fontSize: fs() },
        formatter: (p) => `${esc(p.name.replace('\n', ' '))}：<b>${esc(p.value)}</b> 次`,
      },
      grid: { left: 8, right: 8, top: 28, bottom: 8, containLabel: true },
      xAxis: {
        type: 'category',
        data: items.map((i) => i.name),
        axisLabel: { fontSize: fs() - 1, color: c.text, interval: 0 },
        axisLine: { lineStyle: { color: c.line } },
      },
      yAxis: {
        type: 'value',
        minInterval: 1,
        axisLabel: { fontSize: fs() - 1, color: c.muted },
        splitLine: { lineStyle: { color: c.line } },
      },
      series: [
        {
          type: 'bar',
          barMaxWidth: 48,
          label: { show: true, position: 'top', fontSize: fs(), color: c.text },
          data: items.map((i) => ({ value: i.value, itemStyle: { color: i.color } })),
        },
      ],
    }),
  );
}

/// Horizontal bar charts grow with their rows on the normal page; the wall has fixed panels.
function setHeight(id, n) {
  const el = document.getElementById(id);
  el.style.height = state.wall ? '' : Math.max(240, n * 34 + 56) + 'px';
  if (charts[id]) charts[id].resize();
}

// ------------------------------------------------------------------------------------------
// Overdue list
// ------------------------------------------------------------------------------------------

function renderOverdue(list) {
  $('#overdue-total').textContent = String(list.total);
  const box = $('#overdue-list');
  if (!list.items.length) {
    mount(box, h('p.empty.ok', '当前没有超时工单'));
    return;
  }
  const items = list.items.map((t) =>
    h(
      'li.od-item',
      h(
        'a',
        {
          href: `/staff/#/t/${t.id}`,
          target: '_blank',
          rel: 'noopener',
          'data-id': String(t.id),
          class: 'od-link',
        },
        h('span.od-ref', t.reference),
        h('span.od-title', t.title),
        h(
          'span.od-where',
          `${t.community.name} · ${t.compound.name} · 在${LEVEL_ZH[t.level] || t.level}`,
          t.escalation_count ? ` · 已上报 ${t.escalation_count} 次` : '',
        ),
        h(
          'span.od-late',
          t.overdue_seconds !== null && t.overdue_seconds !== undefined
            ? `已超时 ${fmtDur(t.overdue_seconds)}`
            : '已超时',
        ),
      ),
    ),
  );
  mount(
    box,
    h('ol.od-items', items),
    list.total > list.items.length ? h('p.hint', `仅显示超时最久的 ${list.items.length} 件，共 ${list.total} 件`) : null,
  );
}

// ------------------------------------------------------------------------------------------
// Render all
// ------------------------------------------------------------------------------------------

function renderAll() {
  const d = state.data;
  if (!d) return;
  const cname = state.community ? state.communities.get(state.community) || `社区 ${state.community}` : '';
  const scope =
    state.user.role === 'community_staff'
      ? state.user.org_unit?.name || ''
      : cname || (state.user.role === 'admin' ? '全部街道' : '全部社区');
  $('#range-text').textContent = `统计区间 ${state.from} 至 ${state.to}（北京时间）· ${scope}；在办、超时为此刻数据`;
  renderKpis(d);
  renderOverdue(d.overdue);
  renderTrend(d.trend);
  renderCategories(d.categories);
  renderRanking(d.ranking, d.unit, d.sort);
  renderFlows(d.flows);
}

// ------------------------------------------------------------------------------------------
// Wall mode (数据大屏)
// ------------------------------------------------------------------------------------------

function isFullscreen() {
  return !!document.fullscreenElement;
}

function requestFullscreen() {
  const el = document.documentElement;
  if (!el.requestFullscreen || isFullscreen()) return;
  el.requestFullscreen().catch(() => {
    /* Needs a user gesture (e.g. opened directly at #wall): the 全屏 button stays visible. */
  });
}

function updateFullscreenButton() {
  $('#fullscreen').classList.toggle('hidden', !state.wall || isFullscreen() || !document.fullscreenEnabled);
}

function setWall(on, fromUser) {
  const changed = state.wall !== on || !!document.body.classList.contains('wall') !== on;
  state.wall = on;
  document.body.classList.toggle('wall', on);
  const btn = $('#wall');
  btn.textContent = on ? '退出大屏' : '数据大屏';
  btn.setAttribute('aria-pressed', String(on));
  document.querySelector('meta[name=theme-color]').setAttribute('content', on ? '#0b1426' : '#c8161e');
  if (on) {
    if (fromUser) requestFullscreen();
    startTimer();
  } else {
    stopTimer();
    if (fromUser && isFullscreen()) document.exitFullscreen().catch(() => {});
  }
  updateFullscreenButton();
  writeHash();
  if (changed) {
    disposeCharts();
    // Let the layout settle before the charts measure their boxes.
    requestAnimationFrame(() => renderAll());
  }
}

function startTimer() {
  stopTimer();
  state.timer = setInterval(() => {
    if (document.hidden || !state.user) return;
    if (!state.customRange) {
      // "This month so far" rolls over at midnight on a wall that runs for days.
      const def = defaultRange();
      state.from = def.from;
      state.to = def.to;
      syncInputs();
    }
    loadAll({ quiet: true });
  }, REFRESH_MS);
}

function stopTimer() {
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
}

// ------------------------------------------------------------------------------------------
// Exports
// ------------------------------------------------------------------------------------------

function ticketExportQuery() {
  // /stats/tickets.* take the filters of GET /tickets (created_from / created_to instants), not
  // from / to: the range is the same Beijing days as the dashboard.
  const p = new URLSearchParams({
    created_from: `${state.from}T00:00:00+08:00`,
    created_to: `${nextDay(state.to)}T00:00:00+08:00`,
    sort: 'created',
  });
  if (state.community) p.set('community_id', state.community);
  return p.toString();
}

async function download(btn, path, filename) {
  btn.disabled = true;
  try {
    const res = await client.fetchRaw(path);
    const blob = await res.blob();
    const url = URL.createObjectURL(blob);
    const a = h('a', { href: url, download: filename, style: 'display:none' });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 30_000);
    if (res.headers.get('x-export-truncated') === 'true') {
      toast('数据过多，仅导出了前 50,000 条', 'error');
    } else {
      toast('已下载 ' + filename);
    }
  } catch (e) {
    toast('导出失败：' + errorText(e), 'error');
  } finally {
    btn.disabled = false;
  }
}

function exportTickets(ext, btn) {
  const name = `工单明细_${state.from}至${state.to}.${ext}`;
  download(btn, `/stats/tickets.${ext}?${ticketExportQuery()}`, name);
}

function exportRanking(ext, btn) {
  const name = `${UNIT_ZH[state.unit]}排名_${SORT_ZH[state.sort]}_${state.from}至${state.to}.${ext}`;
  download(btn, `/stats/ranking.${ext}?${statsQuery({ unit: state.unit, sort: state.sort })}`, name);
}

// ------------------------------------------------------------------------------------------
// Boot
// ------------------------------------------------------------------------------------------

function wire() {
  $('#signin-form').addEventListener('submit', onSignin);
  $('#apply').addEventListener('click', onApply);
  for (const id of ['from', 'to']) {
    $('#' + id).addEventListener('keydown', (e) => {
      if (e.key === 'Enter') onApply();
    });
  }
  $('#logout').addEventListener('click', logout);
  $('#wall').addEventListener('click', () => setWall(!state.wall, true));
  $('#fullscreen').addEventListener('click', requestFullscreen);
  document.addEventListener('fullscreenchange', updateFullscreenButton);
  for (const b of document.querySelectorAll('.seg [data-unit]')) {
    b.addEventListener('click', () => onRankingChange(b.dataset.unit, state.sort));
  }
  $('#rank-sort').addEventListener('change', (e) => onRankingChange(state.unit, e.target.value));
  $('#export-tickets-csv').addEventListener('click', (e) => exportTickets('csv', e.currentTarget));
  $('#export-tickets-xlsx').addEventListener('click', (e) => exportTickets('xlsx', e.currentTarget));
  $('#export-ranking-csv').addEventListener('click', (e) => exportRanking('csv', e.currentTarget));
  $('#export-ranking-xlsx').addEventListener('click', (e) => exportRanking('xlsx', e.currentTarget));
  window.addEventListener('hashchange', () => {
    if (!state.user) return;
    const { wall } = readHash();
    syncInputs();
    setWall(wall, false);
    loadAll();
  });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && state.wall && !isFullscreen() && !e.target.closest('input,select')) {
      setWall(false, true);
    }
  });
  if (typeof ResizeObserver !== 'undefined') {
    resizeObserver = new ResizeObserver((entries) => {
      for (const en of entries) charts[en.target.id]?.resize();
    });
  }
  client.onSignedOut = () => showSignin('登录已过期，请重新登录');
}

async function echartsReady() {
  if (hasEcharts()) return;
  if (document.readyState !== 'complete') {
    await new Promise((r) => window.addEventListener('load', r, { once: true }));
  }
  if (!hasEcharts()) toast('图表组件加载失败，仅显示数字指标', 'error');
}

async function boot() {
  wire();
  buildKpis();
  await echartsReady();
  if (client.signedIn) {
    try {
      if (await client.resume()) {
        const me = await client.get('/me');
        if (ALLOWED_ROLES.includes(me.role)) {
          await start(me);
          return;
        }
        await client.logout();
      }
    } catch (e) {
      if (e.status !== 401) {
        showSignin(errorText(e));
        return;
      }
    }
  }
  showSignin();
}

boot();
