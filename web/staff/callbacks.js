// 回访: the callback queue of the staff who call residents back after a ticket closed
// (GET /api/v1/callbacks), with counts, due dates, reason and flag badges, the resident's phone
// to dial, the attempts so far, and a form per callback to record one (POST /api/v1/callbacks/{id}).
//   #/cb/<tab>   tab: pending | flagged | done | unreachable | all

import { h, mount, toast, errorText, fmtTime, todayBeijing } from '/static/common/ui.js';
import { label, options } from '/static/common/labels.js';
import { client, qs } from './shared.js';
import { lastQueueHash } from './queue.js';

const PAGE = 50;
const MAX_ATTEMPTS = 3;

const TABS = [
  { id: 'pending', count: 'pending', params: { state: 'pending' }, hint: '尚未回访或未接通、仍需再拨的回访' },
  {
    id: 'flagged',
    count: 'flagged',
    params: { state: 'pending', flagged: 'true' },
    hint: '疑似诱导撤单或诱导打分的工单：撤单距工作人员联系不足 24 小时，或办结后 10 分钟内给了 5 星',
  },
  { id: 'done', count: 'done', params: { state: 'done' }, hint: '已接通并记录了居民意见的回访' },
  { id: 'unreachable', count: 'unreachable', params: { state: 'unreachable' }, hint: `拨打 ${MAX_ATTEMPTS} 次均未接通的回访` },
  { id: 'all', count: null, params: { state: 'all' }, hint: '全部回访' },
];
const TAB_IDS = TABS.map((t) => t.id);

/// Words of a tab: the flagged one is named by the flag, the others by the state.
function tabLabel(t) {
  if (t.id === 'flagged') return '疑似诱导';
  if (t.id === 'all') return '全部';
  if (t.id === 'pending') return '待回访';
  return label('callback_state', t.id);
}

const cb = { tab: 'pending', items: [], next: null, counts: null, seq: 0, open: new Set() };
/// What was entered in a form not yet saved, by callback id: the list is drawn again on every
/// refresh (and the caller may be on the phone meanwhile), the entries stay.
const drafts = new Map();

/// Whether this user does callbacks (the queue answered 200); null before the first look.
let available = null;

/// Looks whether GET /callbacks answers for this user; shows the 回访 button with the count of
/// pending callbacks. Returns whether the user does callbacks.
export async function probeCallbacks() {
  const btn = document.getElementById('nav-callbacks');
  try {
    const page = await client.get('/callbacks' + qs({ state: 'pending', limit: 1 }));
    available = true;
    cb.counts = page.counts || cb.counts;
    setBadge(page.counts);
  } catch (e) {
    // 403 / 404: not a caller (or callbacks not built on this server).
    if (e.status === 403 || e.status === 404) available = false;
  }
  btn?.classList.toggle('hidden', !available);
  return !!available;
}

export function resetCallbacks() {
  available = null;
  cb.items = [];
  cb.next = null;
  cb.counts = null;
  cb.open.clear();
  drafts.clear();
  document.getElementById('nav-callbacks')?.classList.add('hidden');
}

function setBadge(counts) {
  const badge = document.getElementById('callbacks-count');
  if (!badge || !counts) return;
  const n = counts.pending || 0;
  badge.textContent = n > 99 ? '99+' : String(n);
  badge.classList.toggle('hidden', n === 0);
  badge.classList.toggle('alert', (counts.overdue || 0) > 0);
  document
    .getElementById('nav-callbacks')
    ?.setAttribute('aria-label', `回访，待回访 ${n} 件${counts.overdue ? `，已逾期 ${counts.overdue} 件` : ''}`);
}

export function parseCallbacksRoute(tab) {
  return TAB_IDS.includes(tab) ? tab : 'pending';
}

export function showCallbacks(main, tab) {
  cb.tab = tab;
  cb.items = [];
  cb.next = null;
  const current = TABS.find((t) => t.id === tab);
  mount(
    main,
    h(
      'section.callbacks-view',
      h(
        'div.queue-head',
        h(
          'div.ticket-nav',
          h('button#back', { type: 'button', onclick: () => (location.hash = lastQueueHash()) }, '← 返回队列'),
          h('h2.grow', '回访'),
          h(
            'button#cb-refresh',
            { type: 'button', title: '刷新', onclick: () => refreshCallbacks({ manual: true }) },
            h('span', { 'aria-hidden': 'true' }, '⟳'),
            h('span.btn-label', '刷新'),
          ),
        ),
        h(
          'div.tabs',
          { role: 'tablist', 'aria-label': '回访队列' },
          TABS.map((t) =>
            h(
              'button.tab',
              {
                type: 'button',
                role: 'tab',
                'data-cbtab': t.id,
                title: t.hint,
                'aria-selected': String(t.id === tab),
                class: 'tab' + (t.id === tab ? ' active' : ''),
                onclick: () => {
                  if (t.id !== cb.tab) location.hash = `#/cb/${t.id}`;
                },
              },
              h('span.tab-label', tabLabel(t)),
              t.count ? h('span.count', { 'aria-label': '件数' }, countText(t.count)) : null,
            ),
          ),
        ),
      ),
      h(
        'div.cb-meta',
        h('div#cb-stats.cb-stats', { 'aria-live': 'polite' }, statChips(cb.counts)),
        h('p.hint.cb-hint', current.hint, '。回访期限按工作日计，默认为关闭后 3 个工作日。'),
      ),
      h('ul#cb-list.cb-list', { 'aria-live': 'polite' }, h('li.empty', '加载中…')),
      h('div.more-wrap', h('button#cb-more.hidden', { type: 'button', onclick: () => load(true) }, '加载更多')),
    ),
  );
  document.title = '回访 · 呼应工作台';
  load(false);
}

function countText(key) {
  const n = cb.counts?.[key];
  return n === undefined || n === null ? '…' : String(n);
}

/// 今日到期 · 已逾期 of the pending callbacks.
function statChips(counts) {
  const c = counts || {};
  const chip = (key, caption, cls) =>
    h(
      'span.cb-stat',
      { 'data-count': key, class: 'cb-stat' + (cls && c[key] > 0 ? ' ' + cls : '') },
      h('span.cb-stat-label', caption),
      h('b', c[key] === undefined ? '…' : String(c[key])),
    );
  // 待回访, 疑似诱导, done and unreachable are counted on the tabs.
  return [chip('due_today', '今日到期', 'warn'), chip('overdue', '已逾期', 'bad')];
}

function showCounts(counts) {
  if (!counts) return;
  cb.counts = counts;
  setBadge(counts);
  const stats = document.getElementById('cb-stats');
  if (stats) mount(stats, statChips(counts));
  for (const t of TABS) {
    if (!t.count) continue;
    const el = document.querySelector(`button.tab[data-cbtab="${t.id}"] .count`);
    if (!el) continue;
    el.textContent = countText(t.count);
    el.classList.toggle('zero', counts[t.count] === 0);
    el.classList.toggle('alert', t.id === 'flagged' && counts[t.count] > 0);
  }
}

async function load(more, { limit = PAGE } = {}) {
  const seq = ++cb.seq;
  const list = document.getElementById('cb-list');
  if (!list) return;
  const tab = TABS.find((t) => t.id === cb.tab);
  try {
    const page = await client.get(
      '/callbacks' + qs({ ...tab.params, limit: Math.min(100, limit), cursor: more ? cb.next : undefined }),
    );
    if (seq !== cb.seq || !document.getElementById('cb-list')) return;
    cb.items = more ? cb.items.concat(page.items) : page.items;
    cb.next = page.next_cursor || null;
    showCounts(page.counts);
    render();
  } catch (e) {
    if (seq !== cb.seq) return;
    if (more) {
      toast(errorText(e), 'error');
      return;
    }
    mount(
      list,
      h('li.empty', h('p', e.status === 403 ? '您没有回访任务。' : errorText(e)), h('button', { type: 'button', onclick: () => load(false) }, '重试')),
    );
  }
}

/// For the poller and #cb-refresh: the list again without a blank (open forms keep their input).
export async function refreshCallbacks({ manual = false } = {}) {
  if (!document.getElementById('cb-list')) {
    // Elsewhere: only the count of the 回访 button.
    if (available) probeCallbacks().catch(() => {});
    return;
  }
  // Someone is typing in a form: leave the list alone until they are done.
  if (!manual && document.querySelector('.cb-form:focus-within')) return;
  await load(false, { limit: Math.max(PAGE, cb.items.length) });
  if (manual) toast('已刷新');
}

function render() {
  const list = document.getElementById('cb-list');
  if (!list) return;
  if (!cb.items.length) {
    mount(list, h('li.empty', cb.tab === 'pending' ? '暂无待回访的工单' : '暂无回访'));
  } else {
    mount(list, cb.items.map(item));
  }
  const more = document.getElementById('cb-more');
  if (more) {
    more.classList.toggle('hidden', !cb.next);
    more.textContent = `加载更多（已显示 ${cb.items.length} 件）`;
  }
}

function dueLine(c) {
  if (c.state !== 'pending') return null;
  const today = todayBeijing();
  const dueDay = c.due_at ? new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai' }).format(new Date(c.due_at)) : '';
  let tag = null;
  if (c.overdue) tag = h('span.badge.red.cb-overdue', '已逾期');
  else if (dueDay === today) tag = h('span.badge.orange', '今日到期');
  return h(
    'div.cb-due',
    { class: 'cb-due' + (c.overdue ? ' overdue' : '') },
    `回访期限 ${fmtTime(c.due_at)} `,
    tag,
  );
}

function stars(n) {
  return h('span.cb-stars', { 'aria-label': `评分 ${n} 星` }, '★'.repeat(n), h('span.off', '★'.repeat(5 - n)));
}

function attemptsBlock(c) {
  const list = c.attempts || [];
  const unreached = list.filter((a) => !a.reached).length;
  const head =
    c.state === 'pending'
      ? list.length
        ? `已拨打 ${list.length} 次（未接通 ${unreached} 次，${MAX_ATTEMPTS} 次未接通记为${label('callback_state', 'unreachable')}）`
        : '尚未拨打'
      : `共拨打 ${list.length} 次`;
  return h(
    'div.cb-attempts',
    h('span.hint', head),
    list.length
      ? h(
          'ol.cb-attempt-list',
          list.map((a, i) =>
            h(
              'li',
              { class: a.reached ? 'reached' : 'missed' },
              `第 ${i + 1} 次 · ${fmtTime(a.at)} · ${a.reached ? '已接通' : '未接通'}`,
              a.by_name ? ` · ${a.by_name}` : '',
            ),
          ),
        )
      : null,
  );
}

function outcome(c) {
  if (c.state === 'pending') return null;
  if (c.state === 'unreachable') {
    return h('div.cb-outcome', h('strong', label('callback_state', 'unreachable')), `：拨打 ${MAX_ATTEMPTS} 次均未接通`);
  }
  return h(
    'div.cb-outcome',
    h('strong', '居民意见：'),
    h('span.cb-verdict', { 'data-verdict': c.verdict || '' }, label('callback_verdict', c.verdict) || '—'),
    c.pressed === true ? h('span.badge.red', '居民表示曾被诱导') : null,
    c.pressed === false && c.asks_pressed ? h('span.hint', ' · 居民表示未被诱导') : null,
  );
}

function item(c) {
  const flag = c.flag ? h('span.badge.red.cb-flag', { 'data-flag': c.flag, title: '疑似诱导' }, label('callback_flag', c.flag)) : null;
  // The server gives the phone only while the callback is pending.
  let phone = null;
  if (c.resident_phone) {
    phone = h('a.phone.cb-phone.btn', { href: `tel:${c.resident_phone}`, title: '拨打居民电话' }, '☎ ', c.resident_phone);
  } else if (c.state === 'pending') {
    phone = h('span.hint', '没有居民电话（居民已注销账号）');
  }
  return h(
    'li.cb-item',
    {
      'data-id': String(c.id),
      'data-ticket': String(c.ticket_id),
      'data-state': c.state,
      class: 'cb-item card' + (c.overdue && c.state === 'pending' ? ' is-overdue' : '') + (c.flag ? ' is-flagged' : ''),
    },
    h(
      'div.cb-head',
      h('a.ref', { href: `#/t/${c.ticket_id}`, title: '打开工单' }, c.reference),
      h('span.badge.cb-reason', { 'data-reason': c.reason }, label('callback_reason', c.reason)),
      flag,
      c.state !== 'pending' ? h('span.badge.cb-state', { class: 'badge cb-state' + (c.state === 'done' ? ' green' : ' orange') }, label('callback_state', c.state)) : null,
      c.reopened ? h('span.badge.red.cb-reopened', '已重新办理') : null,
    ),
    h('a.cb-title', { href: `#/t/${c.ticket_id}` }, c.title),
    h(
      'div.sub',
      [c.community_name, c.compound_name].filter(Boolean).join(' · '),
      ` · ${label('closed_by', c.closed_by)}`,
      c.closed_level ? `（${label('level', c.closed_level)}）` : '',
      c.closed_at ? ` · 关闭于 ${fmtTime(c.closed_at)}` : '',
      c.rating ? [' · 居民评价 ', stars(c.rating)] : null,
    ),
    dueLine(c),
    phone ? h('div.cb-contact', phone) : null,
    attemptsBlock(c),
    outcome(c),
    c.note ? h('div.ev-note.cb-note-text', c.note) : null,
    c.state === 'pending' ? recordForm(c) : null,
  );
}

/// The form of one callback: 未接通 (an attempt) or 已接通 with the resident's verdict,
/// "were you pressed?" when the callback asks it, and a note.
function recordForm(c) {
  const id = c.id;
  const draft = drafts.get(id) || { reached: null, verdict: '', pressed: '', note: '' };
  drafts.set(id, draft);
  let reached = null;
  const err = h('p.form-error', { role: 'alert' });
  const verdict = h(
    'select.cb-verdict',
    { id: `cb-verdict-${id}`, 'aria-label': '居民意见' },
    h('option', { value: '' }, '请选择居民意见'),
    options('callback_verdict', ['satisfied', 'basically_satisfied', 'unsatisfied']).map(([v, text]) => h('option', { value: v }, text)),
  );
  const pressed = c.asks_pressed
    ? h(
        'select.cb-pressed',
        { id: `cb-pressed-${id}`, 'aria-label': '是否被诱导' },
        h('option', { value: '' }, '请选择'),
        h('option', { value: 'no' }, '否，居民表示未被诱导'),
        h('option', { value: 'yes' }, '是，居民表示被诱导'),
      )
    : null;
  const pressedQuestion = c.reason === 'withdrawn_after_contact' || c.flag === 'quick_withdrawal' ? '是否被诱导撤单？' : c.rating ? '是否被诱导打分？' : '是否被诱导撤单/打分？';
  const reachedFields = h(
    'div.cb-reached-fields.hidden',
    h('label', { for: `cb-verdict-${id}` }, '居民意见', h('span.req', ' *')),
    verdict,
    pressed ? [h('label', { for: `cb-pressed-${id}` }, pressedQuestion, h('span.req', ' *')), pressed] : null,
  );
  const note = h('textarea.cb-note', { id: `cb-note-${id}`, rows: 2, maxlength: 2000, placeholder: '回访记录（可选）：居民原话、未接通原因等' });
  verdict.value = draft.verdict;
  verdict.addEventListener('change', () => (draft.verdict = verdict.value));
  if (pressed) {
    pressed.value = draft.pressed;
    pressed.addEventListener('change', () => (draft.pressed = pressed.value));
  }
  note.value = draft.note;
  note.addEventListener('input', () => (draft.note = note.value));
  const submit = h('button.primary.cb-submit', { type: 'submit', disabled: true }, '保存回访记录');
  const choice = (value, text) =>
    h(
      'button.cb-reached',
      {
        type: 'button',
        'data-reached': value ? 'yes' : 'no',
        'aria-pressed': 'false',
        onclick: () => choose(value),
      },
      text,
    );
  const choose = (value) => {
    reached = value;
    draft.reached = value;
    for (const b of form.querySelectorAll('.cb-reached')) {
      b.setAttribute('aria-pressed', String(b.dataset.reached === (value ? 'yes' : 'no')));
    }
    reachedFields.classList.toggle('hidden', !value);
    submit.disabled = false;
    submit.textContent = value ? '保存回访记录' : '记录未接通';
    err.textContent = '';
  };
  const form = h(
    'form.cb-form',
    {
      id: `cb-form-${id}`,
      novalidate: true,
      onsubmit: async (e) => {
        e.preventDefault();
        if (reached === null) return;
        const body = { reached };
        if (note.value.trim()) body.note = note.value.trim();
        if (reached) {
          if (!verdict.value) {
            err.textContent = '请选择居民意见';
            verdict.focus();
            return;
          }
          body.verdict = verdict.value;
          if (pressed) {
            if (!pressed.value) {
              err.textContent = `请选择${pressedQuestion.replace('？', '')}`;
              pressed.focus();
              return;
            }
            body.pressed = pressed.value === 'yes';
          }
        }
        submit.disabled = true;
        err.textContent = '';
        try {
          const after = await client.post(`/callbacks/${id}`, body);
          drafts.delete(id);
          toast(afterText(c, after));
          await load(false, { limit: Math.max(PAGE, cb.items.length) });
        } catch (ex) {
          submit.disabled = false;
          err.textContent = errorText(ex);
          if (ex.status === 409 || ex.status === 404) {
            drafts.delete(id);
            toast(ex.status === 409 ? '该回访已由他人记录，已刷新' : errorText(ex), 'error');
            load(false, { limit: Math.max(PAGE, cb.items.length) });
          }
        }
      },
    },
    h('div.cb-choices', { role: 'group', 'aria-label': '是否接通' }, choice(false, '未接通'), choice(true, '已接通')),
    reachedFields,
    h('label', { for: `cb-note-${id}` }, '备注'),
    note,
    err,
    h('div.dialog-buttons', submit),
  );
  if (draft.reached !== null) choose(draft.reached);
  return h('details.cb-record', { open: cb.open.has(id) || undefined, ontoggle: (e) => (e.currentTarget.open ? cb.open.add(id) : cb.open.delete(id)) }, h('summary.cb-record-open', { 'data-id': String(id) }, '记录回访'), form);
}

function afterText(before, after) {
  if (!after) return '已保存';
  if (after.reopened) {
    const why = after.pressed ? '居民表示曾被诱导' : '居民不满意';
    return `${why}：工单 ${after.reference || before.reference} 已重新办理，退回责任单位`;
  }
  if (after.state === 'unreachable') return `已拨打 ${MAX_ATTEMPTS} 次未接通，记为${label('callback_state', 'unreachable')}`;
  if (after.state === 'pending') return `已记录未接通（第 ${(after.attempts || []).length} 次），请稍后再拨`;
  return `已记录回访：${label('callback_verdict', after.verdict)}`;
}
