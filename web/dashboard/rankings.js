// The ranking panel: communities or compounds ranked by one measure, as a bar chart and as a
// table (排名明细表) with every measure.

import { $, h, mount } from '/static/common/ui.js';
import { label } from '/static/common/labels.js';
import { state, SORT_ZH, RATE_SORTS, fmtRate, fmtCount, fmtDur } from './shared.js';
import { getChart, setOpt, base, palette, fs, narrow, emptyTitle, setHeight, countAxis, rowAxis, itemTooltip } from './charts.js';

function rankValue(r, sort) {
  if (RATE_SORTS.includes(sort)) return r[sort] === null ? null : Math.round(r[sort] * 1000) / 10;
  return r[sort];
}

export function renderRanking(rows, unit, sort) {
  $('#ranking-title').textContent = `${label('org_kind', unit)}排名 · ${SORT_ZH[sort]}`;
  renderRankingTable(rows, unit);
  const chart = getChart('chart-ranking');
  if (!chart) return;
  const c = palette();
  if (!rows.length) {
    setOpt(chart, base({ title: emptyTitle('暂无' + label('org_kind', unit)) }));
    return;
  }
  const isRate = RATE_SORTS.includes(sort);
  const shown = state.wall ? rows.slice(0, 8) : rows;
  setHeight('chart-ranking', shown.length);
  const color = sort === 'overdue' ? c.red : sort === 'tickets' ? c.blue : c.gold;
  setOpt(
    chart,
    base({
      tooltip: itemTooltip((p) => {
        const r = shown[p.dataIndex];
        return h(
          'div',
          h('b', `${r.rank}. ${r.name}`),
          h('div', `工单 ${r.tickets} 件 · 当前超时 ${r.overdue}`),
          h('div', `响应率 ${fmtRate(r.response_rate)} · 解决率 ${fmtRate(r.resolution_rate)}`),
          h('div', `满意率 ${fmtRate(r.satisfaction_rate)} · 小事不出小区 ${fmtRate(r.settled_in_compound_rate)}`),
          h('div', `首次响应 ${fmtDur(r.median_first_answer_seconds)} · 办结 ${fmtDur(r.median_settle_seconds)}`),
        );
      }),
      grid: { left: 8, right: 64, top: 8, bottom: 8, containLabel: true },
      xAxis: countAxis({
        max: isRate ? 100 : null,
        label: { hideOverlap: true, formatter: isRate ? '{value}%' : '{value}' },
      }),
      yAxis: rowAxis(
        shown.map((r) => `${r.rank}. ${r.name}`),
        state.wall ? 180 : narrow() ? 100 : 130,
      ),
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
      ['名次', label('org_kind', unit), '工单', '响应率', '解决率', '满意率', '小事不出小区率', '当前超时', '首次响应', '办结'].map(
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
