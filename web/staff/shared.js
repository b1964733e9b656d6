// State and helpers shared by the modules of the secretaries' page.

import { createClient } from '/static/common/api.js';
import { h } from '/static/common/ui.js';
import { label, hasLabel, reasonLabel } from '/static/common/labels.js';

export const client = createClient('staff');

/// Filled at sign-in: the user (GET /me), categories and the part of the org tree they see.
export const state = {
  me: null,
  level: null,
  categories: [],
  communities: [], // [{id, name, compounds: [{id, name}]}] in the caller's scope
  compounds: [], // [{id, name, communityId}]
  /// The whole public org tree (GET /org/tree): a transfer may go to any compound of the
  /// ticket's community, also for a compound secretary who sees only their own compound.
  tree: [],
  unread: 0,
  /// Ticket ids that arrived since the page was opened and were not opened yet.
  fresh: new Set(),
  /// Phones revealed with reveal_phone during this session, by ticket id (memory only).
  phones: new Map(),
  /// Where a ticket's back button goes when not to the queue (the callback queue it came from).
  backTo: null,
};

export const LEVEL_OF_ROLE = {
  compound_staff: 'compound',
  community_staff: 'community',
  street_staff: 'street',
};

/// Plain words for an event's `reason` (assign: `user:ID`, confirm: `rating:N`).
export function reasonText(action, reason) {
  if (!reason) return '';
  if (action === 'assign' && reason.startsWith('user:')) return '';
  if (reason.startsWith('rating:')) return `评分 ${reason.slice(7)} 星`;
  if (action === 'decline') return reason;
  if (action === 'callback' || action === 'callback_reopen') return callbackReasonText(reason);
  return reasonLabel(reason) || reason;
}

/// The coded reason of a callback entry in words: the verdict, the callback's reason or flag,
/// `pressed`, or several of them joined by commas / semicolons.
export function callbackReasonText(reason) {
  const words = String(reason)
    .split(/[,;]/)
    .map((part) => {
      const code = part.includes(':') ? part.slice(part.indexOf(':') + 1) : part;
      for (const set of ['callback_verdict', 'callback_reason', 'callback_flag', 'callback_state']) {
        if (hasLabel(set, code)) return label(set, code);
      }
      if (code === 'pressed' || part === 'pressed:true') return '居民表示曾被诱导';
      if (part === 'pressed:false') return '居民表示未被诱导';
      return reasonLabel(code) || part;
    });
  return words.join('，');
}

/// Random key for Idempotency-Key (crypto.randomUUID needs a secure context; this does not).
export function newKey() {
  if (crypto.randomUUID && window.isSecureContext) return crypto.randomUUID();
  const a = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(a, (b) => b.toString(16).padStart(2, '0')).join('');
}

/// '?a=1&b=2' from an object, leaving out empty values.
export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    p.set(k, String(v));
  }
  const s = p.toString();
  return s ? '?' + s : '';
}

/// Start of a Beijing calendar day (YYYY-MM-DD) as an RFC 3339 UTC instant.
export function beijingDayStart(day, addDays = 0) {
  const t = new Date(`${day}T00:00:00+08:00`).getTime() + addDays * 86400000;
  return new Date(t).toISOString();
}

// ---- live countdowns -------------------------------------------------------------------------
// The server says how many seconds are left (`due_in_seconds`) at the moment it answered; the
// deadline is kept as "answer time + seconds" in the browser's clock, so a device whose clock is
// wrong still counts down correctly.

/// A `.countdown` element for ticket `t` fetched at `fetchedAt` (ms); it ticks by itself.
export function countdownEl(t, fetchedAt) {
  const el = h('span.countdown');
  if (t.waiting_on_resident) {
    el.classList.add('paused');
    el.textContent = `${label('action', 'wait_on_resident')} · 暂停计时`;
    return el;
  }
  if (t.due_in_seconds === null || t.due_in_seconds === undefined) {
    el.classList.add('idle');
    el.textContent = t.overdue ? '已超时' : label('status', t.status) || '—';
    if (t.overdue) el.classList.add('overdue');
    return el;
  }
  el.dataset.deadline = String(fetchedAt + t.due_in_seconds * 1000);
  // 即将超时 from the clock's warning point in working time (the API's rule), not a fixed 2 h.
  if (t.due_soon_in_seconds !== null && t.due_soon_in_seconds !== undefined) {
    el.dataset.soon = String(fetchedAt + t.due_soon_in_seconds * 1000);
  }
  el.dataset.clock = { open: '受理', decline_review: '复核' }[t.status] || '办结';
  if (t.overdue) el.dataset.marked = '1';
  paint(el, Date.now());
  return el;
}

/// "3小时05分08秒" / "2天4小时10分": seconds while under a day, so the clock visibly ticks.
export function fmtLive(seconds) {
  const s = Math.floor(Math.abs(seconds));
  const d = Math.floor(s / 86400);
  const hr = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const two = (n) => String(n).padStart(2, '0');
  if (d > 0) return `${d}天${hr}小时${two(m)}分${two(sec)}秒`;
  if (hr > 0) return `${hr}小时${two(m)}分${two(sec)}秒`;
  if (m > 0) return `${m}分${two(sec)}秒`;
  return `${sec}秒`;
}

function paint(el, now) {
  const left = (Number(el.dataset.deadline) - now) / 1000;
  const clock = el.dataset.clock || '';
  const breached = left < 0 || el.dataset.marked === '1';
  const text =
    left >= 0 ? `${clock}剩余 ${fmtLive(left)}` : `${clock}已超时 ${fmtLive(left)}`;
  if (el.textContent !== text) el.textContent = text;
  el.classList.toggle('overdue', breached);
  const soonAt = el.dataset.soon ? Number(el.dataset.soon) : Infinity;
  el.classList.toggle('soon', !breached && now >= soonAt);
}

export function tickCountdowns() {
  const now = Date.now();
  for (const el of document.querySelectorAll('.countdown[data-deadline]')) paint(el, now);
}

/// `status_text` is worded for the resident (「已办结，待您确认」); staff read whose turn it is.
export function staffStatusText(t) {
  if (t.status === 'resolved') return `${label('level', t.level)}已办结，待居民确认`;
  // Nothing is called up *to* the compound: open there after a call up means it came back.
  if (t.status === 'open' && t.level === 'compound' && t.escalation_count > 0) {
    return `上级退回，待${label('level', 'compound')}受理`;
  }
  return (t.status_text || '').replace('待您确认', '待居民确认');
}

/// The compounds of community `communityId` in the org tree: [{id, name}], archived ones left out.
export function compoundsOfCommunity(communityId) {
  for (const street of state.tree || []) {
    for (const community of street.children || []) {
      if (community.id !== communityId) continue;
      return (community.children || [])
        .filter((c) => c.kind === 'compound' && !c.archived)
        .map((c) => ({ id: c.id, name: c.name }));
    }
  }
  return [];
}

/// The name of org unit `id` in the tree ('' when unknown).
export function unitName(id) {
  const find = (nodes) => {
    for (const n of nodes || []) {
      if (n.id === id) return n.name;
      const c = find(n.children);
      if (c) return c;
    }
    return '';
  };
  return find(state.tree);
}

/// A badge naming how the call came in, for calls not made by the resident in the app.
export function sourceBadge(t) {
  if (!t.source || t.source === 'app') return null;
  return h('span.badge.source', { 'data-source': t.source }, label('source', t.source));
}

/// "YYYY-MM-DDTHH:MM" in the browser's zone, for a datetime-local input.
export function toLocalInput(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  const two = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}`;
}

/// A datetime-local value as RFC 3339 with the browser's offset ("2026-11-27T14:05:00+08:00").
export function fromLocalInput(value) {
  const d = new Date(value);
  if (!value || Number.isNaN(d.getTime())) return null;
  const two = (n) => String(Math.floor(Math.abs(n))).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  return `${value.length === 16 ? value + ':00' : value}${sign}${two(off / 60)}:${two(off % 60)}`;
}

export function urgencyBadge(t) {
  return t.urgency === 'urgent' ? h('span.badge.red', label('urgency', 'urgent')) : null;
}
