// Loading and showing the figures: every stats endpoint at once for the current filters, then
// each panel; the filter bar and the ranking controls start a new load.

import { $, toast, errorText } from '/static/common/ui.js';
import { client, state, DATE_RE, clockFmt, defaultRange, statsQuery, writeHash, syncInputs } from './shared.js';
import { renderKpis, renderOverdue, renderSources } from './figures.js';
import { renderTrend, renderCategories, renderFlows } from './charts.js';
import { renderRanking } from './rankings.js';
import { loadLedger } from './ledger.js';

function setBusy(on) {
  document.body.classList.toggle('busy', on);
  $('#apply').disabled = on;
}

export async function loadAll({ quiet = false } = {}) {
  const seq = ++state.seq;
  setBusy(true);
  try {
    const q = statsQuery();
    const [summary, trend, categories, flows, ranking, overdue, sources] = await Promise.all([
      client.get('/stats/summary?' + q),
      client.get('/stats/trend?' + q),
      client.get('/stats/categories?' + q),
      client.get('/stats/flows?' + q),
      client.get('/stats/ranking?' + statsQuery({ unit: state.unit, sort: state.sort })),
      client.get('/stats/overdue?' + q),
      client.get('/stats/sources?' + q),
    ]);
    if (seq !== state.seq) return;
    state.data = {
      summary,
      trend,
      categories,
      flows,
      ranking,
      overdue,
      sources,
      unit: state.unit,
      sort: state.sort,
    };
    $('#filter-error').hidden = true;
    renderAll();
    loadLedger();
    state.loads += 1;
    document.body.dataset.loaded = String(state.loads);
    $('#loaded').textContent = String(state.loads);
    $('#last-updated').textContent = '更新于 ' + clockFmt.format(new Date());
    $('#last-updated').classList.remove('stale');
  } catch (e) {
    if (seq !== state.seq) return;
    if (e.status === 401) return; // onSignedOut shows the sign-in form
    if (quiet) {
      $('#last-updated').textContent = `刷新失败 ${clockFmt.format(new Date())}，30 秒后重试`;
      $('#last-updated').classList.add('stale');
    } else if (e.status === 422 || e.status === 404) {
      showFilterError(errorText(e));
    } else {
      toast(errorText(e), 'error');
    }
  } finally {
    if (seq === state.seq) setBusy(false);
  }
}

function showFilterError(msg) {
  const el = $('#filter-error');
  el.textContent = msg;
  el.hidden = false;
}

export function onApply() {
  const from = $('#from').value;
  const to = $('#to').value;
  if (!DATE_RE.test(from) || !DATE_RE.test(to)) {
    showFilterError('请选择开始和结束日期');
    return;
  }
  if (from > to) {
    showFilterError('开始日期不能晚于结束日期');
    return;
  }
  const def = defaultRange();
  state.from = from;
  state.to = to;
  state.customRange = !(from === def.from && to === def.to);
  state.community = $('#community').value;
  $('#filter-error').hidden = true;
  writeHash();
  loadAll();
}

export function onRankingChange(unit, sort) {
  state.unit = unit;
  state.sort = sort;
  syncInputs();
  writeHash();
  loadAll();
}

/// Shows the last answers in every panel (also after the wall changes the layout).
export function renderAll() {
  const d = state.data;
  if (!d) return;
  const cname = state.community ? state.communities.get(state.community) || `社区 ${state.community}` : '';
  const scope =
    state.user.role === 'community_staff'
      ? state.user.org_unit?.name || ''
      : cname || (state.user.role === 'admin' ? '全部街道' : '全部社区');
  $('#range-text').textContent = `统计区间 ${state.from} 至 ${state.to}（北京时间）· ${scope}；在办、超时为此刻数据`;
  renderKpis(d);
  renderOverdue(d.overdue);
  renderTrend(d.trend);
  renderCategories(d.categories);
  renderSources(d.sources);
  renderRanking(d.ranking, d.unit, d.sort);
  renderFlows(d.flows);
}

