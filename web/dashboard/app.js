// Street committee dashboard (/dashboard/): KPI tiles, charts, overdue list, CSV/XLSX exports
// and a dark full-screen wall mode (数据大屏, /dashboard/#wall) that refreshes itself every 30 s;
// with live updates (GET /api/v1/stream) a ticket change refreshes the figures within 30 s.
// Numbers come from GET /api/v1/stats/*; definitions in docs/metrics.md. This module signs in,
// fills the filters and wires the controls; the panels live in figures.js, charts.js,
// rankings.js and exports.js.

import { $, h, mount, toast, errorText } from '/static/common/ui.js';
import { label, loadLabels } from '/static/common/labels.js';
import { passwordSignIn } from '/static/common/signin.js';
import { client, state, ALLOWED_ROLES, readHash, syncInputs } from './shared.js';
import { buildKpis } from './figures.js';
import { disposeCharts, echartsReady, followResizes } from './charts.js';
import { wireExports } from './exports.js';
import { wireLedger, labelLedger } from './ledger.js';
import { loadAll, onApply, onRankingChange } from './load.js';
import { setWall, stopTimer, isFullscreen, requestFullscreen, updateFullscreenButton } from './wall.js';
import { openStream } from '/static/common/stream.js';

/// Live updates: a ticket change in scope reloads the figures quietly, at most once per 30 s (a
/// busy street changes tickets every few seconds; the numbers are about days and months).
const LIVE_MIN_MS = 30_000;
let live = null;
let liveTimer = null;
let lastLive = 0;

function liveRefresh() {
  if (liveTimer) return;
  const wait = Math.max(0, lastLive + LIVE_MIN_MS - Date.now());
  liveTimer = setTimeout(() => {
    liveTimer = null;
    if (!state.user || document.hidden) return;
    lastLive = Date.now();
    loadAll({ quiet: true });
  }, wait);
}

function stopLive() {
  if (live) live.stop();
  live = null;
  clearTimeout(liveTimer);
  liveTimer = null;
}

async function enter(me) {
  state.user = me;
  buildKpis();
  labelLedger();
  for (const b of document.querySelectorAll('.seg [data-unit]')) {
    b.textContent = label('org_kind', b.dataset.unit);
  }
  const unit = me.org_unit;
  const scopeName = me.role === 'admin' || !unit ? '全部街道' : unit.name;
  $('#scope-name').textContent = scopeName;
  document.title = `${scopeName} · 数据看板 · 呼应`;
  await fillCommunities(me);
  const { wall } = readHash();
  syncInputs();
  setWall(wall, false);
  await loadAll();
  lastLive = Date.now();
  stopLive();
  live = openStream(client, {
    onEvent: (name) => {
      if (name === 'tickets' || name === 'resync') liveRefresh();
    },
  });
}

async function fillCommunities(user) {
  const sel = $('#community');
  state.communities.clear();
  let tree = [];
  try {
    tree = await client.get('/org/tree');
  } catch (e) {
    toast('社区列表加载失败：' + errorText(e), 'error');
  }
  const unitId = user.org_unit ? user.org_unit.id : null;
  const options = [];
  if (user.role === 'community_staff') {
    const name = user.org_unit ? user.org_unit.name : '本社区';
    options.push(h('option', { value: '' }, name));
    sel.disabled = true;
    sel.title = '社区工作人员只能查看本社区';
  } else {
    sel.disabled = false;
    options.push(h('option', { value: '' }, user.role === 'admin' ? '全部社区（全部街道）' : '全部社区'));
    const streets = (tree || []).filter(
      (s) => s.kind === 'street' && (user.role === 'admin' || s.id === unitId),
    );
    for (const s of streets) {
      const opts = (s.children || [])
        .filter((c) => c.kind === 'community')
        .map((c) => {
          state.communities.set(String(c.id), c.name);
          return h('option', { value: String(c.id) }, c.name);
        });
      if (user.role === 'admin' && streets.length > 1) {
        options.push(h('optgroup', { label: s.name }, opts));
      } else {
        options.push(...opts);
      }
    }
  }
  mount(sel, options);
}

function leave() {
  stopTimer();
  stopLive();
  state.user = null;
  document.body.classList.remove('wall');
}

function forget() {
  state.data = null;
  disposeCharts();
  history.replaceState(null, '', '#/');
}

const signIn = passwordSignIn(client, {
  accept: (me) =>
    ALLOWED_ROLES.includes(me.role) ? null : '该账号没有数据看板权限（仅限街道、社区工作人员和管理员）',
  enter,
  leave,
  forget,
});

function wire() {
  $('#apply').addEventListener('click', onApply);
  for (const id of ['from', 'to']) {
    $('#' + id).addEventListener('keydown', (e) => {
      if (e.key === 'Enter') onApply();
    });
  }
  $('#wall').addEventListener('click', () => setWall(!state.wall, true));
  $('#fullscreen').addEventListener('click', requestFullscreen);
  document.addEventListener('fullscreenchange', updateFullscreenButton);
  for (const b of document.querySelectorAll('.seg [data-unit]')) {
    b.addEventListener('click', () => onRankingChange(b.dataset.unit, state.sort));
  }
  $('#rank-sort').addEventListener('change', (e) => onRankingChange(state.unit, e.target.value));
  wireExports();
  wireLedger();
  window.addEventListener('hashchange', () => {
    if (!state.user) return;
    const { wall } = readHash();
    syncInputs();
    setWall(wall, false);
    loadAll();
  });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && state.wall && !isFullscreen() && !e.target.closest('input,select')) {
      setWall(false, true);
    }
  });
  followResizes();
}

wire();
// The labels load while ECharts does; start() waits for both (and tries the labels again if need be).
loadLabels().catch(() => {});
echartsReady().then(() => signIn.start());
