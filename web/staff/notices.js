// The unit's notices: my in-app inbox (unread first), read one / read all.

import { h, mount, toast, errorText, fmtTime } from '/static/common/ui.js';
import { client, state, qs } from './shared.js';
import { lastQueueHash } from './queue.js';
import { notificationSettingsCard } from '/static/common/settings.js';

let next = null;

export function setUnread(n) {
  state.unread = Math.max(0, n | 0);
  const badge = document.getElementById('unread-count');
  if (!badge) return;
  badge.textContent = state.unread > 99 ? '99+' : String(state.unread);
  badge.classList.toggle('hidden', state.unread === 0);
  document.getElementById('nav-notices')?.setAttribute('aria-label', `通知，${state.unread} 条未读`);
}

export async function showNotices(main) {
  next = null;
  mount(
    main,
    h(
      'section.notices-view',
      h(
        'div.ticket-nav',
        h('button#back', { type: 'button', onclick: () => (location.hash = lastQueueHash()) }, '← 返回队列'),
        h('h2.grow', '通知'),
        h('button#read-all', { type: 'button', onclick: readAll }, '全部已读'),
      ),
      h('ul#notices-list.notices', h('li.empty', '加载中…')),
      h('div.more-wrap', h('button#notices-more.hidden', { type: 'button', onclick: () => load(true) }, '加载更多')),
      notificationSettingsCard(client, { resident: false }),
    ),
  );
  await load(false);
}

async function load(more) {
  const list = document.getElementById('notices-list');
  if (!list) return;
  try {
    const page = await client.get('/notifications' + qs({ limit: 30, cursor: more ? next : undefined }));
    if (!more) list.replaceChildren();
    next = page.next_cursor || null;
    setUnread(page.unread);
    if (!more && !page.items.length) list.append(h('li.empty', '暂无通知'));
    list.append(...page.items.map(item));
    document.getElementById('notices-more')?.classList.toggle('hidden', !next);
  } catch (e) {
    if (!more) mount(list, h('li.empty', errorText(e)));
    else toast(errorText(e), 'error');
  }
}

function item(n) {
  const li = h(
    'li.notice-item',
    { class: 'notice-item' + (n.read ? '' : ' is-unread'), 'data-id': String(n.id), 'data-ticket': String(n.ticket_id) },
    h(
      'a.notice-link',
      {
        href: `#/t/${n.ticket_id}`,
        onclick: () => {
          if (!n.read) markRead(n, li);
        },
      },
      h('div.notice-title', n.read ? null : h('span.dot', { 'aria-label': '未读' }), n.title),
      h('div.notice-body', n.body),
      h('div.when', fmtTime(n.created_at)),
    ),
  );
  return li;
}

async function markRead(n, li) {
  try {
    await client.post(`/notifications/${n.id}/read`);
    n.read = true;
    li.classList.remove('is-unread');
    li.querySelector('.dot')?.remove();
    setUnread(state.unread - 1);
  } catch (e) {
    /* not important enough to interrupt the secretary */
  }
}

async function readAll() {
  try {
    await client.post('/notifications/read-all');
    setUnread(0);
    for (const li of document.querySelectorAll('.notice-item.is-unread')) {
      li.classList.remove('is-unread');
      li.querySelector('.dot')?.remove();
    }
    toast('已全部标为已读');
  } catch (e) {
    toast(errorText(e), 'error');
  }
}
