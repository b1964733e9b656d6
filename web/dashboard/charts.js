// The ECharts side of the dashboard (Apache ECharts, vendored under /static/vendor/echarts/,
// global `echarts`): one instance per panel, colours for the page and for the dark wall, and the
// daily trend, category and flow charts. Tooltips are built as elements with h(), never as HTML.

import { $, h, toast } from '/static/common/ui.js';
import { label } from '/static/common/labels.js';
import { state } from './shared.js';

const charts = {};
let resizeObserver = null;

export function hasEcharts() {
  return typeof window.echarts !== 'undefined';
}

export function palette() {
  return state.wall
    ? { red: '#ff4d4f', green: '#52c41a', blue: '#4096ff', orange: '#fa8c16', gold: '#fadb14', muted: '#8c9bb5', text: '#e6edf7', line: '#2a3b5c' }
    : { red: '#c8161e', green: '#1a7f37', blue: '#2f6fde', orange: '#e37318', gold: '#b8860b', muted: '#646a73', text: '#1f2329', line: '#e5e6eb' };
}

export function narrow() {
  return window.innerWidth < 520;
}

export function fs() {
  return state.wall ? 18 : 13;
}

export function getChart(id) {
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
export function setOpt(chart, option) {
  chart.dispatchAction({ type: 'hideTip' });
  chart.setOption(option, true);
}

export function disposeCharts() {
  for (const id of Object.keys(charts)) {
    charts[id].dispatchAction({ type: 'hideTip' });
    charts[id].dispose();
    delete charts[id];
  }
}

export function base(extra) {
  const c = palette();
  return {
    backgroundColor: 'transparent',
    animationDuration: state.wall ? 600 : 300,
    textStyle: { fontSize: fs(), color: c.text },
    ...extra,
  };
}

export function emptyTitle(text = '暂无数据') {
  return {
    text,
    left: 'center',
    top: 'middle',
    textStyle: { fontSize: fs() + 2, color: palette().muted, fontWeight: 'normal' },
  };
}

/// A value axis of counts (whole numbers); `label` adds to its tick labels.
export function countAxis({ label: tick = {}, ...extra } = {}) {
  const c = palette();
  return {
    type: 'value',
    minInterval: 1,
    axisLabel: { fontSize: fs() - 1, color: c.muted, ...tick },
    splitLine: { lineStyle: { color: c.line } },
    ...extra,
  };
}

/// The names down the side of a horizontal bar chart, cut to `width` pixels.
export function rowAxis(names, width) {
  const c = palette();
  return {
    type: 'category',
    inverse: true,
    data: names,
    axisLabel: { fontSize: fs(), color: c.text, width, overflow: 'truncate', interval: 0 },
    axisLine: { lineStyle: { color: c.line } },
  };
}

/// A tooltip for one bar, built by `formatter(params)` as elements.
export function itemTooltip(formatter) {
  return { trigger: 'item', textStyle: { fontSize: fs() }, formatter };
}

/// The coloured dot ECharts puts before a series name.
function marker(color) {
  return h('span', {
    style: {
      display: 'inline-block',
      marginRight: '4px',
      borderRadius: '10px',
      width: '10px',
      height: '10px',
      backgroundColor: typeof color === 'string' ? color : '',
    },
  });
}

export function axisTooltip(params) {
  const list = Array.isArray(params) ? params : [params];
  if (!list.length) return '';
  return h(
    'div',
    h('div', String(list[0].axisValueLabel ?? list[0].name)),
    list.map((p) => h('div', marker(p.color), `${p.seriesName}：`, h('b', String(p.value)))),
  );
}

/// Horizontal bar charts grow with their rows on the normal page; the wall has fixed panels.
export function setHeight(id, n) {
  const el = document.getElementById(id);
  el.style.height = state.wall ? '' : Math.max(240, n * 34 + 56) + 'px';
  if (charts[id]) charts[id].resize();
}

/// Charts follow their panel's size (the wall and the page lay panels out differently).
export function followResizes() {
  if (typeof ResizeObserver === 'undefined') return;
  resizeObserver = new ResizeObserver((entries) => {
    for (const en of entries) charts[en.target.id]?.resize();
  });
}

/// Waits for the deferred ECharts script; without it the page shows the figures only.
export async function echartsReady() {
  if (hasEcharts()) return;
  if (document.readyState !== 'complete') {
    await new Promise((r) => window.addEventListener('load', r, { once: true }));
  }
  if (!hasEcharts()) toast('图表组件加载失败，仅显示数字指标', 'error');
}

export function renderTrend(rows) {
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
      yAxis: countAxis(),
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

export function renderCategories(rows) {
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
      xAxis: countAxis(),
      yAxis: rowAxis(
        shown.map((r) => r.name || r.code),
        state.wall ? 150 : narrow() ? 80 : 110,
      ),
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

export function renderFlows(f) {
  const c = palette();
  const unit = (kind) => label('org_kind', kind);
  const flow = (from, to, action) => `${unit(from)}→${unit(to)}\n${label('action', action)}`;
  const items = [
    { name: flow('compound', 'community', 'escalate'), value: f.up_compound_to_community, color: c.red },
    { name: flow('community', 'street', 'escalate'), value: f.up_community_to_street, color: c.orange },
    { name: flow('street', 'community', 'return'), value: f.down_street_to_community, color: c.blue },
    { name: flow('community', 'compound', 'return'), value: f.down_community_to_compound, color: c.green },
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
      tooltip: itemTooltip((p) => h('div', `${p.name.replace('\n', ' ')}：`, h('b', String(p.value)), ' 次')),
      grid: { left: 8, right: 8, top: 28, bottom: 8, containLabel: true },
      xAxis: {
        type: 'category',
        data: items.map((i) => i.name),
        axisLabel: { fontSize: fs() - 1, color: c.text, interval: 0 },
        axisLine: { lineStyle: { color: c.line } },
      },
      yAxis: countAxis(),
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

