// The queue: five tabs with counts (seven for the community and the street: 督办 over the levels
// below and 待我决定), filters, search, a table (cards on a phone), "load more".

import { h, mount, toast, errorText, fmtShort, fmtTime } from '/static/common/ui.js';
import { label, options } from '/static/common/labels.js';
import {
  client,
  state,
  qs,
  beijingDayStart,
  countdownEl,
  urgencyBadge,
  sourceBadge,
  staffStatusText,
} from './shared.js';
import { openActionDialog } from './actions.js';

const PAGE = 50;

/// A tab named after a status takes the status's word.
const BASE_TABS = [
  { id: 'open', status: 'open', hint: '本级待受理的工单' },
  { id: 'in_progress', status: 'acknowledged', hint: '本级已受理、尚未办结的工单' },
  { id: 'due_soon', label: '即将超时', hint: '时限只剩不到四分之一（最多一个工作小时，按工作时间计）、尚未超时的本级工单' },
  { id: 'overdue', label: '已超时', hint: '本级已超过时限的工单' },
  { id: 'went_up', label: '已上报', hint: '从本单位上报、现由上级负责的工单' },
];
/// The community and the street watch the levels below them and decide what those ask for.
const SUPERVISION_TABS = [
  { id: 'supervision', label: '督办', hint: '下级负责、尚未办结或不予受理复核中的工单，可催办或提级领办' },
  { id: 'decisions', label: '待我决定', hint: '等待本级批准的延期申请和不予受理复核' },
];

/// The sub-filters of 督办.
const SUPERVISION_SUBS = [
  { id: 'all', label: '全部' },
  { id: 'due_soon', label: '即将超时' },
  { id: 'overdue', label: '已超时' },
  { id: 'disputed', label: '有异议' },
  { id: 'review', label: '待复核' },
];
const SUB_IDS = SUPERVISION_SUBS.map((x) => x.id);

/// Actions a row of 督办 / 待我决定 offers without opening the ticket (when allowed).
const ROW_ACTIONS = {
  supervision: ['urge', 'take_over'],
  decisions: ['approve_extension', 'reject_extension', 'uphold_decline', 'overturn_decline', 'return'],
};

function supervises() {
  return state.level === 'community' || state.level === 'street';
}

export function queueTabs() {
  return supervises() ? [...BASE_TABS, ...SUPERVISION_TABS] : BASE_TABS;
}

function subParams(sub) {
  switch (sub) {
    case 'due_soon':
      return { due_soon: 'true' };
    case 'overdue':
      return { overdue: 'true' };
    case 'disputed':
      return { disputed: 'true' };
    case 'review':
      return { status: 'decline_review' };
    default:
      return {};
  }
}

/// The API filter of a tab. Tabs other than 已上报, 督办 and 待我决定 show what is accountable at
/// the caller's level.
export function tabParams(tab, sub = 'all') {
  const level = state.level || undefined;
  switch (tab) {
    case 'supervision':
      return { view: 'supervision', ...subParams(sub) };
    case 'decisions':
      return { view: 'decisions' };
    case 'in_progress':
      return { status: 'acknowledged', level };
    case 'due_soon':
      return { status: 'open,acknowledged', level, due_soon: 'true' };
    case 'overdue':
      return { status: 'open,acknowledged', level, overdue: 'true' };
    case 'went_up':
      return { went_up: 'true', sort: 'updated' };
    default:
      return { status: 'open', level };
  }
}

const FILTER_KEYS = ['q', 'category', 'urgency', 'source', 'community_id', 'compound_id', 'from', 'to'];

/// Calls entered by staff on a resident's behalf, as one choice of the source filter.
const ENTERED_SOURCES = ['phone', 'desk', 'visit', 'hotline'];

function filterParams(f) {
  return {
    q: f.q,
    category: f.category,
    urgency: f.urgency,
    source: f.source,
    community_id: f.community_id,
    compound_id: f.compound_id,
    created_from: f.from ? beijingDayStart(f.from) : undefined,
    created_to: f.to ? beijingDayStart(f.to, 1) : undefined,
  };
}

export function parseQueueRoute(tab, search) {
  const p = new URLSearchParams(search || '');
  const filters = {};
  for (const k of FILTER_KEYS) if (p.get(k)) filters[k] = p.get(k);
  const ids = queueTabs().map((t) => t.id);
  const sub = SUB_IDS.includes(p.get('sub')) ? p.get('sub') : 'all';
  return { tab: ids.includes(tab) ? tab : 'open', filters, sub };
}

export function queueHash(tab = q.tab, filters = q.filters, sub = tab === q.tab ? q.sub : 'all') {
  const p = new URLSearchParams();
  if (tab === 'supervision' && sub && sub !== 'all') p.set('sub', sub);
  for (const k of FILTER_KEYS) if (filters[k]) p.set(k, filters[k]);
  const s = p.toString();
  return `#/q/${tab}${s ? '?' + s : ''}`;
}

let onRefresh = null;
/// What #refresh does besides reloading the list (the app also looks for new arrivals).
export function setOnRefresh(fn) {
  onRefresh = fn;
}

const q = {
  tab: 'open',
  sub: 'all',
  filters: {},
  items: [],
  next: null,
  total: 0,
  fetchedAt: 0,
  seq: 0,
  countSeq: 0,
  filtersOpen: null,
};

/// Forget the counts and list of the previous user (sign-out).
export function resetQueue() {
  q.counts = undefined;
  q.items = [];
  q.next = null;
  q.filtersOpen = null;
}

/// The hash of the queue as last shown (for #back).
export function lastQueueHash() {
  return queueHash();
}

export function showQueue(main, route) {
  q.tab = route.tab;
  q.sub = route.sub || 'all';
  q.filters = route.filters;
  if (q.filtersOpen === null) {
    q.filtersOpen = window.matchMedia('(min-width: 721px)').matches;
  }
  const activeFilters = FILTER_KEYS.filter((k) => k !== 'q' && q.filters[k]).length;
  if (activeFilters) q.filtersOpen = true;

  const tabs = h(
    'div.tabs',
    { role: 'tablist', 'aria-label': '工单队列' },
    queueTabs().map((t) =>
      h(
        'button.tab',
        {
          type: 'button',
          role: 'tab',
          'data-tab': t.id,
          title: t.hint,
          'aria-selected': t.id === q.tab ? 'true' : 'false',
          class: 'tab' + (t.id === q.tab ? ' active' : ''),
          onclick: () => {
            if (t.id !== q.tab) location.hash = queueHash(t.id, q.filters);
          },
        },
        h('span.tab-label', t.label || label('status', t.status)),
        h('span.count', { 'aria-label': '件数' }, q.counts?.[t.id] ?? '…'),
      ),
    ),
  );

  let searchTimer;
  const search = h('input#search', {
    type: 'search',
    placeholder: '搜索编号、标题或描述',
    'aria-label': '搜索工单',
    value: q.filters.q || '',
    enterkeyhint: 'search',
    oninput: () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => setFilter('q', search.value.trim()), 400);
    },
    onkeydown: (e) => {
      if (e.key === 'Enter') {
        clearTimeout(searchTimer);
        setFilter('q', search.value.trim());
      }
    },
  });

  const filterToggle = h(
    'button#toggle-filters',
    {
      type: 'button',
      'aria-expanded': String(q.filtersOpen),
      'aria-controls': 'filters',
      onclick: () => {
        q.filtersOpen = !q.filtersOpen;
        filterToggle.setAttribute('aria-expanded', String(q.filtersOpen));
        filters.classList.toggle('hidden', !q.filtersOpen);
      },
    },
    '筛选',
    activeFilters ? h('span.badge.red', String(activeFilters)) : null,
  );

  const refresh = h(
    'button#refresh',
    { type: 'button', title: '刷新', onclick: () => (onRefresh ? onRefresh() : refreshQueue({ manual: true })) },
    h('span', { 'aria-hidden': 'true' }, '⟳'),
    h('span.btn-label', '刷新'),
  );

  const filters = buildFilters();
  filters.classList.toggle('hidden', !q.filtersOpen);

  const hint = queueTabs().find((t) => t.id === q.tab)?.hint || '';
  const subs =
    q.tab === 'supervision'
      ? h(
          'div.subtabs',
          { role: 'group', 'aria-label': '督办筛选' },
          SUPERVISION_SUBS.map((x) =>
            h(
              'button.subtab',
              {
                type: 'button',
                'data-sub': x.id,
                'aria-pressed': String(x.id === q.sub),
                class: 'subtab' + (x.id === q.sub ? ' active' : ''),
                onclick: () => {
                  if (x.id !== q.sub) location.hash = queueHash('supervision', q.filters, x.id);
                },
              },
              x.label,
              h('span.count', q.subCounts?.[x.id] ?? '…'),
            ),
          ),
        )
      : null;
  mount(
    main,
    h(
      'section.queue-view',
      h('div.queue-head', tabs, h('div.toolbar', h('div.search-wrap', search), filterToggle, refresh)),
      subs,
      filters,
      h('div.queue-meta', h('span#queue-total', ''), h('span.hint', hint), h('span#queue-updated.hint', '')),
      h('div#queue', { 'aria-live': 'polite' }, h('p.empty', '加载中…')),
      h('div.more-wrap', h('button#load-more.hidden', { type: 'button', onclick: loadMore }, '加载更多')),
    ),
  );
  q.items = [];
  q.next = null;
  loadList();
  loadCounts();
}

function setFilter(key, value) {
  if ((q.filters[key] || '') === (value || '')) return;
  const f = { ...q.filters };
  if (value) f[key] = value;
  else delete f[key];
  if (key === 'community_id') {
    // A compound of another community would give an empty list.
    const c = state.compounds.find((x) => String(x.id) === f.compound_id);
    if (c && value && String(c.communityId) !== value) delete f.compound_id;
  }
  q.filters = f;
  // Keep the place on reload without re-rendering (the search box keeps its focus).
  history.replaceState(null, '', queueHash());
  if (key === 'community_id') {
    const old = document.getElementById('filters');
    if (old) {
      const fresh = buildFilters();
      old.replaceWith(fresh);
    }
  }
  const badge = document.querySelector('#toggle-filters .badge');
  const n = FILTER_KEYS.filter((k) => k !== 'q' && q.filters[k]).length;
  if (badge) badge.textContent = String(n);
  else if (n) document.getElementById('toggle-filters')?.append(h('span.badge.red', String(n)));
  if (badge && !n) badge.remove();
  q.items = [];
  q.next = null;
  loadList();
  loadCounts();
}

function select(id, caption, choices, value, key) {
  return h(
    'div.filter',
    h('label', { for: id }, caption),
    h(
      'select',
      { id, onchange: (e) => setFilter(key, e.target.value) },
      choices.map(([v, text]) => h('option', { value: v, selected: String(v) === String(value || '') }, text)),
    ),
  );
}

function buildFilters() {
  const f = q.filters;
  const parts = [
    select(
      'f-category',
      '类别',
      [['', '全部类别'], ...state.categories.map((c) => [String(c.id), c.name])],
      f.category,
      'category',
    ),
    select(
      'f-urgency',
      '紧急程度',
      [['', '全部'], ...options('urgency', ['normal', 'urgent'])],
      f.urgency,
      'urgency',
    ),
    select(
      'f-source',
      '来源',
      [
        ['', '全部来源'],
        [ENTERED_SOURCES.join(','), '代为登记（全部）'],
        ...options('source', ['app', ...ENTERED_SOURCES, 'own_finding']),
      ],
      f.source,
      'source',
    ),
  ];
  if (state.communities.length > 1) {
    parts.push(
      select(
        'f-community',
        '社区',
        [['', '全部社区'], ...state.communities.map((c) => [String(c.id), c.name])],
        f.community_id,
        'community_id',
      ),
    );
  }
  const compounds = f.community_id
    ? state.compounds.filter((c) => String(c.communityId) === f.community_id)
    : state.compounds;
  if (state.compounds.length > 1) {
    parts.push(
      select(
        'f-compound',
        '小区',
        [['', '全部小区'], ...compounds.map((c) => [String(c.id), c.name])],
        f.compound_id,
        'compound_id',
      ),
    );
  }
  const date = (id, caption, key) =>
    h(
      'div.filter',
      h('label', { for: id }, caption),
      h('input', { id, type: 'date', value: f[key] || '', onchange: (e) => setFilter(key, e.target.value) }),
    );
  parts.push(date('f-from', '创建日期 从', 'from'), date('f-to', '至', 'to'));
  parts.push(
    h(
      'div.filter.filter-clear',
      h(
        'button#f-clear',
        {
          type: 'button',
          onclick: () => {
            const keep = q.filters.q ? { q: q.filters.q } : {};
            location.hash = queueHash(q.tab, keep);
          },
        },
        '清除筛选',
      ),
    ),
  );
  return h('div#filters.filters', { role: 'group', 'aria-label': '筛选条件' }, parts);
}

async function loadCounts() {
  const seq = ++q.countSeq;
  const fp = filterParams(q.filters);
  const tabs = queueTabs();
  const subs = q.tab === 'supervision' ? SUPERVISION_SUBS : [];
  const count = (params) => client.get('/tickets' + qs({ ...params, ...fp, limit: 1 }));
  const results = await Promise.allSettled([
    ...tabs.map((t) => count(tabParams(t.id))),
    ...subs.map((x) => count(tabParams('supervision', x.id))),
  ]);
  if (seq !== q.countSeq) return;
  q.counts = q.counts || {};
  q.subCounts = q.subCounts || {};
  const show = (el, r, alert) => {
    if (!el) return;
    el.textContent = r.status === 'fulfilled' ? String(r.value.total) : '?';
    el.classList.toggle('zero', r.status === 'fulfilled' && r.value.total === 0);
    el.classList.toggle('alert', alert && r.status === 'fulfilled' && r.value.total > 0);
  };
  tabs.forEach((t, i) => {
    const r = results[i];
    if (r.status === 'fulfilled') q.counts[t.id] = r.value.total;
    const el = document.querySelector(`button.tab[data-tab="${t.id}"] .count`);
    show(el, r, t.id === 'overdue' || t.id === 'decisions');
  });
  subs.forEach((x, i) => {
    const r = results[tabs.length + i];
    if (r.status === 'fulfilled') q.subCounts[x.id] = r.value.total;
    show(document.querySelector(`button.subtab[data-sub="${x.id}"] .count`), r, x.id === 'overdue');
  });
}

async function loadList({ limit = PAGE, silent = false } = {}) {
  const seq = ++q.seq;
  const box = document.getElementById('queue');
  try {
    const page = await client.get(
      '/tickets' +
        qs({ ...tabParams(q.tab, q.sub), ...filterParams(q.filters), limit: Math.min(100, limit) }),
    );
    if (seq !== q.seq || !document.getElementById('queue')) return;
    q.fetchedAt = Date.now();
    q.items = page.items;
    q.next = page.next_cursor || null;
    q.total = page.total;
    renderList();
  } catch (e) {
    if (seq !== q.seq || !box) return;
    if (silent && q.items.length) {
      toast(errorText(e), 'error');
      return;
    }
    mount(
      box,
      h(
        'div.empty',
        h('p', errorText(e)),
        h('button', { type: 'button', onclick: () => loadList() }, '重试'),
      ),
    );
  }
}

async function loadMore() {
  if (!q.next) return;
  const btn = document.getElementById('load-more');
  btn.disabled = true;
  const seq = q.seq;
  try {
    const page = await client.get(
      '/tickets' +
        qs({ ...tabParams(q.tab, q.sub), ...filterParams(q.filters), limit: PAGE, cursor: q.next }),
    );
    if (seq !== q.seq) return;
    const now = Date.now();
    const known = new Set(q.items.map((t) => t.id));
    const added = page.items.filter((t) => !known.has(t.id));
    // Rows keep the deadline their own answer gave them.
    for (const t of added) t._fetchedAt = now;
    q.items = q.items.concat(added);
    q.next = page.next_cursor || null;
    q.total = page.total;
    const tbody = document.querySelector('#queue tbody');
    if (tbody) tbody.append(...added.map(row));
    updateMeta();
  } catch (e) {
    toast(errorText(e), 'error');
  } finally {
    btn.disabled = false;
  }
}

function updateMeta() {
  const total = document.getElementById('queue-total');
  if (total) total.textContent = `共 ${q.total} 件`;
  const upd = document.getElementById('queue-updated');
  if (upd) upd.textContent = `更新于 ${fmtShort(new Date().toISOString()).split(' ').pop()}`;
  const more = document.getElementById('load-more');
  if (more) {
    more.classList.toggle('hidden', !q.next);
    more.textContent = `加载更多（已显示 ${q.items.length} / ${q.total}）`;
  }
  const count =
    q.tab === 'supervision'
      ? document.querySelector(`button.subtab[data-sub="${q.sub}"] .count`)
      : document.querySelector(`button.tab[data-tab="${q.tab}"] .count`);
  if (count) count.textContent = String(q.total);
}

function renderList() {
  const box = document.getElementById('queue');
  if (!box) return;
  for (const t of q.items) t._fetchedAt = q.fetchedAt;
  if (!q.items.length) {
    const anyFilter = FILTER_KEYS.some((k) => q.filters[k]);
    mount(box, h('p.empty', anyFilter ? '没有符合筛选条件的工单' : '暂无工单'));
  } else if (box.querySelector('table.qtable tbody')) {
    // A poll: keep the row elements of unchanged tickets (a click in flight still lands, the
    // countdown keeps ticking) and only build rows for new or changed ones.
    const tbody = box.querySelector('table.qtable tbody');
    const old = new Map([...tbody.children].map((tr) => [tr.dataset.id, tr]));
    const rows = q.items.map((t) => {
      const tr = old.get(String(t.id));
      const same =
        tr &&
        tr.dataset.version === String(t.version) &&
        tr.dataset.allowed === rowSignature(t) &&
        tr.dataset.overdue === String(!!t.overdue) &&
        tr.classList.contains('fresh') === state.fresh.has(t.id);
      return same ? tr : row(t);
    });
    tbody.replaceChildren(...rows);
  } else {
    const showCommunity = state.communities.length > 1;
    mount(
      box,
      h(
        'table.qtable',
        h(
          'thead',
          h(
            'tr',
            h('th', { scope: 'col' }, '编号'),
            h('th', { scope: 'col' }, '标题 / 状态'),
            h('th', { scope: 'col' }, showCommunity ? '社区 / 小区' : '小区'),
            h('th', { scope: 'col' }, '类别'),
            h('th', { scope: 'col' }, '时限'),
          ),
        ),
        h('tbody', q.items.map(row)),
      ),
    );
  }
  updateMeta();
}

/// What a row shows besides the ticket's version: an urge allowed again after the hour passed
/// does not change the ticket.
function rowSignature(t) {
  return `${q.tab}|${(t.allowed_actions || []).join(',')}|${t.urge_count || 0}`;
}

function open(id) {
  state.fresh.delete(id);
  location.hash = `#/t/${id}`;
}

function row(t) {
  const showCommunity = state.communities.length > 1;
  const fresh = state.fresh.has(t.id);
  return h(
    'tr.ticket-row',
    {
      'data-id': String(t.id),
      'data-version': String(t.version),
      'data-overdue': String(!!t.overdue),
      'data-allowed': rowSignature(t),
      class: 'ticket-row' + (fresh ? ' fresh' : '') + (t.overdue ? ' is-overdue' : ''),
      tabindex: '0',
      onclick: (e) => {
        if (e.target.closest('button')) return;
        if (e.target.closest('a')) state.fresh.delete(t.id);
        else open(t.id);
      },
      onkeydown: (e) => {
        if (e.key === 'Enter' && !e.target.closest('a, button')) open(t.id);
      },
    },
    h(
      'td.c-ref',
      h('span.ref', t.reference),
      ' ',
      urgencyBadge(t),
      sourceBadge(t),
      fresh ? h('span.badge.new', '新') : null,
    ),
    h(
      'td.c-title',
      h('a.title', { href: `#/t/${t.id}` }, t.title),
      h(
        'div.sub',
        h('span.status', staffStatusText(t)),
        t.assignee ? h('span', ` · 指派 ${t.assignee.name}`) : null,
        t.assigned_handler ? h('span', ` · 交办 ${t.assigned_handler}`) : null,
        t.attachment_count ? h('span', ` · 照片 ${t.attachment_count}`) : null,
        t.urge_count ? h('span', ` · 已催办 ${t.urge_count} 次`) : null,
      ),
      decisionLine(t),
      rowActions(t),
    ),
    h(
      'td.c-compound',
      showCommunity ? h('span.community', t.community.name + ' · ') : null,
      t.compound.name,
    ),
    h('td.c-category', t.category.name),
    h('td.c-due', countdownEl(t, t._fetchedAt || q.fetchedAt)),
  );
}

/// 待我决定: what is asked and until when.
function decisionLine(t) {
  if (q.tab !== 'decisions' && q.tab !== 'supervision') return null;
  const until = t.decide_due_at ? ` · 须于 ${fmtShort(t.decide_due_at)} 前决定` : '';
  if (t.extension) {
    return h(
      'div.sub.decision',
      h('strong', '延期申请'),
      ` 延至 ${fmtTime(t.extension.requested_due_at)}${until}`,
    );
  }
  if (t.status === 'decline_review') {
    return h('div.sub.decision', h('strong', label('status', 'decline_review')), until);
  }
  return null;
}

/// The buttons of a 督办 / 待我决定 row: the allowed ones of the tab's actions.
function rowActions(t) {
  const wanted = ROW_ACTIONS[q.tab];
  if (!wanted) return null;
  const allowed = t.allowed_actions || [];
  const list = wanted.filter(
    (a) => allowed.includes(a) && (a !== 'return' || t.status === 'decline_review'),
  );
  if (!list.length) return null;
  return h(
    'div.row-actions',
    list.map((a) =>
      h(
        'button.row-action',
        {
          type: 'button',
          'data-action': a,
          class: 'row-action' + (a === 'approve_extension' || a === 'urge' ? ' primary' : ''),
          onclick: (e) => {
            e.stopPropagation();
            openActionDialog(a, t, []);
          },
        },
        label('action', a),
      ),
    ),
  );
}

/// Called by the poller and #refresh: counts and the first pages again, without a blank.
export async function refreshQueue({ manual = false, quiet = false } = {}) {
  if (!document.getElementById('queue')) return;
  const btn = document.getElementById('refresh');
  if (manual && btn) btn.disabled = true;
  try {
    await Promise.all([loadList({ limit: Math.max(PAGE, q.items.length), silent: true }), loadCounts()]);
  } finally {
    if (btn) btn.disabled = false;
  }
  if (manual && !quiet) toast('已刷新');
}

/// Re-marks rows of tickets that just arrived (the poller found them).
export function markFresh() {
  for (const tr of document.querySelectorAll('#queue .ticket-row')) {
    const id = Number(tr.dataset.id);
    if (state.fresh.has(id) && !tr.classList.contains('fresh')) {
      tr.classList.add('fresh');
      tr.querySelector('.c-ref')?.append(h('span.badge.new', '新'));
    }
  }
}
