// The figures: KPI tiles (each with its short definition, shown on tap) and the list of tickets
// overdue now. Definitions follow docs/metrics.md.

import { $, h, mount } from '/static/common/ui.js';
import { label } from '/static/common/labels.js';
import { fmtRate, fmtCount, fmtDur } from './shared.js';

const LEVELS = ['compound', 'community', 'street'];

/// What is open now: the words of the two active statuses.
const active = () => `${label('status', 'open')}或${label('status', 'acknowledged')}`;

/// Short definitions, shown as the tiles' title and on tap.
function definitions() {
  const openAt = (level) =>
    `${label('org_kind', level)}在办：此刻在${label('level', level)}${active()}的工单数，不受日期筛选影响。`;
  return {
    response_rate:
      '响应率：本期新建工单中，在所经每一级的受理时限内得到受理（应答）的占比。分母为至少有一级已可判定（已应答或时限已过）的工单。',
    resolution_rate:
      '解决率：已办结并关闭、未被居民异议重开、未超过办结时限的工单占比。分母为已关闭的工单，加上已确定未达标（重开或办结超时）的在办工单。',
    satisfaction_rate: '满意率（居民自评）：已评价工单中评 4–5 星的占比。自动关闭的工单没有评价，不计入。',
    callback_satisfaction_rate:
      '回访满意率：关闭后电话回访已接通的工单中，居民表示满意或基本满意的占比（按当时负责的单位汇总，与居民自评满意率对照）。',
    settled_in_compound_rate:
      '小事不出小区率：已关闭工单中，始终在小区层级办结、从未上报的占比（上报后被退回的也不算）。',
    total: '新建工单：所选日期内创建的工单数（本期工单）。',
    closed: '已关闭：本期新建工单中现已关闭的数量（居民确认或超时自动关闭）。',
    overdue: `当前超时：此刻仍${active()}、已超过当前层级时限（或在街道层级被标记超时）的工单数，不受日期筛选影响。`,
    open_compound: openAt('compound'),
    open_community: openAt('community'),
    open_street: openAt('street'),
    median_first_answer:
      '首次响应时长（中位数，自然时间）：全程为每件工单从创建到首次受理或办结；分级为在该级每次停留从到达到首次应答。',
    median_settle:
      '办结时长（中位数，自然时间）：全程为每件已关闭工单从创建到被接受的办结；分级为在该级每次停留从到达到办结。',
  };
}

/// The tiles in order. A tile named after a level (`level`) is named with the unit's word.
const KPIS = [
  { key: 'response_rate', name: '响应率', rate: 'response' },
  { key: 'resolution_rate', name: '解决率', rate: 'resolution' },
  { key: 'satisfaction_rate', name: '满意率', rate: 'satisfaction' },
  { key: 'callback_satisfaction_rate', name: '回访满意率', callback: true },
  { key: 'settled_in_compound_rate', name: '小事不出小区率', rate: 'settled_in_compound' },
  { key: 'total', name: '新建工单', count: (s) => s.tickets },
  { key: 'closed', name: '已关闭', count: (s) => s.by_status.closed },
  { key: 'overdue', name: '当前超时', count: (s) => s.overdue, alarm: true },
  ...LEVELS.map((l) => ({ key: `open_${l}`, level: l, count: (s) => s.open_now_by_level[l] })),
  { key: 'median_first_answer', name: '首次响应时长', median: 'median_first_answer_seconds' },
  { key: 'median_settle', name: '办结时长', median: 'median_settle_seconds' },
];

const tileName = (k) => k.name || `${label('org_kind', k.level)}在办`;

/// Builds the tiles once (the labels must be loaded).
export function buildKpis() {
  const box = $('#kpis');
  if (box.children.length) return;
  const def = definitions();
  mount(
    box,
    KPIS.map((k) => {
      const name = tileName(k);
      const tile = h(
        'div.kpi',
        {
          'data-kpi': k.key,
          title: def[k.key],
          tabindex: '0',
          role: 'group',
          'aria-label': name,
          // The wall keeps its two rows of six: 回访满意率 is on the page only.
          class: 'kpi' + (k.rate || k.callback ? ' kpi-rate' : '') + (k.median ? ' kpi-median' : '') + (k.callback ? ' no-wall' : ''),
        },
        h('div.label', name, h('span.info', { 'aria-hidden': 'true' }, 'ⓘ')),
        h('div.value', '—'),
        h('div.sub', ''),
        h('p.def', def[k.key]),
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

export function renderKpis(d) {
  const s = d.summary;
  const closedInRange = (d.trend || []).reduce((n, r) => n + r.closed, 0);
  for (const k of KPIS) {
    const tile = document.querySelector(`[data-kpi="${k.key}"]`);
    const value = tile.querySelector('.value');
    const sub = tile.querySelector('.sub');
    if (k.callback) {
      // The summary may carry it; otherwise the ledger (ledger.js) fills the tile.
      if (s[k.key] !== undefined) {
        const c = s.callbacks;
        value.textContent = fmtRate(s[k.key]);
        sub.textContent =
          c && c.reached
            ? `${fmtCount(c.satisfied + c.basically_satisfied)} / ${fmtCount(c.reached)} 件已接通回访`
            : '暂无已接通的回访';
        tile.classList.toggle('low', s[k.key] !== null && s[k.key] < 0.8);
      }
    } else if (k.rate) {
      const f = s.rate_counts[k.rate];
      value.textContent = fmtRate(s[k.key]);
      sub.textContent = f.denominator ? `${fmtCount(f.numerator)} / ${fmtCount(f.denominator)} 件` : '暂无可计工单';
      tile.classList.toggle('low', s[k.key] !== null && s[k.key] < 0.8);
    } else if (k.median) {
      const m = s[k.median];
      value.textContent = fmtDur(m.all);
      mount(
        sub,
        LEVELS.map((l) => h('span.lvl', { 'data-level': l }, h('b', label('org_kind', l)), ' ', fmtDur(m[l]))),
      );
    } else {
      const n = k.count(s);
      value.textContent = fmtCount(n);
      if (k.alarm) tile.classList.toggle('alarm', n > 0);
      if (k.key === 'total') {
        const b = s.by_status;
        sub.textContent = ['open', 'acknowledged', 'resolved']
          .map((st) => `${label('status', st)} ${b[st]}`)
          .join(' · ');
      } else if (k.key === 'closed') {
        sub.textContent = `区间内关闭 ${fmtCount(closedInRange)} 件（含往期）`;
      } else if (k.key === 'overdue') {
        sub.textContent = '此刻';
      } else {
        sub.textContent = `此刻${active()}`;
      }
    }
  }
}

export function renderOverdue(list) {
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
          `${t.community.name} · ${t.compound.name} · 在${label('level', t.level)}`,
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

/// Tickets created in the range by how they came in (every source, zeros included).
export function renderSources(rows) {
  const body = $('#sources-table tbody');
  if (!body) return;
  mount(
    body,
    ...rows.map((r) =>
      h(
        'tr',
        { 'data-source': r.source },
        h('th', { scope: 'row' }, label('source', r.source)),
        h('td', fmtCount(r.tickets)),
        h('td', fmtCount(r.closed)),
      ),
    ),
  );
}
