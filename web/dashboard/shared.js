// State and helpers shared by the modules of the street dashboard: the API client, the
// filters (kept in the hash: #/?from=&to=&community=&unit=&sort=, or #wall?…) and the number
// formats of tiles, charts and tables.

import { createClient } from '/static/common/api.js';
import { $, todayBeijing } from '/static/common/ui.js';

export const client = createClient('dashboard');
export const ALLOWED_ROLES = ['street_staff', 'community_staff', 'admin'];
const TZ = 'Asia/Shanghai';
export const SORTS = [
  'resolution_rate',
  'response_rate',
  'satisfaction_rate',
  'settled_in_compound_rate',
  'overdue',
  'tickets',
];
export const SORT_ZH = {
  resolution_rate: '解决率',
  response_rate: '响应率',
  satisfaction_rate: '满意率',
  settled_in_compound_rate: '小事不出小区率',
  overdue: '当前超时数',
  tickets: '工单数',
};
export const RATE_SORTS = ['response_rate', 'resolution_rate', 'satisfaction_rate', 'settled_in_compound_rate'];

export const state = {
  user: null,
  from: '',
  to: '',
  customRange: false,
  community: '',
  unit: 'community',
  sort: 'resolution_rate',
  wall: false,
  loads: 0,
  seq: 0,
  timer: null,
  data: null,
  communities: new Map(), // id → name
};

// ------------------------------------------------------------------------------------------
// Formatting
// ------------------------------------------------------------------------------------------

export function fmtRate(r) {
  return r === null || r === undefined ? '—' : (r * 100).toFixed(1) + '%';
}

export function fmtCount(n) {
  return n === null || n === undefined ? '—' : Number(n).toLocaleString('zh-CN');
}

/// Seconds → "3小时5分" / "25分" / "不足1分" / "52小时" (minutes dropped from a day on, so
/// that a tile stays readable); null → "—".
export function fmtDur(sec) {
  if (sec === null || sec === undefined) return '—';
  const s = Math.max(0, Math.round(sec));
  if (s < 60) return '不足1分';
  const hr = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (hr === 0) return `${m}分`;
  if (hr >= 24 || m === 0) return `${hr}小时`;
  return `${hr}小时${m}分`;
}

export const clockFmt = new Intl.DateTimeFormat('zh-CN', {
  timeZone: TZ,
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hour12: false,
});

export function nextDay(ymd) {
  const [y, m, d] = ymd.split('-').map(Number);
  const t = new Date(Date.UTC(y, m - 1, d + 1));
  return t.toISOString().slice(0, 10);
}

export function defaultRange() {
  const today = todayBeijing();
  return { from: today.slice(0, 8) + '01', to: today };
}

export const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;

// ------------------------------------------------------------------------------------------
// Hash: #/?from=&to=&community=&unit=&sort=  or  #wall?...
// ------------------------------------------------------------------------------------------

export function readHash() {
  const raw = location.hash.replace(/^#/, '');
  const i = raw.indexOf('?');
  const path = i < 0 ? raw : raw.slice(0, i);
  const p = new URLSearchParams(i < 0 ? '' : raw.slice(i + 1));
  const def = defaultRange();
  const from = p.get('from');
  const to = p.get('to');
  state.customRange = DATE_RE.test(from || '') && DATE_RE.test(to || '');
  state.from = state.customRange ? from : def.from;
  state.to = state.customRange ? to : def.to;
  state.community = /^\d+$/.test(p.get('community') || '') ? p.get('community') : '';
  state.unit = p.get('unit') === 'compound' ? 'compound' : 'community';
  state.sort = SORTS.includes(p.get('sort')) ? p.get('sort') : 'resolution_rate';
  return { wall: path === 'wall' || path === '/wall' };
}

export function writeHash() {
  const p = new URLSearchParams();
  if (state.customRange) {
    p.set('from', state.from);
    p.set('to', state.to);
  }
  if (state.community) p.set('community', state.community);
  if (state.unit !== 'community') p.set('unit', state.unit);
  if (state.sort !== 'resolution_rate') p.set('sort', state.sort);
  const q = p.toString();
  const hash = (state.wall ? '#wall' : '#/') + (q ? '?' + q : '');
  if (location.hash !== hash) history.replaceState(null, '', hash);
}

export function syncInputs() {
  $('#from').value = state.from;
  $('#to').value = state.to;
  const sel = $('#community');
  sel.value = state.community;
  if (sel.value !== state.community) {
    state.community = '';
    sel.value = '';
  }
  $('#rank-sort').value = state.sort;
  for (const b of document.querySelectorAll('.seg [data-unit]')) {
    b.setAttribute('aria-pressed', String(b.dataset.unit === state.unit));
  }
}

// ------------------------------------------------------------------------------------------
// Queries
// ------------------------------------------------------------------------------------------

export function statsQuery(extra = {}) {
  const p = new URLSearchParams({ from: state.from, to: state.to });
  if (state.community) p.set('community_id', state.community);
  for (const [k, v] of Object.entries(extra)) p.set(k, v);
  return p.toString();
}
