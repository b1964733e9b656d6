// One ticket: facts, photos, the timeline (internal notes marked) and the allowed actions.

import { h, mount, toast, errorText, fmtTime } from '/static/common/ui.js';
import { label } from '/static/common/labels.js';
import {
  client,
  state,
  countdownEl,
  urgencyBadge,
  sourceBadge,
  reasonText,
  staffStatusText,
  unitName,
} from './shared.js';
import { openActionDialog, dialogOpen } from './actions.js';
import { lastQueueHash } from './queue.js';
import { coordsText, loadMapMeta, staticMap } from '/static/common/geo.js';

const cur = { id: null, ticket: null, events: [], fetchedAt: 0, photos: new Map(), seq: 0 };

export function currentTicketId() {
  return cur.id;
}

export async function showTicket(main, id) {
  const seq = ++cur.seq;
  if (cur.id !== id) {
    for (const url of cur.photos.values()) URL.revokeObjectURL(url);
    cur.photos = new Map();
    cur.ticket = null;
    cur.events = [];
  }
  cur.id = id;
  state.fresh.delete(id);
  mount(
    main,
    h(
      'section.ticket-view',
      backButton(),
      h('div.card', h('p.empty', '加载中…')),
    ),
  );
  try {
    const [t, events] = await Promise.all([
      client.get(`/tickets/${id}`),
      client.get(`/tickets/${id}/events`),
    ]);
    if (seq !== cur.seq) return;
    cur.ticket = t;
    cur.events = events;
    cur.fetchedAt = Date.now();
    render(main);
  } catch (e) {
    if (seq !== cur.seq) return;
    mount(
      main,
      h(
        'section.ticket-view',
        backButton(),
        h(
          'div.card.empty',
          h('p', e.status === 404 ? '工单不存在，或不在您的职责范围内。' : errorText(e)),
          e.status === 404 ? null : h('button', { type: 'button', onclick: () => showTicket(main, id) }, '重试'),
        ),
      ),
    );
  }
}

/// After an action: the answer's ticket at once, then the new timeline.
export async function afterAction(ticket) {
  const main = document.getElementById('main');
  if (!main || ticket.id !== cur.id) return;
  cur.ticket = ticket;
  cur.fetchedAt = Date.now();
  try {
    cur.events = await client.get(`/tickets/${ticket.id}/events`);
  } catch (e) {
    toast(errorText(e), 'error');
  }
  render(main);
}

/// For the poller: re-render only when someone else changed the ticket (its version moved).
export async function pollTicket() {
  const main = document.getElementById('main');
  if (!cur.id || !cur.ticket || dialogOpen() || !document.getElementById('ticket-title')) return;
  const id = cur.id;
  try {
    const t = await client.get(`/tickets/${id}`);
    if (id !== cur.id || dialogOpen()) return;
    if (t.version !== cur.ticket.version) {
      cur.ticket = t;
      cur.fetchedAt = Date.now();
      cur.events = await client.get(`/tickets/${id}/events`);
      render(main);
      toast('工单有新的进展');
    }
  } catch (e) {
    /* the next poll tries again */
  }
}

export async function reloadTicket() {
  const main = document.getElementById('main');
  if (cur.id) await showTicket(main, cur.id);
}

function backButton() {
  return h(
    'div.ticket-nav',
    h(
      'button#back',
      {
        type: 'button',
        onclick: () => {
          location.hash = state.backTo || lastQueueHash();
        },
      },
      state.backTo ? '← 返回回访' : '← 返回队列',
    ),
  );
}

function fact(caption, ...value) {
  const v = value.filter((x) => x !== null && x !== undefined && x !== '');
  if (!v.length) return null;
  return [h('dt', caption), h('dd', ...v)];
}

function hasCoords(t) {
  return !!t.location && typeof t.location.latitude === 'number' && typeof t.location.longitude === 'number';
}

/// Where the small map goes: filled only when a tile server is configured (GET /meta/map), so
/// without one the page loads nothing from outside.
function mapSlot(t) {
  if (!hasCoords(t)) return null;
  const slot = h('div#ticket-map-slot');
  loadMapMeta().then((meta) => {
    if (meta && meta.tile_url && slot.isConnected) slot.replaceChildren(staticMap(h, meta, t.location));
  });
  return slot;
}

function render(main) {
  const t = cur.ticket;
  const scrollY = window.scrollY;
  const phone = state.phones.get(t.id);
  const resident = t.resident
    ? [
        t.resident.display_name || '居民',
        ' ',
        phone
          ? h('a.phone', { href: `tel:${phone}` }, phone)
          : h('span.hint', t.resident.phone_masked || ''),
      ]
    : null;
  const running =
    t.status === 'open' || t.status === 'acknowledged' || t.status === 'decline_review'
      ? h('span.clock', countdownEl(t, cur.fetchedAt))
      : null;
  const head = h(
    'div.card.ticket-head',
    h(
      'div.ticket-tags',
      h('span#ticket-ref.ref', t.reference),
      h('span.badge', label('level', t.level)),
      urgencyBadge(t),
      sourceBadge(t),
      t.identity_hidden ? h('span.badge.orange#identity-hidden', '居民身份保护') : null,
      t.waiting_on_resident ? h('span.badge.orange', label('action', 'wait_on_resident')) : null,
    ),
    h('h2#ticket-title', t.title),
    h(
      'p.status-line',
      h('strong#status-text', { class: 'status-' + t.status }, staffStatusText(t)),
      running,
    ),
    h(
      'dl.facts',
      fact('社区 / 小区', `${t.community.name} · ${t.compound.name}`, t.building ? ` · ${t.building.name}` : ''),
      fact('类别', t.category.name),
      fact('位置', t.location?.text || ''),
      hasCoords(t) ? [h('dt', '定位'), h('dd#ticket-coords', coordsText(t.location))] : null,
      fact('居民', ...(resident || [])),
      t.identity_hidden
        ? fact('身份保护', `居民要求对${label('level', 'compound')}隐藏身份`)
        : null,
      fact('来源', label('source', t.source)),
      fact('外部编号', t.external_ref || ''),
      t.entered_by
        ? fact(
            t.source === 'own_finding' ? '登记人' : '代为登记',
            t.entered_by.name,
            t.entered_by_level ? `（${label('level', t.entered_by_level)}）` : '',
          )
        : null,
      t.raised_level ? fact('发现单位', label('level', t.raised_level)) : null,
      fact('指派给', t.assignee ? t.assignee.name : '', t.assigned_handler ? `${t.assignee ? '；' : ''}交办：${t.assigned_handler}` : ''),
      fact('提交时间', fmtTime(t.created_at)),
      t.status === 'closed' && t.closed_by
        ? fact('办结方式', h('span#closed-by', { 'data-closed-by': t.closed_by }, label('closed_by', t.closed_by)))
        : null,
      t.status === 'closed' && t.closed_at ? fact('关闭时间', fmtTime(t.closed_at)) : null,
      t.status === 'open' ? fact('受理期限', fmtTime(t.ack_due_at)) : null,
      t.status === 'open' || t.status === 'acknowledged' ? fact('办结期限', fmtTime(t.resolve_due_at)) : null,
      t.escalation_count ? fact('上报次数', String(t.escalation_count)) : null,
      t.transfer_count ? fact('转办次数', String(t.transfer_count)) : null,
      t.urge_count ? fact('催办次数', String(t.urge_count)) : null,
      t.extensions_granted ? fact('已批准延期', `${t.extensions_granted} 次`) : null,
      fact('办结说明', t.resolution_note || ''),
      fact('不予受理理由', t.decline_reason || ''),
      t.rating ? fact('居民评价', `${'★'.repeat(t.rating)}${'☆'.repeat(5 - t.rating)}`, t.rating_comment ? ` ${t.rating_comment}` : '') : null,
    ),
    mapSlot(t),
    pendingBox(t),
    h('h3', '诉求描述'),
    h('p.description', t.description),
  );

  const photos = h('div#photos-view.photos');
  const photoCard = h('div.card', h('h3', `照片（${t.attachment_count}）`), photos);
  if (!t.attachment_count) photos.append(h('p.hint', '无照片'));
  else loadPhotos(t, photos);

  const allowed = t.allowed_actions || [];
  const actions = h(
    'div#actions.actions',
    allowed.map((a) =>
      h(
        'button.action',
        {
          type: 'button',
          'data-action': a,
          class: 'action' + (a === 'acknowledge' || a === 'resolve' ? ' primary' : '') + (a === 'decline' ? ' danger' : ''),
          onclick: () => openActionDialog(a, t, cur.events),
        },
        label('action', a),
      ),
    ),
  );
  const noActions = allowed.length
    ? null
    : h('p.hint', t.status === 'open' || t.status === 'acknowledged' || t.status === 'decline_review'
      ? `现由${label('level', t.level)}负责，您可查看进展。`
      : `工单${label('status', t.status)}，无需操作。`);
  const actionCard = h('div.card.actions-card', h('h3', '操作'), actions, noActions);

  const timeline = h(
    'ol#timeline.timeline',
    cur.events.map((e) => eventItem(e)),
  );
  const tlCard = h(
    'div.card',
    h('h3', '处理记录'),
    h('p.hint.legend', h('span.internal-tag', '内部'), ' 为内部备注，居民看不到'),
    timeline,
  );

  mount(main, h('section.ticket-view', backButton(), head, actionCard, photoCard, tlCard));
  document.title = `${t.reference} · 呼应工作台`;
  window.scrollTo(0, scrollY);
}

/// A decision waiting: an extension request or a decline under review, and until when.
function pendingBox(t) {
  const due = t.decide_due_at ? h('p.hint', `须于 ${fmtTime(t.decide_due_at)} 前作出决定`) : null;
  if (t.extension) {
    const x = t.extension;
    return h(
      'div#pending-extension.pending-box',
      h('strong', '延期申请待批准'),
      h('p', `申请将办结期限延至 ${fmtTime(x.requested_due_at)}（现期限 ${fmtTime(t.resolve_due_at) || '—'}）`),
      x.reason ? h('p.pre', `理由：${x.reason}`) : null,
      h('p.hint', `申请于 ${fmtTime(x.requested_at)}`),
      x.unanswered ? h('p.overdue', '已超过批复期限，仍可批准或驳回') : due,
    );
  }
  if (t.status === 'decline_review') {
    return h(
      'div#pending-review.pending-box',
      h('strong', label('status', 'decline_review')),
      h('p', '下级作出了不予受理的决定，须经本级复核：维持，撤销并由本级办理，或撤销并退回下级重办。'),
      due,
    );
  }
  return null;
}

/// Where a transfer went: the compound the next transfer left, or the ticket's compound now
/// (a transfer records only the compound it left, as `unit:<id>`).
function transferTarget(e) {
  const later = cur.events.filter((x) => x.action === 'transfer' && x.id > e.id && x.reason?.startsWith('unit:'));
  if (!later.length) return cur.ticket?.compound?.name || '';
  const next = later.reduce((a, b) => (a.id < b.id ? a : b));
  return unitName(Number(next.reason.slice(5)));
}

function eventItem(e) {
  const who = e.actor?.name || label('role', e.actor?.role || 'system');
  let what = label('event_kind', e.action);
  if (e.action === 'escalate') what = `${what}至${label('level', e.level_after)}`;
  if (e.action === 'return') what = `${what}${label('level', e.level_after)}`;
  if (e.action === 'dispute' && e.level_after !== e.level) what = `${what}，上报至${label('level', e.level_after)}`;
  if (e.action === 'comment' && e.internal) what = '备注';
  if (e.action === 'callback_reopen' && e.level_after) what = `${what}（交${label('level', e.level_after)}）`;
  let reason = reasonText(e.action, e.reason);
  let note = e.note;
  // Coded reasons of the accountability actions read as a line of their own.
  let detail = null;
  if (e.action === 'transfer' && e.reason?.startsWith('unit:')) {
    const from = unitName(Number(e.reason.slice(5)));
    const to = transferTarget(e);
    if (to) what = `${what}至${to}`;
    detail = from ? `原小区：${from}` : null;
    reason = '';
  }
  if ((e.action === 'request_extension' || e.action === 'approve_extension') && e.reason) {
    if (!Number.isNaN(new Date(e.reason).getTime())) {
      detail = `${e.action === 'request_extension' ? '申请延至' : '期限延至'} ${fmtTime(e.reason)}`;
      reason = '';
    }
  }
  if ((e.action === 'callback' || e.action === 'callback_reopen') && reason) {
    detail = `回访结果：${reason}`;
    reason = '';
  }
  if (e.action === 'assign') {
    // reason `user:ID` is the assignee, note the named handler.
    const parts = [];
    if (e.reason?.startsWith('user:')) {
      const id = Number(e.reason.slice(5));
      const known =
        id === state.me?.id ? state.me.display_name : cur.events.find((x) => x.actor?.id === id)?.actor.name;
      parts.push(`给 ${known || `工作人员 #${id}`}`);
    }
    if (e.note) parts.push(`交办 ${e.note}`);
    what = `${what}${parts.length ? '：' + parts.join('，') : ''}`;
    reason = '';
    note = null;
  }
  return h(
    'li',
    { class: e.internal ? 'ev internal-ev' : 'ev', 'data-action': e.action },
    h(
      'div.ev-head',
      h('strong', what),
      e.internal ? h('span.internal-tag', '内部') : null,
      h('span.hint', ` · ${who}${e.actor?.role === 'resident' ? '（居民）' : ''}`),
    ),
    h('div.when', fmtTime(e.created_at)),
    reason ? h('div.ev-reason', `原因：${reason}`) : null,
    detail ? h('div.ev-reason', detail) : null,
    note ? h('div.ev-note', { class: e.internal ? 'ev-note internal' : 'ev-note' }, note) : null,
  );
}

async function loadPhotos(t, box) {
  let list;
  try {
    list = await client.get(`/tickets/${t.id}/attachments`);
  } catch (e) {
    box.append(h('p.hint', '照片加载失败：' + errorText(e)));
    return;
  }
  for (const a of list) {
    const img = h('img', { alt: a.original_name || '现场照片', loading: 'lazy', width: 160, height: 160 });
    const link = h('a.photo', { href: '#', title: '查看原图' }, img);
    link.addEventListener('click', (ev) => {
      ev.preventDefault();
      if (img.src) window.open(img.src, '_blank', 'noopener');
    });
    box.append(link);
    const cached = cur.photos.get(a.id);
    if (cached) {
      img.src = cached;
      continue;
    }
    client
      .blobUrl(`/tickets/${t.id}/attachments/${a.id}`)
      .then((url) => {
        cur.photos.set(a.id, url);
        img.src = url;
      })
      .catch(() => link.replaceWith(h('span.hint', '照片无法显示')));
  }
}
