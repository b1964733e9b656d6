// Resident page (`/`): sign in with phone + SMS code, call (submit a request), follow my
// requests, confirm or dispute, read notices. Hash routes:
//   #/list (default)  my requests      #/new  new request
//   #/t/<id>          a request        #/notices  notices

import { h, mount, toast, errorText, fmtShort, fmtTime } from '/static/common/ui.js';
import { label, loadLabels } from '/static/common/labels.js';
import { wasSignedIn } from '/static/common/api.js';
import { client, statusBadge, setTitle, live } from './ctx.js';
import { newRequestView, resetOnSignOut } from './newreq.js';
import { showTicket, leaveTicket, ticketsChanged } from './ticket.js';
import { openStream } from '/static/common/stream.js';
import { privacyCard } from './privacy.js';
import { notificationSettingsCard } from '/static/common/settings.js';

const view = document.getElementById('view');
const tabbar = document.getElementById('tabbar');
const logoutBtn = document.getElementById('logout');
const backBtn = document.getElementById('back');
const badge = document.getElementById('unread-count');

let renderSeq = 0; // each render gets a number; late answers of an older render are dropped
let navigatedInApp = false;

// ---------------------------------------------------------------------------------------------
// Sign-in

// ---------------------------------------------------------------------------------------------
// Live updates: my tickets' changes and new notices as they happen (polling when it is down)

let stream = null;

function startLive() {
  if (stream) return;
  stream = openStream(client, {
    onUp: () => (live.up = true),
    onDown: () => (live.up = false),
    onEvent: (name, data) => {
      if (name === 'notice') refreshUnread();
      if (name === 'tickets' || name === 'resync') {
        const ids = name === 'tickets' ? data.ids || [] : null;
        const hash = location.hash;
        if (/^#\/t\/\d+$/.test(hash)) ticketsChanged(ids || [Number(hash.slice(4))]);
        // The list shows statuses: it follows unless the resident is in the middle of something.
        else if (currentTab(hash) === 'nav-list' && !document.querySelector('dialog[open]')) route();
      }
    },
  });
}

function stopLive() {
  if (stream) stream.stop();
  stream = null;
  live.up = false;
}

function showLogin(message) {
  renderSeq += 1;
  leaveTicket();
  stopLive();
  setTitle('呼应');
  tabbar.classList.add('hidden');
  logoutBtn.classList.add('hidden');
  backBtn.classList.add('hidden');
  view.classList.remove('has-actions');
  document.body.classList.add('signed-out');

  const phone = h('input#phone', {
    type: 'tel',
    inputmode: 'numeric',
    autocomplete: 'tel',
    maxlength: '16',
    placeholder: '11 位手机号',
    required: true,
  });
  const code = h('input#code', {
    type: 'text',
    inputmode: 'numeric',
    autocomplete: 'one-time-code',
    maxlength: '6',
    placeholder: '6 位验证码',
    required: true,
  });
  const send = h('button#send-code', { type: 'button' }, '获取验证码');
  const login = h('button#login.primary.block', { type: 'submit' }, '登录');
  let countdown = null;

  send.addEventListener('click', async () => {
    const p = phone.value.replace(/[\s-]/g, '');
    if (!/^(\+?86)?1[3-9]\d{9}$/.test(p)) {
      toast('请输入正确的 11 位手机号', 'error');
      return phone.focus();
    }
    send.disabled = true;
    try {
      const r = await client.requestCode(p);
      toast('验证码已发送，请查收短信');
      code.focus();
      let left = (r && r.resend_after) || 60;
      send.textContent = `${left} 秒后重发`;
      countdown = setInterval(() => {
        left -= 1;
        if (left <= 0 || !send.isConnected) {
          clearInterval(countdown);
          send.disabled = false;
          send.textContent = '重新获取';
        } else {
          send.textContent = `${left} 秒后重发`;
        }
      }, 1000);
    } catch (e) {
      send.disabled = false;
      toast(errorText(e), 'error');
    }
  });

  const form = h(
    'form#login-form.card.login',
    {
      novalidate: true,
      onsubmit: async (e) => {
        e.preventDefault();
        const p = phone.value.replace(/[\s-]/g, '');
        const c = code.value.trim();
        if (!p) return phone.focus();
        if (!/^\d{6}$/.test(c)) {
          toast('请输入短信中的 6 位验证码', 'error');
          return code.focus();
        }
        login.disabled = true;
        try {
          await client.loginWithCode(p, c);
          clearInterval(countdown);
          route();
        } catch (err) {
          toast(errorText(err), 'error');
        } finally {
          login.disabled = false;
        }
      },
    },
    h('h2', '手机号登录'),
    h('p.hint', '首次使用无需注册，验证码登录即可反映问题、查看办理进度。'),
    h('label', { for: 'phone' }, '手机号'),
    phone,
    h('label', { for: 'code' }, '验证码'),
    h('div.row', h('div.grow', code), send),
    h('div.gap'),
    login,
  );
  mount(
    view,
    h(
      'div.welcome',
      h('div.hero', h('div.hero-title', '群众呼 · 支部应'), h('p', '小区、社区、街道三级党组织限时响应您的诉求')),
      message ? h('p.card.notice-warn', message) : null,
      form,
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// Unread notices badge

async function refreshUnread() {
  try {
    const me = await client.get('/me');
    setUnread(me.unread_notifications || 0);
  } catch (e) {
    /* shown on the next look */
  }
}
function setUnread(n) {
  badge.textContent = n > 99 ? '99+' : String(n);
  badge.classList.toggle('hidden', !n);
  document.getElementById('nav-notices').setAttribute('aria-label', n ? `消息，${n} 条未读` : '消息');
}

// ---------------------------------------------------------------------------------------------
// My requests

const FILTERS = [
  ['all', '全部', null],
  ['active', '办理中', 'open,acknowledged,decline_review'],
  ['resolved', '待我确认', 'resolved'],
  ['done', '已结束', 'closed,declined,withdrawn'],
];
let listFilter = 'all';

async function showList(seq) {
  setTitle('我的诉求');
  const list = h('div#my-requests.requests', { 'aria-live': 'polite' }, h('p.empty', '正在加载…'));
  const more = h('button#list-more.block.hidden', { type: 'button' }, '加载更多');
  const tabs = h(
    'div.segmented',
    { role: 'tablist' },
    FILTERS.map(([key, caption]) =>
      h(
        'button',
        {
          type: 'button',
          role: 'tab',
          'data-filter': key,
          'aria-selected': String(key === listFilter),
          class: key === listFilter ? 'on' : '',
          onclick: () => {
            listFilter = key;
            route();
          },
        },
        caption,
      ),
    ),
  );
  mount(
    view,
    h('a.btn.primary.block.call-btn', { href: '#/new' }, '＋ 我要反映问题'),
    tabs,
    list,
    more,
  );
  const status = FILTERS.find((f) => f[0] === listFilter)[2];
  let cursor = null;
  let first = true;
  const load = async () => {
    const q = new URLSearchParams({ limit: '20', sort: 'created' });
    if (status) q.set('status', status);
    if (cursor) q.set('cursor', cursor);
    more.disabled = true;
    try {
      const page = await client.get('/tickets?' + q);
      if (seq !== renderSeq) return;
      if (first) list.replaceChildren();
      first = false;
      if (!page.items.length && !list.children.length) {
        list.appendChild(
          h(
            'div.empty',
            h('p', listFilter === 'all' ? '您还没有反映过问题' : '没有这类诉求'),
            listFilter === 'all' ? h('a.btn.primary', { href: '#/new' }, '去反映') : null,
          ),
        );
      }
      for (const t of page.items) list.appendChild(requestItem(t));
      list.dataset.loaded = 'true';
      list.dataset.total = String(page.total);
      cursor = page.next_cursor;
      more.classList.toggle('hidden', !cursor);
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener('click', () => load().catch((e) => toast(errorText(e), 'error')));
  await load();
}

function requestItem(t) {
  const running = (t.status === 'open' || t.status === 'acknowledged') && t.due_in_seconds != null;
  return h(
    'a.request-item',
    { href: `#/t/${t.id}`, 'data-id': String(t.id), 'data-status': t.status },
    h('div.ri-top', h('span.ri-title', t.title), statusBadge(t)),
    h(
      'div.ri-meta',
      h('span.ref', t.reference),
      ' · ',
      t.compound.name,
      ' · ',
      t.category.name,
      t.urgency === 'urgent' ? [' · ', h('span.urgent', label('urgency', 'urgent'))] : null,
    ),
    h(
      'div.ri-meta',
      '提交于 ',
      fmtShort(t.created_at),
      running && t.overdue ? [' · ', h('span.overdue', '已超时')] : null,
      t.status === 'resolved' ? [' · ', h('span.soon', '请确认办理结果')] : null,
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// Notices

async function showNotices(seq) {
  setTitle('消息');
  const list = h('div#notices-list.notices', h('p.empty', '正在加载…'));
  const readAll = h('button#notices-read-all', { type: 'button' }, '全部已读');
  const more = h('button#notices-more.block.hidden', { type: 'button' }, '加载更多');
  mount(
    view,
    h('div.list-head', h('h2', '消息通知'), readAll),
    list,
    more,
    notificationSettingsCard(client, { resident: true }),
    privacyCard({
      onErased: () => {
        resetOnSignOut();
        setUnread(0);
        showLogin('账号已注销，您的个人信息已删除');
      },
    }),
  );
  let cursor = null;
  let first = true;
  const load = async () => {
    const q = new URLSearchParams({ limit: '30' });
    if (cursor) q.set('cursor', cursor);
    const page = await client.get('/notifications?' + q);
    if (seq !== renderSeq) return;
    setUnread(page.unread);
    if (first) list.replaceChildren();
    first = false;
    if (!page.items.length && !list.children.length) list.appendChild(h('p.empty', '暂无消息'));
    for (const n of page.items) list.appendChild(noticeItem(n));
    list.dataset.loaded = 'true';
    cursor = page.next_cursor;
    more.classList.toggle('hidden', !cursor);
    readAll.disabled = !page.unread;
  };
  readAll.addEventListener('click', async () => {
    readAll.disabled = true;
    try {
      await client.post('/notifications/read-all');
      for (const el of list.querySelectorAll('.notice-item.unread')) el.classList.remove('unread');
      setUnread(0);
    } catch (e) {
      toast(errorText(e), 'error');
      readAll.disabled = false;
    }
  });
  more.addEventListener('click', () => load().catch((e) => toast(errorText(e), 'error')));
  await load();
}

function noticeItem(n) {
  const el = h(
    'a.notice-item',
    {
      href: `#/t/${n.ticket_id}`,
      'data-id': String(n.id),
      'data-ticket-id': String(n.ticket_id),
      class: 'notice-item' + (n.read ? '' : ' unread'),
      onclick: (e) => {
        if (n.read) return;
        // Mark read first (quickly), then follow the link.
        e.preventDefault();
        n.read = true;
        el.classList.remove('unread');
        client
          .post(`/notifications/${n.id}/read`)
          .catch(() => {})
          .finally(() => {
            location.hash = `#/t/${n.ticket_id}`;
          });
      },
    },
    h('div.ni-top', n.read ? null : h('span.dot', { 'aria-label': '未读' }), h('span.ni-title', n.title), h('span.when', fmtShort(n.created_at))),
    h('div.ni-body', n.body),
  );
  el.title = fmtTime(n.created_at);
  return el;
}

// ---------------------------------------------------------------------------------------------
// Router

function currentTab(hash) {
  if (hash.startsWith('#/new')) return 'nav-new';
  if (hash.startsWith('#/notices')) return 'nav-notices';
  if (hash.startsWith('#/list') || hash === '' || hash === '#/' || hash === '#') return 'nav-list';
  return null;
}

async function route() {
  const seq = ++renderSeq;
  const isCurrent = () => seq === renderSeq;
  if (!client.signedIn) return showLogin();
  document.body.classList.remove('signed-out');
  leaveTicket();
  tabbar.classList.remove('hidden');
  logoutBtn.classList.remove('hidden');
  view.classList.remove('has-actions');
  const hash = location.hash;
  const tab = currentTab(hash);
  for (const id of ['nav-list', 'nav-new', 'nav-notices']) {
    const el = document.getElementById(id);
    if (id === tab) el.setAttribute('aria-current', 'page');
    else el.removeAttribute('aria-current');
  }
  const m = hash.match(/^#\/t\/(\d+)$/);
  backBtn.classList.toggle('hidden', !m);
  window.scrollTo(0, 0);
  try {
    if (!(await client.resume())) return showLogin();
    if (!isCurrent()) return;
    startLive();
    refreshUnread();
    if (m) {
      setTitle('诉求详情');
      mount(view, h('p.empty', '正在加载…'));
      await showTicket(view, Number(m[1]), isCurrent);
    } else if (tab === 'nav-new') {
      setTitle('我要反映');
      mount(view, h('p.empty', '正在加载…'));
      const form = await newRequestView();
      if (isCurrent()) mount(view, form);
    } else if (tab === 'nav-notices') {
      await showNotices(seq);
    } else {
      await showList(seq);
    }
  } catch (e) {
    if (!isCurrent()) return;
    if (e.status === 401) return showLogin('登录已过期，请重新登录');
    const retry = h('button.block', { type: 'button', onclick: () => route() }, '重试');
    mount(
      view,
      h(
        'div.card.error-box',
        h('p', e.status === 404 ? '找不到这条诉求，可能已被删除或不属于您。' : errorText(e)),
        retry,
        h('a.btn.block', { href: '#/list' }, '返回我的诉求'),
      ),
    );
  }
}

client.onSignedOut = () => showLogin('登录已过期，请重新登录');

logoutBtn.addEventListener('click', async () => {
  logoutBtn.disabled = true;
  await client.logout();
  resetOnSignOut();
  setUnread(0);
  logoutBtn.disabled = false;
  toast('已退出登录');
  showLogin();
});

backBtn.addEventListener('click', () => {
  if (navigatedInApp && history.length > 1) history.back();
  else location.hash = '#/list';
});

window.addEventListener('hashchange', () => {
  navigatedInApp = true;
  route();
});

// Coming back to the tab: fresher numbers.
document.addEventListener('visibilitychange', () => {
  if (!document.hidden && client.signedIn && !document.querySelector('dialog[open]')) refreshUnread();
});
setInterval(() => {
  if (!document.hidden && client.signedIn) refreshUnread();
}, 60000);

// A link from an SMS or notice may use /t/<id>; the page lives at / with hash routes.
const pathTicket = location.pathname.match(/^\/t\/(\d+)$/);
if (pathTicket) {
  // The same short link goes to residents and to secretaries (SMS, email): a browser signed in
  // to the staff page and not as a resident opens the ticket there.
  if (!client.signedIn && wasSignedIn('staff')) {
    location.replace(`/staff/#/t/${pathTicket[1]}`);
  } else {
    history.replaceState(null, '', `/#/t/${pathTicket[1]}`);
  }
}

loadLabels().then(route, (e) =>
  mount(
    view,
    h(
      'div.card.error-box',
      h('p', errorText(e)),
      h('button.block', { type: 'button', onclick: () => location.reload() }, '重试'),
    ),
  ),
);
