// 通知设置: which channels tell me about my tickets (GET/PUT /me/notification-settings).
// Residents choose SMS and/or in-app messages; staff may add email (to an address of their own).

import { h, toast, errorText } from '/static/common/ui.js';

function check(id, text) {
  const input = h(`input#${id}`, { type: 'checkbox' });
  return [input, h('label.checkbox.setting', { for: id }, input, ` ${text}`)];
}

/// A card that loads the caller's settings and saves them. `client` is the page's API client.
export function notificationSettingsCard(client, { resident }) {
  const [sms, smsRow] = check('setting-sms', '短信通知');
  const [inapp, inappRow] = check('setting-inapp', '站内消息');
  const [email, emailRow] = resident ? [null, null] : check('setting-email', '邮件通知');
  const address = resident
    ? null
    : h('input#setting-email-address', {
        type: 'email',
        maxlength: '254',
        autocomplete: 'email',
        placeholder: '留空则用账号邮箱',
      });
  const err = h('p#settings-error.form-error', { role: 'alert' });
  const save = h('button#settings-save.primary.block', { type: 'submit', disabled: true }, '保存通知设置');
  const status = h('p#settings-status.hint', '正在加载…');

  const fill = (s) => {
    sms.checked = !!s.sms;
    inapp.checked = !!s.inapp;
    if (email) email.checked = !!s.email;
    if (address) address.value = s.email_address || '';
  };

  const form = h(
    'form#notification-settings.card.settings-card',
    { novalidate: true },
    h('h2', '通知设置'),
    h(
      'p.hint',
      resident
        ? '诉求有进展时（受理、回复、办结等）通过哪些方式告诉您。'
        : '有新工单、上报、下派、即将超时等情况时，通过哪些方式通知您。',
    ),
    smsRow,
    inappRow,
    emailRow,
    address ? h('div.field', h('label', { for: 'setting-email-address' }, '通知邮箱'), address) : null,
    status,
    err,
    save,
  );

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    const body = {
      sms: sms.checked,
      inapp: inapp.checked,
      email: !!email?.checked,
      email_address: address && address.value.trim() ? address.value.trim() : null,
    };
    save.disabled = true;
    try {
      fill(await client.put('/me/notification-settings', body));
      status.textContent = '已保存';
      toast('通知设置已保存');
    } catch (e2) {
      err.textContent = errorText(e2);
    } finally {
      save.disabled = false;
    }
  });

  client
    .get('/me/notification-settings')
    .then((s) => {
      fill(s);
      status.textContent = '';
      save.disabled = false;
    })
    .catch((e) => {
      status.textContent = '';
      err.textContent = `通知设置加载失败：${errorText(e)}`;
    });
  return form;
}
