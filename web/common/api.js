// Client of the public REST API shared by the three pages.
// The access token lives only in memory. The refresh token is an HttpOnly cookie that only the
// server sees (one per page, `X-Auth-Cookie: <app>`), so a script on the page can never read it;
// localStorage keeps only a hint that this page was signed in, never a token.

const BASE = '/api/v1';

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || 'http_' + status;
    this.details = details;
  }
}

const NETWORK_MESSAGE = '网络连接失败，请检查网络后重试 (network error)';

/// Whether the page `app` was signed in on this browser (a hint; the cookie decides).
export function wasSignedIn(app) {
  return localStorage.getItem(`huying.${app}.session`) === '1';
}

export function createClient(app) {
  const hintKey = `huying.${app}.session`;
  const cookieHeader = { 'x-auth-cookie': app };
  // Earlier versions kept the refresh token (and the resident's phone) here.
  localStorage.removeItem(`huying.${app}.refresh`);
  localStorage.removeItem('huying.resident.phone');
  let access = null;
  let accessExpires = 0;
  let onSignedOut = () => {};

  function saveTokens(t) {
    access = t.access_token;
    accessExpires = Date.now() + (t.expires_in - 30) * 1000;
    localStorage.setItem(hintKey, '1');
  }

  function clear() {
    access = null;
    accessExpires = 0;
    localStorage.removeItem(hintKey);
  }

  async function rawJson(method, path, body, headers = {}) {
    let res;
    try {
      res = await fetch(BASE + path, {
        method,
        headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError(0, 'network', NETWORK_MESSAGE);
    }
    return parse(res);
  }

  // Refresh tokens rotate and a reused one revokes the whole family, so two tabs must never
  // refresh with the same cookie at once: the Web Locks API serialises them across tabs.
  async function refresh() {
    const run = async () => {
      if (!wasSignedIn(app)) return false;
      try {
        saveTokens(await rawJson('POST', '/auth/refresh', {}, cookieHeader));
        return true;
      } catch (e) {
        if (e.status === 401) {
          clear();
          return false;
        }
        throw e;
      }
    };
    if (navigator.locks) return navigator.locks.request(hintKey, run);
    return run();
  }

  async function authHeader() {
    if (!access || Date.now() > accessExpires) {
      if (!(await refresh())) {
        onSignedOut();
        throw new ApiError(401, 'unauthorized', '登录已过期，请重新登录');
      }
    }
    return { authorization: 'Bearer ' + access };
  }

  async function send(method, path, { json, form, headers = {}, raw = false } = {}, retried = false) {
    const h = { ...(await authHeader()), ...headers };
    let body;
    if (json !== undefined) {
      h['content-type'] = 'application/json';
      body = JSON.stringify(json);
    } else if (form !== undefined) {
      body = form;
    }
    let res;
    try {
      res = await fetch(BASE + path, { method, headers: h, body });
    } catch (e) {
      throw new ApiError(0, 'network', NETWORK_MESSAGE);
    }
    if (res.status === 401 && !retried) {
      access = null;
      return send(method, path, { json, form, headers, raw }, true);
    }
    if (raw) {
      if (!res.ok) await parse(res);
      return res;
    }
    return parse(res);
  }

  return {
    get signedIn() {
      return wasSignedIn(app);
    },
    set onSignedOut(fn) {
      onSignedOut = fn;
    },
    async loginWithPassword(username, password) {
      const t = await rawJson('POST', '/auth/login', { username, password }, cookieHeader);
      saveTokens(t);
      return t.user;
    },
    async requestCode(phone) {
      return rawJson('POST', '/auth/otp', { phone });
    },
    async loginWithCode(phone, code) {
      const t = await rawJson('POST', '/auth/login', { phone, code }, cookieHeader);
      saveTokens(t);
      return t.user;
    },
    async logout() {
      clear();
      try {
        await rawJson('POST', '/auth/logout', {}, cookieHeader);
      } catch (e) {
        /* signed out locally either way */
      }
    },
    /// Makes sure there is a usable access token; false when the user must sign in.
    async resume() {
      if (access && Date.now() < accessExpires) return true;
      return refresh();
    },
    get: (path) => send('GET', path),
    post: (path, json, headers) => send('POST', path, { json: json ?? {}, headers }),
    put: (path, json) => send('PUT', path, { json }),
    patch: (path, json) => send('PATCH', path, { json }),
    del: (path) => send('DELETE', path),
    /// The raw Response (for CSV/XLSX downloads and attachment images).
    fetchRaw: (path) => send('GET', path, { raw: true }),
    /// The open Response of a Server-Sent Events stream (web/common/stream.js reads its body);
    /// the token goes in the header, never in the URL.
    async stream(path, signal) {
      const headers = { ...(await authHeader()), accept: 'text/event-stream' };
      let res;
      try {
        res = await fetch(BASE + path, { headers, signal, cache: 'no-store' });
      } catch (e) {
        throw new ApiError(0, 'network', NETWORK_MESSAGE);
      }
      // A stale token: the next attempt signs in again with the refresh cookie.
      if (res.status === 401) access = null;
      if (!res.ok) await parse(res);
      return res;
    },
    /// Object URL of an authenticated binary (an attachment), for <img src>.
    async blobUrl(path) {
      const res = await send('GET', path, { raw: true });
      return URL.createObjectURL(await res.blob());
    },
    /// Multipart upload with progress (fetch cannot report upload progress; XHR can).
    async upload(path, formData, onProgress) {
      const h = await authHeader();
      return new Promise((resolve, reject) => {
        const xhr = new XMLHttpRequest();
        xhr.open('POST', BASE + path);
        xhr.setRequestHeader('authorization', h.authorization);
        xhr.upload.onprogress = (e) => {
          if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total);
        };
        xhr.onerror = () => reject(new ApiError(0, 'network', NETWORK_MESSAGE));
        xhr.onload = () => {
          let data = null;
          try {
            data = JSON.parse(xhr.responseText);
          } catch (e) {
            /* not JSON */
          }
          if (xhr.status >= 200 && xhr.status < 300) resolve(data);
          else
            reject(
              new ApiError(xhr.status, data && data.code, data && data.message, data && data.details),
            );
        };
        xhr.send(formData);
      });
    },
  };
}

async function parse(res) {
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (e) {
      data = null;
    }
  }
  if (!res.ok) {
    throw new ApiError(
      res.status,
      data && data.code,
      (data && data.message) || `服务器错误 (HTTP ${res.status})`,
      data && data.details,
    );
  }
  return data;
}
