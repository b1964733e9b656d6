// Exports: the tickets (CSV / XLSX) and the ranking (CSV / XLSX) under the current filters.

import { $, h, toast, errorText } from '/static/common/ui.js';
import { label } from '/static/common/labels.js';
import { client, state, SORT_ZH, nextDay, statsQuery } from './shared.js';

function ticketExportQuery() {
  // /stats/tickets.* take the filters of GET /tickets (created_from / created_to instants), not
  // from / to: the range is the same Beijing days as the dashboard.
  const p = new URLSearchParams({
    created_from: `${state.from}T00:00:00+08:00`,
    created_to: `${nextDay(state.to)}T00:00:00+08:00`,
    sort: 'created',
  });
  if (state.community) p.set('community_id', state.community);
  return p.toString();
}

export async function download(btn, path, filename) {
  btn.disabled = true;
  try {
    const res = await client.fetchRaw(path);
    const blob = await res.blob();
    const url = URL.createObjectURL(blob);
    const a = h('a', { href: url, download: filename, style: 'display:none' });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 30_000);
    if (res.headers.get('x-export-truncated') === 'true') {
      toast('数据过多，仅导出了前 50,000 条', 'error');
    } else {
      toast('已下载 ' + filename);
    }
  } catch (e) {
    toast('导出失败：' + errorText(e), 'error');
  } finally {
    btn.disabled = false;
  }
}

function exportTickets(ext, btn) {
  const name = `工单明细_${state.from}至${state.to}.${ext}`;
  download(btn, `/stats/tickets.${ext}?${ticketExportQuery()}`, name);
}

function exportRanking(ext, btn) {
  const name = `${label('org_kind', state.unit)}排名_${SORT_ZH[state.sort]}_${state.from}至${state.to}.${ext}`;
  download(btn, `/stats/ranking.${ext}?${statsQuery({ unit: state.unit, sort: state.sort })}`, name);
}


export function wireExports() {
  $('#export-tickets-csv').addEventListener('click', (e) => exportTickets('csv', e.currentTarget));
  $('#export-tickets-xlsx').addEventListener('click', (e) => exportTickets('xlsx', e.currentTarget));
  $('#export-ranking-csv').addEventListener('click', (e) => exportRanking('csv', e.currentTarget));
  $('#export-ranking-xlsx').addEventListener('click', (e) => exportRanking('xlsx', e.currentTarget));
}
