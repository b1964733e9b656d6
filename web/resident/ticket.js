// The request page: what was asked, where it stands, who owns it and until when, the timeline,
// the photos, and the resident's actions (add information, confirm with stars, dispute, withdraw).

import { h, mount, toast, errorText, fmtTime, fmtDuration } from '/static/common/ui.js';
import { label, hasLabel, reasonLabel } from '/static/common/labels.js';
import { client, statusBadge, sheet, orgTree, live } from './ctx.js';
import { PhotoSet, MAX_PHOTOS } from './photos.js';
import { coordsText } from '/static/common/geo.js';

// The coded reasons a resident reads on the timeline besides the escalation reasons (clock
// names and pauses are the staff's business).
const SHOWN_SYSTEM_REASONS = new Set([
  'sla_breach_acknowledge',
  'sla_breach_resolve',
  'sla_breach_review',
  'resident_dispute',
]);

/// The level a staff role answers at (the resident sees the branch, never the person).
const LEVEL_OF_ROLE = {
  compound_staff: 'compound',
  community_staff: 'community',
  street_staff: 'street',
};

/// The branch that took a step: the actor's level, else the level it was taken at.
function actorLevel(e) {
  return label('level', LEVEL_OF_ROLE[e.actor?.role] || e.level);
}

/// Names of the org units by id (the public tree), for the compounds a transfer names.
let unitNames = new Map();
function collectNames(nodes, out) {
  for (const n of nodes || []) {
    out.set(n.id, n.name);
    collectNames(n.children, out);
  }
  return out;
}

/// Where each transfer went: a transfer records the compound it left (`unit:<id>`), so the
/// next transfer's left compound, or for the last one the compound the request is at now.
function transferTargets(events, t) {
  const transfers = events
    .filter((e) => e.action === 'transfer' && e.reason?.startsWith('unit:'))
    .sort((a, b) => a.id - b.id);
  const to = new Map();
  transfers.forEach((e, i) => {
    const next = transfers[i + 1];
    to.set(e.id, next ? unitNames.get(Number(next.reason.slice(5))) || '' : t.compound.name);
  });
  return to;
}

/// The latest outcome of a decline review, in plain words, or null.
function reviewOutcome(events) {
  const last = [...events]
    .sort((a, b) => b.id - a.id)
    .find(
      (e) =>
        e.action === 'uphold_decline' ||
        e.action === 'overturn_decline' ||
        (e.action === 'return' && (e.status_before === 'decline_review' || e.reason === 'decline_overturned')),
    );
  return last ? { event: last, text: eventTitle(last) } : null;
}

function shownReason(code) {
  return hasLabel('escalation_reason', code) || SHOWN_SYSTEM_REASONS.has(code);
}

/// How the request was closed: the label, and in plain words what it means for the resident
/// where the label alone does not say it.
const CLOSED_BY_TEXT = {
  auto: '您未在期限内确认，系统已自动办结',
  callback: '工作人员电话回访您之后确认办结',
  declined: '经复核维持不予受理',
  withdrawn: '您撤回了诉求',
  raising_level: '由发现问题的单位确认办结',
};

function closedByText(v) {
  return `办结方式：${label('closed_by', v)}${CLOSED_BY_TEXT[v] ? `（${CLOSED_BY_TEXT[v]}）` : ''}`;
}

const STARS_ZH = ['', '很不满意', '不满意', '一般', '满意', '非常满意'];

/// What a timeline entry says, from the resident's point of view.
function eventTitle(e, t, transfers) {
  const after = label('level', e.level_after);
  const mine = e.actor && e.actor.name === '我';
  switch (e.action) {
    case 'create':
      if (t && t.entered_by_level && !mine) return `由${label('level', t.entered_by_level)}代为登记`;
      return label('event_kind', e.action);
    case 'decline':
      // A compound's or community's decline goes to the level above for review first.
      if (e.status_after === 'decline_review') return `${label('event_kind', e.action)}，已提请${after}复核`;
      return label('event_kind', e.action);
    case 'acknowledge':
      return `${label('level', e.level)}已受理`;
    case 'comment':
      return mine ? '我补充了信息' : label('event_kind', 'comment');
    case 'assign':
      return '已安排专人处理';
    case 'resolve':
      return `${label('level', e.level)}已办结`;
    case 'escalate':
      return e.actor?.role === 'system' ? `超时自动上报${after}` : `上报${after}`;
    case 'return':
      if (e.status_before === 'decline_review' || e.reason === 'decline_overturned') return `复核后已撤销不予受理，退回${after}重新办理`;
      return `退回${after}办理`;
    case 'transfer': {
      const to = transfers && transfers.get(e.id);
      return to ? `已转至${to}办理` : '已转至其他小区办理';
    }
    case 'urge':
      return `${actorLevel(e)}已督促加快办理`;
    case 'take_over':
      return `改由${after}直接办理`;
    case 'request_extension':
      return `${label('level', e.level)}申请延长办理期限`;
    case 'approve_extension':
      return e.reason && !Number.isNaN(new Date(e.reason).getTime())
        ? `办理期限已延至 ${fmtTime(e.reason)}`
        : '办理期限已延长';
    case 'reject_extension':
      return '延期申请未获批准，办理期限不变';
    case 'uphold_decline':
      return `经${actorLevel(e)}复核，维持不予受理`;
    case 'overturn_decline':
      return '复核后已撤销不予受理，重新办理';
    case 'confirm':
      return '我已确认办结';
    case 'dispute':
      return e.level_after !== e.level ? `我不满意，已上报${after}` : '我不满意，重新办理';
    case 'withdraw':
      return '我撤回了诉求';
    case 'wait_on_resident':
      return '请您补充信息';
    case 'reveal_phone':
      return '工作人员查看了您的联系电话';
    case 'sla_warning':
      return '即将超时提醒';
    case 'overdue':
      return '已超时，街道督办';
    case 'auto_close':
      return '超时未确认，系统自动办结';
    case 'callback':
      // reason: the verdict, `pressed` or `unreachable`.
      if (e.reason === 'unreachable') return '工作人员电话回访，未能联系到您';
      if (e.reason === 'pressed') return '工作人员电话回访，您表示曾被要求撤回或好评';
      if (hasLabel('callback_verdict', e.reason)) return `工作人员电话回访，您表示${label('callback_verdict', e.reason)}`;
      return '工作人员已电话回访';
    case 'callback_reopen':
      return `回访后重新办理，由${after}负责`;
    default:
      return label('event_kind', e.action);
  }
}

function timelineItem(e, t, transfers) {
  let extra = null;
  const r = e.reason;
  const rating = r && /^rating:(\d)$/.exec(r);
  if (rating) {
    const n = Number(rating[1]);
    extra = h('div.ev-rating', { 'aria-label': `评分 ${n} 星` }, '★'.repeat(n), h('span.off', '★'.repeat(5 - n)));
  } else if (r && e.action === 'decline') {
    extra = h('div.ev-reason', '理由：', r);
  } else if (r && (e.action === 'escalate' || shownReason(r)) && e.action !== 'dispute') {
    extra = h('div.ev-reason', '原因：', reasonLabel(r) || r);
  } else if (r === 'clock_resumed') {
    extra = h('div.ev-reason', '办理计时已恢复');
  }
  return h(
    'li',
    { 'data-action': e.action },
    h('div.ev-title', eventTitle(e, t, transfers)),
    h('div.when', fmtTime(e.created_at), ' · ', e.actor ? e.actor.name : ''),
    extra,
    e.note ? h('div.ev-note', e.note) : null,
  );
}

/// The running deadline, or null when no clock runs.
function deadlineText(t, dueAtMs) {
  const owner = label('level', t.level);
  const verb = t.status === 'open' ? '受理' : '办结';
  const due = t.status === 'open' ? t.ack_due_at : t.resolve_due_at;
  const left = Math.round((dueAtMs - Date.now()) / 1000);
  if (left >= 0) return { text: `${owner}应于 ${fmtTime(due)} 前${verb}，剩余 ${fmtDuration(left)}`, cls: left < 3600 ? 'soon' : '' };
  return { text: `${owner}应于 ${fmtTime(due)} 前${verb}，已超时 ${fmtDuration(left)}`, cls: 'overdue' };
}

/// 等待居民补充: what the staff asked, from the latest wait_on_resident event.
function waitingNote(events) {
  const ask = [...events].sort((a, b) => b.id - a.id).find((e) => e.action === 'wait_on_resident');
  return h(
    'div#waiting-note.waiting',
    h('p.soon', '工作人员请您补充信息（办理计时已暂停），请点“补充信息”回复：'),
    ask && ask.note ? h('p.pre.ask', ask.note) : null,
  );
}

let timer = null; // countdown tick and refresh poll of the page shown
let blobUrls = [];
let onLive = null; // what a live `tickets` event does to the ticket shown

/// The live stream says these tickets changed: the one shown reloads if it is among them.
export function ticketsChanged(ids) {
  if (onLive) onLive(ids);
}

export function leaveTicket() {
  onLive = null;
  clearInterval(timer);
  timer = null;
  for (const u of blobUrls) URL.revokeObjectURL(u);
  blobUrls = [];
}

/// Renders ticket `id` into `root`; `isCurrent()` says whether the page is still the one shown.
export async function showTicket(root, id, isCurrent) {
  leaveTicket();
  const [t, events, photos, tree] = await Promise.all([
    client.get(`/tickets/${id}`),
    client.get(`/tickets/${id}/events`),
    client.get(`/tickets/${id}/attachments`).catch(() => []),
    orgTree().catch(() => []),
  ]);
  if (!isCurrent()) return;
  unitNames = collectNames(tree, new Map());
  render(root, t, events, photos, isCurrent);
}

function render(root, t, events, photos, isCurrent) {
  leaveTicket();
  const fetchedAt = Date.now();
  const running = (t.status === 'open' || t.status === 'acknowledged') && t.due_in_seconds != null && !t.waiting_on_resident;
  const dueAtMs = fetchedAt + (t.due_in_seconds || 0) * 1000;
  let deadline = null;
  if (running) {
    const d = deadlineText(t, dueAtMs);
    deadline = h('p#deadline.deadline', { class: 'deadline ' + d.cls }, d.text);
  }
  const actions = t.allowed_actions || [];
  const reload = async (msg) => {
    if (msg) toast(msg);
    const [nt, ne, np] = await Promise.all([
      client.get(`/tickets/${t.id}`),
      client.get(`/tickets/${t.id}/events`),
      client.get(`/tickets/${t.id}/attachments`).catch(() => photos),
    ]);
    if (isCurrent()) render(root, nt, ne, np, isCurrent);
  };
  onLive = (ids) => {
    if (ids.includes(t.id) && isCurrent() && !document.querySelector('dialog[open]')) {
      reload().catch(() => {});
    }
  };

  const photoBox = h('div#photos-view.photos-view');
  const place = [t.compound.name, t.building && t.building.name].filter(Boolean).join(' ');
  const meta = h(
    'dl.meta',
    h('dt', '小区'),
    h('dd', place),
    t.location && t.location.text ? [h('dt', '位置'), h('dd', t.location.text)] : null,
    t.location && typeof t.location.latitude === 'number'
      ? [h('dt', '定位'), h('dd#ticket-coords', coordsText(t.location))]
      : null,
    h('dt', '类别'),
    h('dd', t.category.name),
    h('dt', '紧急程度'),
    h('dd', t.urgency === 'urgent' ? h('span.badge.red', label('urgency', 'urgent')) : label('urgency', t.urgency)),
    h('dt', '提交时间'),
    h('dd', fmtTime(t.created_at)),
    t.status === 'open' || t.status === 'acknowledged' ? [h('dt', '当前负责'), h('dd', label('level', t.level))] : null,
  );

  const result = [];
  if (t.resolution_note && (t.status === 'resolved' || t.status === 'closed')) {
    result.push(h('div.result', h('h3', '办结说明'), h('p.pre', t.resolution_note)));
  }
  if (t.status === 'resolved') {
    result.push(
      h(
        'p.hint',
        `请确认问题是否已解决：满意请点“${label('action', 'confirm')}”并评分，仍未解决请点“${label('action', 'dispute')}”。`,
      ),
    );
    if (t.auto_close_at) {
      result.push(h('p.hint#auto-close', `请在 ${fmtTime(t.auto_close_at)} 前确认，逾期将自动完成。`));
    }
  }
  if (t.decline_reason && (t.status === 'declined' || t.status === 'decline_review')) {
    result.push(h('div.result.declined', h('h3', '不予受理的理由'), h('p.pre', t.decline_reason)));
  }
  const review = reviewOutcome(events);
  if (t.status === 'decline_review') {
    result.push(
      h(
        'p#review-note.notice-line',
        `不予受理的决定正由${label('level', t.level)}复核`,
        t.decide_due_at ? `，将于 ${fmtTime(t.decide_due_at)} 前答复` : '',
      ),
    );
  } else if (review) {
    result.push(h('p#review-note.notice-line', review.text));
  }
  if (t.status === 'closed' && t.closed_by) {
    result.push(h('p#closed-by.notice-line', { 'data-closed-by': t.closed_by }, closedByText(t.closed_by)));
  }
  if (t.rating) {
    result.push(
      h(
        'div.result',
        h('h3', '我的评价'),
        h('p.rating', { 'aria-label': `${t.rating} 星` }, '★'.repeat(t.rating), h('span.off', '★'.repeat(5 - t.rating)), ' ', STARS_ZH[t.rating]),
        t.rating_comment ? h('p.pre', t.rating_comment) : null,
      ),
    );
  }

  const buttons = [];
  if (actions.includes('confirm')) buttons.push(h('button#confirm-open.primary', { type: 'button', onclick: () => openConfirm(t, reload) }, label('action', 'confirm')));
  if (actions.includes('dispute')) buttons.push(h('button#dispute-open', { type: 'button', onclick: () => openDispute(t, reload) }, label('action', 'dispute')));
  if (actions.includes('comment')) buttons.push(h('button#comment-open', { type: 'button', onclick: () => openComment(t, reload) }, '补充信息'));
  if (actions.includes('withdraw')) buttons.push(h('button#withdraw-open.danger', { type: 'button', onclick: () => openWithdraw(t, reload) }, label('action', 'withdraw')));

  // Newest first, like a parcel tracking page.
  const sorted = [...events].sort((a, b) => b.id - a.id);
  const transfers = transferTargets(events, t);

  // How the request came in, where it went, how long it may take: in plain words.
  const notes = [];
  if (t.entered_by_level && t.source && t.source !== 'app') {
    notes.push(
      h(
        'p#source-note.notice-line',
        `由${label('level', t.entered_by_level)}代为登记（${label('source', t.source)}）`,
        t.external_ref ? `，编号 ${t.external_ref}` : '',
      ),
    );
  }
  if (t.transfer_count > 0) {
    notes.push(h('p#transfer-note.notice-line', `已转至${t.compound.name}办理`));
  }
  if (t.extensions_granted > 0 && t.resolve_due_at && (t.status === 'open' || t.status === 'acknowledged')) {
    notes.push(h('p#extension-note.notice-line', `办理期限已延至 ${fmtTime(t.resolve_due_at)}`));
  }

  mount(
    root,
    h(
      'article.ticket',
      { 'data-id': String(t.id), 'data-status': t.status, 'data-version': String(t.version) },
      h(
        'section.card.head',
        h('h2#ticket-title', t.title),
        h(
          'p.ref-line',
          '编号 ',
          h('strong#ticket-ref', { title: '电话咨询时请报此编号' }, t.reference),
          navigator.clipboard && window.isSecureContext
            ? h('button.copy', {
                type: 'button',
                'aria-label': '复制编号',
                onclick: () =>
                  navigator.clipboard.writeText(t.reference).then(
                    () => toast('编号已复制'),
                    () => {},
                  ),
              }, '复制')
            : null,
        ),
        h('p.status-line', statusBadge(t, { id: 'status-text' }), t.overdue && running ? h('span.badge.red', '已超时') : null),
        deadline,
        notes,
        t.waiting_on_resident ? waitingNote(events) : null,
        result,
      ),
      h('section.card', h('h3', '诉求内容'), h('p.pre.desc', t.description), meta),
      h('section.card', h('h3', '图片'), photoBox),
      h('section.card', h('h3', '办理进度'), h('ol#timeline.timeline', sorted.map((e) => timelineItem(e, t, transfers)))),
      buttons.length ? h('div.action-bar', { role: 'group', 'aria-label': '操作' }, buttons) : null,
    ),
  );
  root.classList.toggle('has-actions', buttons.length > 0);

  // Photos need the bearer token, so they are fetched and shown from blob: URLs.
  if (!photos.length) {
    photoBox.appendChild(h('p.hint', '没有图片'));
  }
  for (const p of photos) {
    const img = h('img', { alt: p.original_name || '诉求图片', loading: 'lazy', 'data-attachment-id': String(p.id) });
    const a = h('button.photo', { type: 'button', 'aria-label': '查看大图', onclick: () => viewPhoto(img.src) }, img);
    photoBox.appendChild(a);
    client
      .blobUrl(p.url.replace(/^\/api\/v1/, ''))
      .then((u) => {
        blobUrls.push(u);
        img.src = u;
      })
      .catch(() => a.replaceWith(h('span.hint', '图片加载失败')));
  }

  // A live countdown, and a quiet look for news every 20 s (staff may act meanwhile).
  let ticks = 0;
  timer = setInterval(async () => {
    if (!isCurrent()) return leaveTicket();
    if (running) {
      const el = document.getElementById('deadline');
      if (el) {
        const d = deadlineText(t, dueAtMs);
        el.textContent = d.text;
        el.className = 'deadline ' + d.cls;
      }
    }
    ticks += 1;
    // The 20 s look is the fallback for when the live stream is down.
    if (ticks % 4 === 0 && !live.up && !document.hidden && !document.querySelector('dialog[open]')) {
      try {
        const nt = await client.get(`/tickets/${t.id}`);
        if (nt.version !== t.version && isCurrent() && !document.querySelector('dialog[open]')) reload();
      } catch (e) {
        /* try again later */
      }
    }
  }, 5000);
}

function viewPhoto(src) {
  if (!src) return;
  sheet('查看图片', h('img.full', { src, alt: '诉求图片' }));
}

/// Runs an action; on success closes the sheet and re-renders the page.
async function act(t, action, body, button, close, reload, done) {
  button.disabled = true;
  try {
    await client.post(`/tickets/${t.id}/${action}`, body);
    close();
    await reload(done);
  } catch (e) {
    toast(errorText(e), 'error');
    if (e.status === 409) {
      // The ticket changed meanwhile: show what it is now, keep the dialog's text.
      reload().catch(() => {});
    }
  } finally {
    button.disabled = false;
  }
}

function openConfirm(t, reload) {
  let rating = 0;
  const starLabel = h('p.star-label.hint', '请点星星评分');
  const stars = [1, 2, 3, 4, 5].map((v) =>
    h(
      'button.star',
      {
        type: 'button',
        'data-value': String(v),
        'aria-label': `${v} 星 ${STARS_ZH[v]}`,
        'aria-pressed': 'false',
        onclick: () => {
          rating = v;
          stars.forEach((s, i) => {
            s.classList.toggle('on', i < v);
            s.setAttribute('aria-pressed', String(i < v));
          });
          starLabel.textContent = `${v} 星 · ${STARS_ZH[v]}`;
          submit.disabled = false;
        },
      },
      '★',
    ),
  );
  const comment = h('textarea#rating-comment', { maxlength: '500', rows: 3, placeholder: '说说您的感受（选填）' });
  const submit = h('button#confirm-submit.primary.block', { type: 'button', disabled: true }, label('action', 'confirm'));
  const { close } = sheet(
    '确认办结并评价',
    h('p.hint', '问题已解决请确认。您的评价会帮助改进服务。'),
    h('div.stars', { role: 'group', 'aria-label': '满意度评分' }, stars),
    starLabel,
    h('label', { for: 'rating-comment' }, '评价（选填）'),
    comment,
    submit,
  );
  submit.addEventListener('click', () => {
    if (!rating) return toast('请先点星星评分', 'error');
    const body = { rating };
    if (comment.value.trim()) body.note = comment.value.trim();
    act(t, 'confirm', body, submit, close, reload, '已确认办结，感谢您的评价');
  });
}

function openDispute(t, reload) {
  const reason = h('textarea#dispute-reason', { maxlength: '2000', rows: 4, placeholder: '请说明哪里还没解决' });
  const submit = h('button#dispute-submit.primary.block', { type: 'button' }, '提交');
  const explain =
    t.status === 'declined'
      ? '对“不予受理”有异议，诉求将上报上一级党组织。'
      : '诉求将退回重新办理；同一级再次不满意将上报上一级党组织。';
  const { close } = sheet(
    label('action', 'dispute'),
    h('p.hint', explain),
    h('label', { for: 'dispute-reason' }, '原因'),
    reason,
    submit,
  );
  submit.addEventListener('click', () => {
    if (!reason.value.trim()) {
      toast('请填写不满意的原因', 'error');
      return reason.focus();
    }
    act(t, 'dispute', { note: reason.value.trim() }, submit, close, reload, '已提交，我们会尽快重新办理');
  });
}

function openComment(t, reload) {
  const text = h('textarea#comment-text', { maxlength: '2000', rows: 4, placeholder: '补充说明情况，或回复工作人员的问题' });
  const room = MAX_PHOTOS - (t.attachment_count || 0);
  const thumbs = h('div#comment-thumbs.thumbs');
  const set = new PhotoSet(thumbs, { max: Math.max(0, room) });
  const input = h('input#comment-photos', { type: 'file', multiple: true, accept: 'image/*', 'aria-label': '补充图片' });
  input.addEventListener('change', async () => {
    const files = Array.from(input.files || []);
    input.value = '';
    const problems = await set.add(files);
    if (problems.length) toast([...new Set(problems)].join('；'), 'error');
  });
  const submit = h('button#comment-submit.primary.block', { type: 'button' }, '提交');
  let commented = false;
  const { close } = sheet(
    '补充信息',
    h('label', { for: 'comment-text' }, '补充内容'),
    text,
    room > 0 ? [h('label', { for: 'comment-photos' }, `补充图片（还可上传 ${room} 张）`), input, thumbs] : null,
    submit,
  );
  submit.addEventListener('click', async () => {
    const note = text.value.trim();
    if (!note && !set.pending.length) {
      toast('请填写补充内容', 'error');
      return text.focus();
    }
    submit.disabled = true;
    try {
      if (note && !commented) {
        await client.post(`/tickets/${t.id}/comment`, { note });
        commented = true;
        text.disabled = true;
      }
      if (set.pending.length) {
        const failed = await set.upload(t.id);
        if (failed) {
          toast(`有 ${failed} 张图片上传失败，可再点“提交”重试`, 'error');
          return;
        }
      }
      close();
      await reload('已补充');
    } catch (e) {
      toast(errorText(e), 'error');
    } finally {
      submit.disabled = false;
    }
  });
}

function openWithdraw(t, reload) {
  const reason = h('textarea#withdraw-reason', { maxlength: '500', rows: 3, placeholder: '如：问题已自行解决（选填）' });
  const submit = h('button#withdraw-submit.danger.block', { type: 'button' }, '确认撤回');
  const { close } = sheet(
    '撤回诉求',
    h('p.hint', '撤回后工作人员将不再处理此诉求。'),
    h('label', { for: 'withdraw-reason' }, '撤回原因（选填）'),
    reason,
    submit,
  );
  submit.addEventListener('click', () => {
    const body = reason.value.trim() ? { note: reason.value.trim() } : {};
    act(t, 'withdraw', body, submit, close, reload, '已撤回');
  });
}
