// 个人信息: a resident downloads everything stored about them (GET /me/export) or closes the
// account and erases their name and phone (POST /me/erase, confirmed with a fresh SMS code).

import { h, toast, errorText } from '/static/common/ui.js';
import { client, sheet } from './ctx.js';

/// The card at the foot of the notices page.
export function privacyCard({ onErased }) {
  const exportBtn = h('button#export-data.block', { type: 'button' }, '导出我的数据');
  exportBtn.addEventListener('click', async () => {
    exportBtn.disabled = true;
    try {
      const data = await client.get('/me/export');
      const blob = new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' });
      const a = h('a', { href: URL.createObjectURL(blob), download: `呼应-我的数据-${data.exported_at.slice(0, 10)}.json` });
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 60000);
      toast('已导出');
    } catch (e) {
      toast(errorText(e), 'error');
    } finally {
      exportBtn.disabled = false;
    }
  });
  const eraseBtn = h('button#erase-account.block.danger', { type: 'button' }, '注销账号并删除个人信息');
  eraseBtn.addEventListener('click', () => eraseSheet(onErased));
  return h(
    'section.card.privacy-card',
    h('h2', '账号与个人信息'),
    h('p.hint', '可随时导出本平台保存的您的全部信息（账号、诉求、办理记录、消息），或注销账号：您的姓名和手机号将从所有记录中删除，诉求本身匿名保留用于统计。'),
    exportBtn,
    eraseBtn,
  );
}

function eraseSheet(onErased) {
  const err = h('p.form-error', { role: 'alert' });
  const code = h('input#erase-code', { type: 'text', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: '6', placeholder: '短信验证码' });
  const send = h('button#erase-send-code.block', { type: 'button' }, '发送验证码到我的手机');
  const confirmBtn = h('button#erase-confirm.block.danger', { type: 'button', disabled: true }, '确认注销（不可恢复）');
  const { close } = sheet(
    '注销账号',
    h('p', '注销后无法恢复：您的姓名和手机号会从所有诉求、记录和消息中删除，账号随即退出。'),
    send,
    h('label', { for: 'erase-code' }, '验证码'),
    code,
    err,
    confirmBtn,
  );
  send.addEventListener('click', async () => {
    send.disabled = true;
    err.textContent = '';
    try {
      const me = await client.get('/me');
      await client.requestCode(me.phone);
      confirmBtn.disabled = false;
      toast('验证码已发送');
      code.focus();
    } catch (e) {
      err.textContent = errorText(e);
      send.disabled = false;
    }
  });
  confirmBtn.addEventListener('click', async () => {
    const value = code.value.trim();
    if (!/^\d{4,8}$/.test(value)) {
      err.textContent = '请输入短信验证码';
      return;
    }
    confirmBtn.disabled = true;
    try {
      await client.post('/me/erase', { code: value });
      close();
      await client.logout();
      onErased();
    } catch (e) {
      err.textContent = errorText(e);
      confirmBtn.disabled = false;
    }
  });
}
