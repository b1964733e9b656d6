// 责任账本: per compound (or community) how each unit handled what reached it in the period —
// received, answered on time, called up, declined, urged, reopened, callback verdicts… — from
// GET /api/v1/stats/ledger. Every heading sorts; every number opens the tickets behind it
// (GET /stats/ledger/tickets), each linking to the staff page. CSV / XLSX like the ranking.
// Callback satisfaction is also shown beside the self-rated one among the KPI tiles.

import { $, h, mount, errorText } from '/static/common/ui.js';
import { label, hasLabel, reasonLabel } from '/static/common/labels.js';
import { client, state, statsQuery, fmtRate, fmtCount } from './shared.js';
import { download } from './exports.js';

const RATE_KEYS = ['self_rated_satisfaction_rate', 'callback_satisfaction_rate'];
const RATE_WORDS = { self_rated_satisfaction_rate: '自评满意率', callback_satisfaction_rate: '回访满意率' };
/// Columns drawn in red when not zero: what a unit should not have.
const BAD = new Set([
  'acknowledged_late',
  'resolved_late',
  'called_up_by_sweeper',
  'declines_overturned',
  'decline_reviews_unanswered',
  'extensions_unanswered',
  'callbacks_unsatisfied',
  'reopenings',
]);

const ledger = { unit: 'compound', sort: 'received', desc: true, data: null, seq: 0 };

export function columnWord(key) {
  if (hasLabel('ledger_column', key)) return label('ledger_column', key);
  return RATE_WORDS[key] || key;
}

function numericColumns(d) {
  const cols = (d && d.columns) || [];
  return cols.filter((c) => !RATE_KEYS.includes(c));
}

export async function loadLedger() {
  const seq = ++ledger.seq;
  const box = $('#ledger-table-wrap');
  if (!box) return;
  box.classList.add('loading');
  try {
    const d = await client.get('/stats/ledger?' + statsQuery({ unit: ledger.unit }));
    if (seq !== ledger.seq) return;
    ledger.data = d;
    if (!numericColumns(d).includes(ledger.sort) && !RATE_KEYS.includes(ledger.sort) && ledger.sort !== 'unit_name') {
      ledger.sort = 'received';
      ledger.desc = true;
    }
    renderLedger();
    showCallbackKpi(d);
    document.body.dataset.ledger = String(Number(document.body.dataset.ledger || 0) + 1);
  } catch (e) {
    if (seq !== ledger.seq) return;
    if (e.status === 401) return;
    mount(box, h('p.empty', '责任账本加载失败：' + errorText(e)));
  } finally {
    if (seq === ledger.seq) box.classList.remove('loading');
  }
}

/// 回访满意率 beside 满意率: from the summary when it gives it, else from the ledger's rows.
function showCallbackKpi(d) {
  const tile = document.querySelector('[data-kpi="callback_satisfaction_rate"]');
  if (!tile) return;
  const s = state.data && state.data.summary;
  if (s && s.callback_satisfaction_rate !== undefined) return; // figures.js showed it
  let good = 0;
  let all = 0;
  for (const r of d.rows || []) {
    good += (r.callbacks_satisfied || 0) + (r.callbacks_basically_satisfied || 0);
    all += (r.callbacks_satisfied || 0) + (r.callbacks_basically_satisfied || 0) + (r.callbacks_unsatisfied || 0);
  }
  const rate = all ? good / all : null;
  tile.querySelector('.value').textContent = fmtRate(rate);
  tile.querySelector('.sub').textContent = all ? `${fmtCount(good)} / ${fmtCount(all)} 件回访` : '暂无已接通的回访';
  tile.classList.toggle('low', rate !== null && rate < 0.8);
}

function sortRows(rows) {
  const key = ledger.sort;
  const dir = ledger.desc ? -1 : 1;
  return [...rows].sort((a, b) => {
    if (key === 'unit_name') return dir * String(a.unit_name).localeCompare(String(b.unit_name), 'zh-CN');
    const x = a[key];
    const y = b[key];
    // A unit without a rate goes last whichever way.
    if (x === null || x === undefined) return y === null || y === undefined ? 0 : 1;
    if (y === null || y === undefined) return -1;
    return dir * (x - y) || String(a.unit_name).localeCompare(String(b.unit_name), 'zh-CN');
  });
}

function reasonsTitle(r) {
  const reasons = r.called_up_reasons || {};
  const parts = Object.entries(reasons)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${reasonLabel(k) || k} ${n}`);
  return parts.length ? `上呼原因：${parts.join('，')}` : null;
}

function renderLedger() {
  const d = ledger.data;
  const box = $('#ledger-table-wrap');
  if (!d || !box) return;
  const cols = numericColumns(d);
  const unitWord = label('org_kind', d.unit || ledger.unit);
  $('#ledger-title').textContent = `责任账本 · 按${unitWord}`;
  $('#ledger-range').textContent = `${state.from} 至 ${state.to} · 按当时负责的单位计 · 点击表头排序，点击数字查看工单`;
  if (!d.rows || !d.rows.length) {
    mount(box, h('p.empty', `暂无${unitWord}`));
    return;
  }
  const heading = (key, text, cls = '') =>
    h(
      'th',
      {
        scope: 'col',
        class: cls,
        'aria-sort': ledger.sort === key ? (ledger.desc ? 'descending' : 'ascending') : 'none',
      },
      h(
        'button.sort',
        {
          type: 'button',
          'data-sort': key,
          title: `按${text}排序`,
          onclick: () => {
            if (ledger.sort === key) ledger.desc = !ledger.desc;
            else {
              ledger.sort = key;
              ledger.desc = key !== 'unit_name';
            }
            renderLedger();
          },
        },
        text,
        h('span.arrow', { 'aria-hidden': 'true' }, ledger.sort === key ? (ledger.desc ? '▼' : '▲') : ''),
      ),
    );
  const head = h(
    'thead',
    h(
      'tr',
      heading('unit_name', unitWord, 'c-unit'),
      cols.map((c) => heading(c, columnWord(c), BAD.has(c) ? 'bad-col' : '')),
      RATE_KEYS.map((k) => heading(k, columnWord(k), 'rate-col')),
    ),
  );
  const cell = (r, c) => {
    const n = r[c] || 0;
    if (!n) return h('td.zero', '0');
    return h(
      'td',
      { class: BAD.has(c) ? 'bad' : '' },
      h(
        'button.cell-link',
        {
          type: 'button',
          'data-unit-id': String(r.unit_id),
          'data-column': c,
          title: c === 'called_up' ? reasonsTitle(r) || '查看工单' : '查看工单',
          onclick: () => openTickets(r, c),
        },
        fmtCount(n),
      ),
    );
  };
  const rows = sortRows(d.rows).map((r) =>
    h(
      'tr',
      { 'data-unit-id': String(r.unit_id) },
      h('th.c-unit', { scope: 'row' }, r.unit_name, r.parent_name ? h('span.parent', r.parent_name) : null),
      cols.map((c) => cell(r, c)),
      RATE_KEYS.map((k) => h('td.rate', { class: 'rate' + (r[k] !== null && r[k] !== undefined && r[k] < 0.8 ? ' low' : '') }, fmtRate(r[k]))),
    ),
  );
  const totals = h(
    'tr.totals',
    h('th.c-unit', { scope: 'row' }, '合计'),
    cols.map((c) => h('td', fmtCount(d.rows.reduce((n, r) => n + (r[c] || 0), 0)))),
    RATE_KEYS.map(() => h('td', '')),
  );
  mount(box, h('table#ledger-table', head, h('tbody', rows), h('tfoot', totals)));
}

async function openTickets(r, column) {
  const dlg = $('#ledger-dialog');
  $('#ledger-dialog-title').textContent = `${r.unit_name} · ${columnWord(column)}`;
  const list = $('#ledger-tickets');
  const note = $('#ledger-dialog-note');
  note.textContent = `${state.from} 至 ${state.to} · 加载中…`;
  mount(list, h('li.empty', '加载中…'));
  if (!dlg.open) dlg.showModal();
  try {
    const q = statsQuery({ unit_id: String(r.unit_id), column });
    const res = await client.get('/stats/ledger/tickets?' + q);
    const items = res.items || [];
    const total = res.total ?? items.length;
    note.textContent =
      `${state.from} 至 ${state.to} · 共 ${total} 件` + (total > items.length ? `，显示前 ${items.length} 件` : '') + ' · 在工作台中打开';
    if (!items.length) {
      mount(list, h('li.empty', '没有工单'));
      return;
    }
    mount(
      list,
      items.map((t) =>
        h(
          'li',
          h(
            'a.lt-link',
            { href: `/staff/#/t/${t.id}`, target: '_blank', rel: 'noopener', 'data-id': String(t.id) },
            h('span.lt-ref', t.reference),
            h('span.lt-title', t.title),
            h('span.lt-state', [label('status', t.status), t.level ? label('level', t.level) : ''].filter(Boolean).join(' · ')),
          ),
        ),
      ),
    );
  } catch (e) {
    mount(list, h('li.empty', errorText(e)));
    note.textContent = '';
  }
}

function exportLedger(ext, btn) {
  const unitWord = label('org_kind', ledger.unit);
  const name = `责任账本_${unitWord}_${state.from}至${state.to}.${ext}`;
  download(btn, `/stats/ledger.${ext}?${statsQuery({ unit: ledger.unit })}`, name);
}

function setUnit(unit) {
  if (unit === ledger.unit) return;
  ledger.unit = unit;
  for (const b of document.querySelectorAll('[data-lunit]')) {
    b.setAttribute('aria-pressed', String(b.dataset.lunit === unit));
  }
  loadLedger();
}

/// The unit switch in the server's words (once the labels are loaded).
export function labelLedger() {
  for (const b of document.querySelectorAll('[data-lunit]')) b.textContent = label('org_kind', b.dataset.lunit);
}

export function wireLedger() {
  for (const b of document.querySelectorAll('[data-lunit]')) {
    b.addEventListener('click', () => setUnit(b.dataset.lunit));
  }
  $('#export-ledger-csv').addEventListener('click', (e) => exportLedger('csv', e.currentTarget));
  $('#export-ledger-xlsx').addEventListener('click', (e) => exportLedger('xlsx', e.currentTarget));
  $('#ledger-dialog-close').addEventListener('click', () => $('#ledger-dialog').close());
  $('#ledger-dialog').addEventListener('click', (e) => {
    // A click on the backdrop closes it.
    if (e.target === e.currentTarget) e.currentTarget.close();
  });
}
