// The action dialog: one form per action with exactly the fields the API wants
// (src/service/tickets/mod.rs check_body), then POST /tickets/{id}/{action}.

import { h, mount, toast, errorText, fmtTime } from '/static/common/ui.js';
import { label, options } from '/static/common/labels.js';
import {
  client,
  state,
  LEVEL_OF_ROLE,
  compoundsOfCommunity,
  toLocalInput,
  fromLocalInput,
} from './shared.js';

// The escalation reasons in the order a secretary weighs them (the labels come alphabetically).
const REASON_ORDER = ['beyond_authority', 'needs_resources', 'needs_enforcement', 'cross_compound'];

/// What each action asks for. `note` → textarea#action-note, `reason` → textarea#action-reason,
/// `reasonCode` → select#action-reason, `internal` → input#action-internal,
/// `assignee` → select#action-assignee, `handler` → input#action-handler,
/// `compound` → select#action-compound, `due` → input#action-due (datetime-local),
/// `extension` → what the lower level asked for (read only).
const SPECS = {
  acknowledge: {
    help: '受理即向居民作出响应（应），并开始计算本级办结时限。',
    fields: [{ kind: 'note', label: '受理说明（可选，居民可见）', required: false, max: 2000 }],
  },
  comment: {
    help: '回复会显示在工单记录中。勾选“内部备注”时居民看不到。',
    fields: [
      { kind: 'note', label: '回复内容', required: true, max: 2000 },
      { kind: 'internal' },
    ],
  },
  assign: {
    help: '指派给本单位工作人员，或交办给物业公司、志愿服务队等（至少填一项）。',
    fields: [{ kind: 'assignee' }, { kind: 'handler' }],
  },
  resolve: {
    help: '办结后由居民确认；居民有异议时工单会重新打开。',
    fields: [{ kind: 'note', label: '办结说明（居民可见）', required: true, max: 2000 }],
  },
  escalate: {
    help: '本级无法解决时上报（呼）上级党组织，上级开始计时。',
    fields: [
      { kind: 'reasonCode', label: '上报原因', required: true },
      { kind: 'note', label: '上报说明', required: true, max: 2000 },
    ],
  },
  return: {
    help: '退回下级办理，并给出指导意见（每级只能退回一次）。',
    fields: [{ kind: 'note', label: '退回指导意见', required: true, max: 2000 }],
  },
  decline: {
    help: '小区、社区党支部不予受理的，由上一级党组织复核；理由将告知居民，居民可在 7 天内提出异议。',
    fields: [{ kind: 'reason', label: '不予受理理由（居民可见）', required: true, max: 500 }],
  },
  wait_on_resident: {
    help: '请居民补充信息，办结时限暂停计时，居民补充后恢复。',
    fields: [{ kind: 'note', label: '需要居民补充的内容', required: true, max: 2000 }],
  },
  reveal_phone: {
    help: '将显示居民的完整手机号码，此次查看会记入工单记录（内部）。',
    fields: [],
  },
  confirm: {
    help: '本单位自查发现的问题，办结后由本单位确认。',
    fields: [{ kind: 'note', label: '确认意见（可选）', required: false, max: 500 }],
  },
  transfer: {
    help: '诉求不属于本小区时，转给同一社区的另一个小区党支部办理，时限重新计算。',
    fields: [
      { kind: 'compound', label: '转至小区', required: true },
      { kind: 'note', label: '转办说明', required: true, max: 2000 },
    ],
  },
  urge: {
    help: '催办会通知当前负责的党组织并记入工单记录；同一级一小时内只能催办一次。',
    fields: [{ kind: 'note', label: '催办意见', required: true, max: 500 }],
  },
  take_over: {
    help: '提级领办：工单改由本级负责办理，并重新计算办结时限。',
    fields: [{ kind: 'note', label: '领办理由', required: true, max: 2000 }],
  },
  request_extension: {
    help: '向上级党组织申请延长办结期限，最多延长 10 个工作日；上级批准前原期限不变。',
    fields: [
      { kind: 'due', label: '申请延至', required: true },
      { kind: 'note', label: '延期理由', required: true, max: 2000 },
    ],
  },
  approve_extension: {
    help: '批准后办结期限改为申请的时间。',
    fields: [{ kind: 'extension' }, { kind: 'note', label: '意见（可选）', required: false, max: 2000 }],
  },
  reject_extension: {
    help: '不批准延期，原办结期限不变。',
    fields: [{ kind: 'extension' }, { kind: 'note', label: '不批准的理由', required: true, max: 2000 }],
  },
  uphold_decline: {
    help: '复核认为不予受理的理由成立，维持原决定，并告知居民。',
    fields: [{ kind: 'declined' }, { kind: 'note', label: '复核意见（可选，居民可见）', required: false, max: 2000 }],
  },
  overturn_decline: {
    help: '撤销不予受理，工单改由本级受理办理。',
    fields: [{ kind: 'declined' }, { kind: 'note', label: '复核意见（可选，居民可见）', required: false, max: 2000 }],
  },
};

/// `return` of a ticket under decline review: the decline is set aside and the level below
/// handles it again.
const RETURN_FROM_REVIEW = {
  help: '撤销不予受理，退回下级重新办理，并给出指导意见。',
  fields: [{ kind: 'declined' }, { kind: 'note', label: '重办指导意见', required: true, max: 2000 }],
};

function specOf(action, ticket) {
  if (action === 'return' && ticket.status === 'decline_review') return RETURN_FROM_REVIEW;
  return SPECS[action] || { help: '', fields: [] };
}

let current = null; // { action, ticket, submitting }
let onDone = null;

export function dialogOpen() {
  return !!document.getElementById('action-dialog')?.open;
}

/// `done(ticket, phone)` is called after a successful action.
export function initActionDialog(done) {
  onDone = done;
  const dlg = document.getElementById('action-dialog');
  const form = document.getElementById('action-form');
  document.getElementById('action-cancel').addEventListener('click', () => dlg.close());
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    submit();
  });
  dlg.addEventListener('close', () => {
    current = null;
  });
}

function staffOptions(ticket, events) {
  // At once: myself, colleagues of my unit seen on this ticket's timeline at my level, and the
  // current assignee; `addColleagues` then adds the rest of my unit's active staff.
  const myRole = state.me?.role;
  const level = LEVEL_OF_ROLE[myRole];
  const people = new Map();
  if (state.me) people.set(state.me.id, `我（${state.me.display_name}）`);
  for (const e of events || []) {
    if (e.actor?.id && e.actor.role === myRole && e.level === level && !people.has(e.actor.id)) {
      people.set(e.actor.id, e.actor.name);
    }
  }
  if (ticket.assignee && !people.has(ticket.assignee.id)) {
    people.set(ticket.assignee.id, ticket.assignee.name);
  }
  return [...people.entries()];
}

function field(spec, ticket, events) {
  switch (spec.kind) {
    case 'note':
      return h(
        'div.field',
        h('label', { for: 'action-note' }, spec.label, spec.required ? h('span.req', ' *') : null),
        h('textarea#action-note', { name: 'note', maxlength: spec.max, rows: 4, required: spec.required }),
      );
    case 'reason':
      return h(
        'div.field',
        h('label', { for: 'action-reason' }, spec.label, h('span.req', ' *')),
        h('textarea#action-reason', { name: 'reason', maxlength: spec.max, rows: 3, required: true }),
      );
    case 'reasonCode':
      return h(
        'div.field',
        h('label', { for: 'action-reason' }, spec.label, h('span.req', ' *')),
        h(
          'select#action-reason',
          { name: 'reason', required: true },
          h('option', { value: '' }, '请选择上报原因'),
          options('escalation_reason', REASON_ORDER).map(([v, t]) => h('option', { value: v }, t)),
        ),
      );
    case 'internal':
      return h(
        'div.field.check',
        h(
          'label.checkbox',
          { for: 'action-internal' },
          h('input#action-internal', { type: 'checkbox', name: 'internal' }),
          ' 内部备注（居民看不到）',
        ),
      );
    case 'assignee':
      return h(
        'div.field',
        h('label', { for: 'action-assignee' }, '指派给本单位工作人员'),
        h(
          'select#action-assignee',
          { name: 'assignee_id' },
          h('option', { value: '' }, '不指派具体人员'),
          staffOptions(ticket, events).map(([id, name]) =>
            h('option', { value: String(id), selected: ticket.assignee?.id === id }, name),
          ),
        ),
      );
    case 'compound': {
      // Sideways only: the other compounds of the ticket's community.
      const choices = compoundsOfCommunity(ticket.community.id).filter((c) => c.id !== ticket.compound.id);
      return h(
        'div.field',
        h('label', { for: 'action-compound' }, spec.label, h('span.req', ' *')),
        h(
          'select#action-compound',
          { name: 'compound_id', required: true },
          h('option', { value: '' }, choices.length ? `请选择${ticket.community.name}的小区` : '本社区没有其他小区'),
          choices.map((c) => h('option', { value: String(c.id) }, c.name)),
        ),
      );
    }
    case 'due':
      return h(
        'div.field',
        h('label', { for: 'action-due' }, spec.label, h('span.req', ' *')),
        h('input#action-due', {
          type: 'datetime-local',
          name: 'due_at',
          required: true,
          min: toLocalInput(ticket.resolve_due_at),
          'data-current': ticket.resolve_due_at || '',
        }),
        h('p.hint', `现办结期限：${fmtTime(ticket.resolve_due_at) || '—'}（按本机时间填写）`),
      );
    case 'extension': {
      const x = ticket.extension;
      if (!x) return null;
      return h(
        'div.field.pending-box',
        h('p', '申请延至：', h('strong#action-extension-due', fmtTime(x.requested_due_at))),
        h('p', `现办结期限：${fmtTime(ticket.resolve_due_at) || '—'}`),
        x.reason ? h('p.pre', `理由：${x.reason}`) : null,
        x.unanswered
          ? h('p.overdue', '已超过批复期限')
          : ticket.decide_due_at
            ? h('p.hint', `请于 ${fmtTime(ticket.decide_due_at)} 前决定`)
            : null,
      );
    }
    case 'declined':
      if (!ticket.decline_reason) return null;
      return h(
        'div.field.pending-box',
        h('p.pre', `不予受理理由：${ticket.decline_reason}`),
        ticket.decide_due_at ? h('p.hint', `请于 ${fmtTime(ticket.decide_due_at)} 前作出复核决定`) : null,
      );
    case 'handler':
      return h(
        'div.field',
        h('label', { for: 'action-handler' }, '或交办单位 / 队伍'),
        h('input#action-handler', {
          name: 'handler',
          maxlength: 80,
          placeholder: '如：物业公司、党员突击队',
          value: ticket.assigned_handler || '',
        }),
      );
    default:
      return null;
  }
}

export function openActionDialog(action, ticket, events) {
  const spec = specOf(action, ticket);
  const dlg = document.getElementById('action-dialog');
  current = { action, ticket, submitting: false };
  const name = label('action', action);
  document.getElementById('action-title').textContent = `${name} · ${ticket.reference}`;
  document.getElementById('action-help').textContent = spec.help;
  mount(
    document.getElementById('action-fields'),
    spec.fields.map((f) => field(f, ticket, events)),
  );
  const submitBtn = document.getElementById('action-submit');
  submitBtn.textContent = spec.fields.length ? `确定${name}` : name;
  submitBtn.disabled = false;
  submitBtn.dataset.action = action;
  dlg.dataset.action = action;
  document.getElementById('action-error').textContent = '';
  if (!dlg.open) dlg.showModal();
  const first = dlg.querySelector(
    '#action-fields textarea, #action-fields select, #action-fields input',
  );
  if (first) first.focus();
  else submitBtn.focus();
  const picker = document.getElementById('action-assignee');
  if (picker) addColleagues(picker, ticket);
}

/// Adds my unit's active staff (`GET /org/units/{id}/staff`) to the assignee picker. On failure
/// the picker keeps the people it already offers.
async function addColleagues(select, ticket) {
  const unit = state.me?.org_unit?.id;
  if (!unit) return;
  let list;
  try {
    list = await client.get(`/org/units/${unit}/staff`);
  } catch {
    return;
  }
  if (!select.isConnected || !Array.isArray(list)) return;
  const have = new Set([...select.options].map((o) => o.value));
  for (const c of list) {
    if (have.has(String(c.id))) continue;
    select.appendChild(
      h('option', { value: String(c.id), selected: ticket.assignee?.id === c.id }, c.display_name),
    );
  }
  select.dataset.colleagues = 'loaded';
}

const val = (id) => {
  const el = document.getElementById(id);
  return el ? el.value.trim() : '';
};

/// The request body: only the fields this action takes (the API denies unknown fields).
function body(action) {
  const b = {};
  switch (action) {
    case 'acknowledge':
      if (val('action-note')) b.note = val('action-note');
      break;
    case 'comment':
      b.note = val('action-note');
      b.internal = !!document.getElementById('action-internal')?.checked;
      break;
    case 'assign': {
      const a = val('action-assignee');
      if (a) b.assignee_id = Number(a);
      if (val('action-handler')) b.handler = val('action-handler');
      break;
    }
    case 'escalate':
      b.reason = val('action-reason');
      b.note = val('action-note');
      break;
    case 'decline':
      b.reason = val('action-reason');
      break;
    case 'resolve':
    case 'return':
    case 'wait_on_resident':
    case 'urge':
    case 'take_over':
    case 'reject_extension':
      b.note = val('action-note');
      break;
    case 'transfer':
      b.compound_id = Number(val('action-compound'));
      b.note = val('action-note');
      break;
    case 'request_extension':
      b.note = val('action-note');
      b.due_at = fromLocalInput(val('action-due'));
      break;
    case 'confirm':
    case 'approve_extension':
    case 'uphold_decline':
    case 'overturn_decline':
      if (val('action-note')) b.note = val('action-note');
      break;
    default:
      break;
  }
  return b;
}

const FIELD_ID = { note: 'action-note', compound: 'action-compound', due: 'action-due' };

function missing(action, ticket) {
  const spec = specOf(action, ticket);
  if (action === 'assign' && !val('action-assignee') && !val('action-handler')) {
    return { id: 'action-assignee', msg: '请选择处理人或填写交办单位' };
  }
  for (const f of spec.fields) {
    if (!f.required) continue;
    const id = FIELD_ID[f.kind] || 'action-reason';
    const verb = f.kind === 'compound' || f.kind === 'reasonCode' ? '选择' : '填写';
    if (!val(id)) return { id, msg: `请${verb}${f.label.replace(/（.*?）/, '')}` };
  }
  if (action === 'request_extension') {
    const due = fromLocalInput(val('action-due'));
    if (!due) return { id: 'action-due', msg: '请填写正确的日期和时间' };
    if (ticket.resolve_due_at && new Date(due) <= new Date(ticket.resolve_due_at)) {
      return { id: 'action-due', msg: '申请的期限须晚于现办结期限' };
    }
  }
  return null;
}

async function submit() {
  if (!current || current.submitting) return;
  const { action, ticket } = current;
  const err = document.getElementById('action-error');
  const miss = missing(action, ticket);
  if (miss) {
    err.textContent = miss.msg;
    document.getElementById(miss.id)?.focus();
    return;
  }
  err.textContent = '';
  const btn = document.getElementById('action-submit');
  btn.disabled = true;
  current.submitting = true;
  const path = action.replace(/_/g, '-');
  try {
    const res = await client.post(`/tickets/${ticket.id}/${path}`, body(action));
    if (res.phone) state.phones.set(ticket.id, res.phone);
    // Re-render the ticket page first, then close: once the dialog is closed the page shows
    // the new state (tests wait for exactly that).
    try {
      if (onDone) await onDone(res.ticket, action);
    } finally {
      document.getElementById('action-dialog').close();
      toast(action === 'reveal_phone' ? `居民电话：${res.phone}` : `已${label('action', action)}`);
    }
  } catch (e) {
    // Keep what was typed; show the API's message in the dialog.
    err.textContent = errorText(e);
    toast(errorText(e), 'error');
    if (current) current.submitting = false;
    btn.disabled = false;
    if (e.status === 409 && onDone) onDone(null, action, e);
  }
}
