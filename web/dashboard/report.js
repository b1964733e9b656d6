// 月报: the street's monthly report as a printable A4 page (GET /api/v1/reports/monthly?month=),
// what a street office hands its committee meeting: the rates beside last month's, 小事不出小区率,
// the ledger's best and worst compounds, the top categories and compounds, overdue and reopened
// tickets, the callbacks' results and how tickets were closed, with charts drawn as SVG so that
// they print sharp. 打印 prints it; 下载 XLSX fetches GET /reports/monthly.xlsx.
// Opened from the dashboard (月报); uses the dashboard's sign-in.
//   /static/dashboard/report.html?month=2026-11[&street_id=1]

import { createClient } from '/static/common/api.js';
import { $, h, mount, toast, errorText, fmtTime, todayBeijing } from '/static/common/ui.js';
import { label, hasLabel, loadLabels } from '/static/common/labels.js';

const client = createClient('dashboard');
const MONTH_RE = /^\d{4}-(0[1-9]|1[0-2])$/;

const RATES = [
  ['response_rate', '响应率'],
  ['resolution_rate', '解决率'],
  ['satisfaction_rate', '满意率（居民自评）'],
  ['callback_satisfaction_rate', '回访满意率'],
  ['settled_in_compound_rate', '小事不出小区率'],
  ['confirmed_rate', '居民确认率'],
];

const LEDGER_COLS = [
  'received',
  'acknowledged_on_time',
  'resolved_on_time',
  'called_up',
  'declines',
  'urges_received',
  'disputes',
  'reopenings',
];
const LEDGER_WORDS = {
  received: '收到',
  acknowledged_on_time: '按时受理',
  resolved_on_time: '按时办结',
  called_up: '上呼',
  declines: '不予受理',
  urges_received: '被催办',
  disputes: '异议',
  reopenings: '重新办理',
  self_rated_satisfaction_rate: '自评满意率',
  callback_satisfaction_rate: '回访满意率',
};
const CLOSED_BY = ['resident', 'auto', 'callback', 'declined', 'withdrawn', 'raising_level'];
const COLORS = ['#c8161e', '#2f6fde', '#1a7f37', '#e37318', '#b8860b', '#7a5bd6', '#646a73'];

const charts = [];
let current = null; // the report shown

function lastMonth() {
  const [y, m] = todayBeijing().split('-').map(Number);
  const d = new Date(Date.UTC(y, m - 2, 1));
  return d.toISOString().slice(0, 7);
}

function monthWords(ym) {
  const [y, m] = ym.split('-').map(Number);
  return `${y}年${m}月`;
}

function params() {
  const p = new URLSearchParams(location.search);
  const month = MONTH_RE.test(p.get('month') || '') ? p.get('month') : lastMonth();
  const street = /^\d+$/.test(p.get('street_id') || '') ? p.get('street_id') : null;
  return { month, street };
}

function query(month, street) {
  const p = new URLSearchParams({ month });
  if (street) p.set('street_id', street);
  return p.toString();
}

const pct = (r) => (r === null || r === undefined ? '—' : (r * 100).toFixed(1) + '%');
const num = (n) => (n === null || n === undefined ? '—' : Number(n).toLocaleString('zh-CN'));

/// "↑ 3.2 个百分点" between two rates, "↓ 5 件" between two counts.
function change(now, before, rate) {
  if (now === null || now === undefined || before === null || before === undefined) return h('span.chg', '—');
  const d = rate ? Math.round((now - before) * 1000) / 10 : now - before;
  if (d === 0) return h('span.chg.flat', '持平');
  const unit = rate ? ' 个百分点' : ' 件';
  return h('span.chg', { class: 'chg ' + (d > 0 ? 'up' : 'down') }, `${d > 0 ? '↑' : '↓'} ${Math.abs(d)}${unit}`);
}

function word(set, code, fallback) {
  if (hasLabel(set, code)) return label(set, code);
  return fallback ?? code;
}

function ledgerWord(key) {
  return hasLabel('ledger_column', key) ? label('ledger_column', key) : LEDGER_WORDS[key] || key;
}

/// The reason a ticket was reopened, in words.
function reopenReason(code) {
  if (!code) return '';
  for (const set of ['callback_verdict', 'event_kind', 'callback_flag', 'system_reason', 'escalation_reason']) {
    if (hasLabel(set, code)) return label(set, code);
  }
  if (code === 'pressed') return '居民表示曾被诱导';
  return code;
}

// ---- charts ----------------------------------------------------------------------------------

function chartBox(id, caption, height = 64) {
  return h('figure.chart-fig', h('div.chart', { id, style: { height: `${height}mm` }, role: 'img', 'aria-label': caption }), h('figcaption', caption));
}

function draw(id, option) {
  if (typeof window.echarts === 'undefined') return;
  const el = document.getElementById(id);
  if (!el) return;
  const c = window.echarts.init(el, null, { renderer: 'svg' });
  c.setOption({ animation: false, textStyle: { fontSize: 11, color: '#1f2329' }, color: COLORS, ...option });
  charts.push(c);
}

function disposeCharts() {
  while (charts.length) charts.pop().dispose();
}

function drawCharts(r) {
  const t = r.rates?.this || {};
  const p = r.rates?.previous || {};
  const rateRows = RATES.filter(([k]) => k in t || k in p);
  draw('chart-rates', {
    legend: { top: 0, data: [monthWords(r.month), monthWords(r.previous_month)] },
    grid: { left: 8, right: 8, top: 28, bottom: 4, containLabel: true },
    xAxis: { type: 'category', data: rateRows.map(([, n]) => n.replace('（居民自评）', '')), axisLabel: { interval: 0, fontSize: 10 } },
    yAxis: { type: 'value', max: 100, axisLabel: { formatter: '{value}%' } },
    series: [
      {
        name: monthWords(r.month),
        type: 'bar',
        barMaxWidth: 22,
        label: { show: true, position: 'top', fontSize: 9, formatter: (x) => (x.value === null ? '—' : `${x.value}%`) },
        data: rateRows.map(([k]) => (t[k] === null || t[k] === undefined ? null : Math.round(t[k] * 1000) / 10)),
      },
      {
        name: monthWords(r.previous_month),
        type: 'bar',
        barMaxWidth: 22,
        itemStyle: { color: '#b8bcc4' },
        data: rateRows.map(([k]) => (p[k] === null || p[k] === undefined ? null : Math.round(p[k] * 1000) / 10)),
      },
    ],
  });
  const trend = r.trend || [];
  draw('chart-trend', {
    legend: { top: 0, data: ['新建', '关闭'] },
    grid: { left: 8, right: 8, top: 28, bottom: 4, containLabel: true },
    xAxis: { type: 'category', data: trend.map((d) => String(d.date || d.day).slice(8)), axisLabel: { fontSize: 9 } },
    yAxis: { type: 'value', minInterval: 1 },
    series: [
      { name: '新建', type: 'bar', barMaxWidth: 10, data: trend.map((d) => d.created) },
      { name: '关闭', type: 'line', symbolSize: 4, data: trend.map((d) => d.closed) },
    ],
  });
  const cb = r.closed_by || {};
  const pieData = CLOSED_BY.map((k) => ({ name: word('closed_by', k), value: cb[k] || 0 })).filter((x) => x.value > 0);
  draw('chart-closed-by', {
    title: pieData.length ? undefined : { text: '本月没有关闭的工单', left: 'center', top: 'middle', textStyle: { fontSize: 12, color: '#646a73', fontWeight: 'normal' } },
    series: [
      {
        type: 'pie',
        radius: ['35%', '65%'],
        label: { formatter: '{b}\n{c} 件', fontSize: 10 },
        data: pieData,
      },
    ],
  });
  const c = r.callbacks || {};
  const cbItems = [
    ['satisfied', c.satisfied, '#1a7f37'],
    ['basically_satisfied', c.basically_satisfied, '#7cb305'],
    ['unsatisfied', c.unsatisfied, '#c8161e'],
    ['unreachable', c.unreachable, '#8c8c8c'],
  ];
  draw('chart-callbacks', {
    grid: { left: 8, right: 24, top: 8, bottom: 4, containLabel: true },
    xAxis: { type: 'value', minInterval: 1 },
    yAxis: {
      type: 'category',
      inverse: true,
      data: [...cbItems.map(([k]) => (k === 'unreachable' ? word('callback_state', k, '无法联系') : word('callback_verdict', k))), '表示被诱导'],
    },
    series: [
      {
        type: 'bar',
        barMaxWidth: 14,
        label: { show: true, position: 'right', fontSize: 10 },
        data: [...cbItems.map(([, v, color]) => ({ value: v || 0, itemStyle: { color } })), { value: c.pressed || 0, itemStyle: { color: '#e37318' } }],
      },
    ],
  });
  const cats = (r.top_categories || []).slice(0, 8);
  draw('chart-categories', {
    grid: { left: 8, right: 24, top: 8, bottom: 4, containLabel: true },
    xAxis: { type: 'value', minInterval: 1 },
    yAxis: { type: 'category', inverse: true, data: cats.map((x) => x.name), axisLabel: { width: 90, overflow: 'truncate' } },
    series: [{ type: 'bar', barMaxWidth: 14, itemStyle: { color: '#2f6fde' }, label: { show: true, position: 'right', fontSize: 10 }, data: cats.map((x) => x.tickets) }],
  });
}

// ---- the sheet ---------------------------------------------------------------------------------

function table(cls, headings, rows, empty = '无') {
  if (!rows.length) return h('p.none', empty);
  return h(
    'table',
    { class: cls },
    h('thead', h('tr', headings.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', rows),
  );
}

function moreThan(list, total) {
  const n = (list || []).length;
  return total > n ? h('p.note', `仅列出 ${n} 件，共 ${num(total)} 件`) : null;
}

function ratesTable(r) {
  const t = r.rates?.this || {};
  const p = r.rates?.previous || {};
  const rows = RATES.map(([k, name]) =>
    h(
      'tr',
      { 'data-rate': k, class: k === 'settled_in_compound_rate' ? 'key' : '' },
      h('th', { scope: 'row' }, name),
      h('td.now', pct(t[k])),
      h('td', pct(p[k])),
      h('td', change(t[k], p[k], true)),
    ),
  );
  rows.push(
    h(
      'tr',
      { 'data-rate': 'tickets' },
      h('th', { scope: 'row' }, '工单数'),
      h('td.now', num(t.tickets)),
      h('td', num(p.tickets)),
      h('td', change(t.tickets, p.tickets, false)),
    ),
  );
  rows.push(
    h(
      'tr',
      { 'data-rate': 'resolved_unconfirmed' },
      h('th', { scope: 'row' }, '超时自动关闭（办结未确认）'),
      h('td.now', num(t.resolved_unconfirmed)),
      h('td', num(p.resolved_unconfirmed)),
      h('td', change(t.resolved_unconfirmed, p.resolved_unconfirmed, false)),
    ),
  );
  return table('t-rates', ['指标', monthWords(r.month), `上月（${monthWords(r.previous_month)}）`, '变化'], rows);
}

function ledgerTable(rows, cls) {
  return table(
    cls,
    ['小区', ...LEDGER_COLS.map(ledgerWord), ledgerWord('self_rated_satisfaction_rate'), ledgerWord('callback_satisfaction_rate')],
    (rows || []).map((x) =>
      h(
        'tr',
        h('th', { scope: 'row' }, x.unit_name, x.parent_name ? h('span.parent', x.parent_name) : null),
        LEDGER_COLS.map((k) => h('td', num(x[k]))),
        h('td', pct(x.self_rated_satisfaction_rate)),
        h('td', pct(x.callback_satisfaction_rate)),
      ),
    ),
    '本月没有可比较的小区',
  );
}

function render(r) {
  const t = r.rates?.this || {};
  const c = r.callbacks || {};
  const cb = r.closed_by || {};
  const closedTotal = CLOSED_BY.reduce((n, k) => n + (cb[k] || 0), 0);
  const street = r.unit_name || r.street_name || '';
  document.title = `${street}${monthWords(r.month)}月报 · 呼应`;
  disposeCharts();
  mount(
    $('#report'),
    h(
      'header.r-head',
      h('p.r-kicker', '三级呼叫响应 · 月度工作报告'),
      h('h1#report-title', `${street} ${monthWords(r.month)}工作月报`),
      h(
        'p.r-meta',
        `统计月份 ${monthWords(r.month)}（北京时间），对照 ${monthWords(r.previous_month)} · 生成于 ${fmtTime(new Date().toISOString())}`,
      ),
    ),
    h(
      'section.r-summary',
      h(
        'div.big',
        h('div.big-item.key', h('span', '小事不出小区率'), h('b#settled-rate', pct(t.settled_in_compound_rate)), change(t.settled_in_compound_rate, r.rates?.previous?.settled_in_compound_rate, true)),
        h('div.big-item', h('span', '工单'), h('b', num(t.tickets)), change(t.tickets, r.rates?.previous?.tickets, false)),
        h('div.big-item', h('span', '解决率'), h('b', pct(t.resolution_rate)), change(t.resolution_rate, r.rates?.previous?.resolution_rate, true)),
        h('div.big-item', h('span', '回访满意率'), h('b', pct(t.callback_satisfaction_rate)), h('span.chg', `自评 ${pct(t.satisfaction_rate)}`)),
      ),
    ),
    h('section.r-sec', h('h2', '一、主要指标'), ratesTable(r), chartBox('chart-rates', '本月与上月主要指标（%）', 58)),
    h('section.r-sec', h('h2', '二、每日工单'), chartBox('chart-trend', '每日新建与关闭工单数', 50)),
    h(
      'section.r-sec.cols',
      h(
        'div',
        h('h2', '三、办结方式'),
        table(
          't-closed-by',
          ['办结方式', '件数', '占比'],
          CLOSED_BY.map((k) =>
            h('tr', { 'data-closed-by': k }, h('th', { scope: 'row' }, word('closed_by', k)), h('td', num(cb[k] || 0)), h('td', closedTotal ? pct((cb[k] || 0) / closedTotal) : '—')),
          ),
        ),
        chartBox('chart-closed-by', '本月关闭工单的办结方式', 56),
      ),
      h(
        'div',
        h('h2', '四、回访结果'),
        table('t-callbacks', ['项目', '件数'], [
          h('tr', h('th', { scope: 'row' }, '应回访'), h('td', num(c.total))),
          h('tr', h('th', { scope: 'row' }, word('callback_state', 'pending', '待回访')), h('td', num(c.pending))),
          h('tr', h('th', { scope: 'row' }, '已接通'), h('td', num(c.reached))),
          h('tr', h('th', { scope: 'row' }, word('callback_verdict', 'satisfied')), h('td', num(c.satisfied))),
          h('tr', h('th', { scope: 'row' }, word('callback_verdict', 'basically_satisfied')), h('td', num(c.basically_satisfied))),
          h('tr', { class: c.unsatisfied ? 'warn' : '' }, h('th', { scope: 'row' }, word('callback_verdict', 'unsatisfied')), h('td', num(c.unsatisfied))),
          h('tr', h('th', { scope: 'row' }, word('callback_state', 'unreachable', '无法联系')), h('td', num(c.unreachable))),
          h('tr', { class: c.pressed ? 'warn' : '' }, h('th', { scope: 'row' }, '居民表示被诱导撤单/打分'), h('td', num(c.pressed))),
          h('tr', h('th', { scope: 'row' }, '回访后重新办理'), h('td', num(c.reopened))),
        ]),
        chartBox('chart-callbacks', '回访结果（件）', 46),
      ),
    ),
    h(
      'section.r-sec',
      h('h2', '五、责任账本'),
      h('p.note', '按工单到达时负责的小区统计本月的处理情况（责任账本）：按时受理占比最高和最低的小区。'),
      h('h3', '表现较好的小区'),
      ledgerTable(r.ledger_top, 't-ledger-top'),
      h('h3', '需要改进的小区'),
      ledgerTable(r.ledger_bottom, 't-ledger-bottom'),
    ),
    h(
      'section.r-sec.cols',
      h(
        'div',
        h('h2', '六、诉求类别前列'),
        table('t-categories', ['类别', '工单'], (r.top_categories || []).map((x) => h('tr', h('th', { scope: 'row' }, x.name), h('td', num(x.tickets))))),
        chartBox('chart-categories', '各类别工单数', 50),
      ),
      h(
        'div',
        h('h2', '七、工单较多的小区'),
        table('t-compounds', ['小区', '工单'], (r.top_compounds || []).map((x) => h('tr', h('th', { scope: 'row' }, x.name), h('td', num(x.tickets))))),
      ),
    ),
    h(
      'section.r-sec',
      h('h2', `八、当前超时工单（${num(r.overdue_total ?? (r.overdue || []).length)} 件）`),
      table(
        't-overdue',
        ['编号', '标题', '现由'],
        (r.overdue || []).map((x) => h('tr', h('td.ref', x.reference), h('td', x.title), h('td', x.detail || word('level', x.level)))),
        '当前没有超时工单',
      ),
      moreThan(r.overdue, r.overdue_total),
    ),
    h(
      'section.r-sec',
      h('h2', `九、重新办理的工单（${num(r.reopened_total ?? (r.reopened || []).length)} 件）`),
      h('p.note', '居民对办结提出异议，或回访中表示不满意、曾被诱导，工单重新办理。'),
      table(
        't-reopened',
        ['编号', '标题', '情况'],
        (r.reopened || []).map((x) => h('tr', h('td.ref', x.reference), h('td', x.title), h('td', x.detail || reopenReason(x.reason)))),
        '本月没有重新办理的工单',
      ),
      moreThan(r.reopened, r.reopened_total),
    ),
    h('footer.r-foot', '数据来源：呼应 · 街道三级呼叫响应系统。指标定义见系统文档 docs/metrics.md。'),
  );
  drawCharts(r);
}

async function show(month, street) {
  const box = $('#report');
  mount(box, h('p.empty', '加载中…'));
  if ([...$('#month').options].some((o) => o.value === month)) $('#month').value = month;
  try {
    const r = await client.get('/reports/monthly?' + query(month, street));
    current = { ...r, street };
    render(r);
    $('#report-ready').textContent = r.month;
    document.body.dataset.ready = r.month;
  } catch (e) {
    current = null;
    if (e.status === 401) return signInFirst();
    mount(box, h('div.empty', h('p', '月报加载失败：' + errorText(e)), h('button', { type: 'button', onclick: () => show(month, street) }, '重试')));
  }
}

function signInFirst() {
  mount(
    $('#report'),
    h('div.empty', h('p', '请先在数据看板登录（街道、社区工作人员或管理员），再打开月报。'), h('a.btn.primary', { href: '/dashboard/' }, '前往数据看板登录')),
  );
}

async function downloadXlsx(btn) {
  const { month, street } = params();
  btn.disabled = true;
  try {
    const res = await client.fetchRaw('/reports/monthly.xlsx?' + query(month, street));
    const url = URL.createObjectURL(await res.blob());
    const name = `${current?.unit_name || '街道'}月报_${month}.xlsx`;
    const a = h('a', { href: url, download: name, style: 'display:none' });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 30_000);
    toast('已下载 ' + name);
  } catch (e) {
    toast('下载失败：' + errorText(e), 'error');
  } finally {
    btn.disabled = false;
  }
}

/// The month picker: the last 24 months in words (and the one asked for, if older).
function fillMonths(chosen) {
  const [y, m] = todayBeijing().split('-').map(Number);
  const months = [];
  for (let i = 0; i < 24; i += 1) months.push(new Date(Date.UTC(y, m - 1 - i, 1)).toISOString().slice(0, 7));
  if (!months.includes(chosen)) months.push(chosen);
  mount($('#month'), months.map((v) => h('option', { value: v, selected: v === chosen }, monthWords(v))));
}

function go() {
  const month = $('#month').value;
  if (!MONTH_RE.test(month)) {
    toast('请选择月份', 'error');
    return;
  }
  const { street } = params();
  history.replaceState(null, '', '?' + query(month, street));
  show(month, street);
}

async function start() {
  $('#print').addEventListener('click', () => window.print());
  $('#download-xlsx').addEventListener('click', (e) => downloadXlsx(e.currentTarget));
  $('#show').addEventListener('click', go);
  $('#month').addEventListener('change', go);
  const { month, street } = params();
  fillMonths(month);
  if (document.readyState !== 'complete') {
    await new Promise((r) => window.addEventListener('load', r, { once: true }));
  }
  try {
    await loadLabels();
  } catch (e) {
    mount($('#report'), h('p.empty', errorText(e)));
    return;
  }
  if (!(await client.resume().catch(() => false))) return signInFirst();
  show(month, street);
}

// Charts follow the sheet's width on screen; printing uses the same width (see report.css).
window.addEventListener('resize', () => charts.forEach((c) => c.resize()));
start();
