// Latch, `latch exec --intercept`: Node's built-in fetch and its https module ignore
// HTTPS_PROXY before Node 24, so this preload (in NODE_OPTIONS) sends both through the exec's
// proxy: fetch by a wrapper, `https.request` (node-fetch 2, got, most SDKs) by a global agent
// that opens a CONNECT tunnel. It holds no credential: the proxy adds the connector's to
// requests for the connectors' hosts.
'use strict';
(() => {
  const proxyText = process.env.HTTPS_PROXY || process.env.https_proxy;
  if (!proxyText || typeof globalThis.fetch !== 'function') return;
  const http = require('node:http');
  const https = require('node:https');
  const tls = require('node:tls');
  const { Readable } = require('node:stream');
  const proxy = new URL(proxyText);
  const proxyAuth = 'Basic ' + Buffer.from(
    `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`,
  ).toString('base64');
  const noProxy = (process.env.NO_PROXY || process.env.no_proxy || '')
    .split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  const bypass = (host) => {
    const h = host.toLowerCase().replace(/^\[|\]$/g, '');
    return noProxy.some((n) => n === '*' || h === n.replace(/^\./, '') || h.endsWith(n.startsWith('.') ? n : `.${n}`));
  };
  const builtin = globalThis.fetch;

  const tunnel = (host, port) => new Promise((resolve, reject) => {
    const req = http.request({
      host: proxy.hostname, port: proxy.port, method: 'CONNECT', path: `${host}:${port}`,
      headers: { host: `${host}:${port}`, 'proxy-authorization': proxyAuth },
    });
    req.once('connect', (res, socket) => {
      if (res.statusCode === 200) return resolve(socket);
      socket.destroy();
      return reject(new TypeError(`fetch failed: the proxy answered CONNECT ${host}:${port} with ${res.statusCode}`));
    });
    req.once('error', reject);
    req.end();
  });

  // https.request without an agent of its own: a tunnel per connection, then TLS inside it.
  class TunnelAgent extends https.Agent {
    createConnection(options, done) {
      const host = options.host || options.hostname || 'localhost';
      const port = Number(options.port || 443);
      if (bypass(host)) return super.createConnection(options, done);
      tunnel(host, port).then(
        (socket) => done(null, tls.connect({ ...options, socket, servername: options.servername || host })),
        (err) => done(err),
      );
      return undefined;
    }
  }
  // Without keep-alive: an idle TLS socket over a tunnel would hold the process open after its
  // work is done.
  https.globalAgent = new TunnelAgent();

  const once = async (request, body) => {
    const url = new URL(request.url);
    const headers = {};
    request.headers.forEach((value, name) => { headers[name] = value; });
    if (body) headers['content-length'] = String(body.length);
    let send;
    let options;
    if (url.protocol === 'https:') {
      const port = Number(url.port || 443);
      const socket = await tunnel(url.hostname, port);
      send = https.request;
      options = {
        method: request.method, host: url.hostname, port, path: url.pathname + url.search, headers,
        createConnection: () => tls.connect({ socket, servername: url.hostname, ALPNProtocols: ['http/1.1'] }),
      };
    } else {
      send = http.request;
      headers['proxy-authorization'] = proxyAuth;
      options = { method: request.method, host: proxy.hostname, port: proxy.port, path: url.href, headers, agent: false };
    }
    return new Promise((resolve, reject) => {
      const req = send(options, (res) => {
        const answer = new Headers();
        for (let i = 0; i < res.rawHeaders.length; i += 2) answer.append(res.rawHeaders[i], res.rawHeaders[i + 1]);
        const none = request.method === 'HEAD' || [101, 204, 205, 304].includes(res.statusCode);
        const response = new Response(none ? null : Readable.toWeb(res), {
          status: res.statusCode, statusText: res.statusMessage, headers: answer,
        });
        Object.defineProperty(response, 'url', { value: request.url });
        resolve(response);
      });
      req.once('error', (err) => reject(new TypeError('fetch failed', { cause: err })));
      if (request.signal) {
        request.signal.addEventListener('abort', () => req.destroy(request.signal.reason), { once: true });
      }
      req.end(body);
    });
  };

  globalThis.fetch = async function fetch(input, init) {
    let request = new Request(input, init);
    const first = new URL(request.url);
    if (!/^https?:$/.test(first.protocol) || bypass(first.hostname)) return builtin(input, init);
    let body = request.body ? Buffer.from(await request.arrayBuffer()) : undefined;
    for (let hops = 0; ; hops += 1) {
      const response = await once(request, body);
      const location = response.headers.get('location');
      if (![301, 302, 303, 307, 308].includes(response.status) || !location || request.redirect === 'manual') {
        return response;
      }
      if (request.redirect === 'error') throw new TypeError('fetch failed: redirected');
      if (hops >= 20) throw new TypeError('fetch failed: too many redirects');
      const toGet = response.status === 303 || ([301, 302].includes(response.status) && request.method === 'POST');
      const method = toGet ? 'GET' : request.method;
      if (toGet) body = undefined;
      request = new Request(new URL(location, request.url), {
        method, headers: request.headers, redirect: request.redirect, signal: request.signal,
      });
    }
  };
})();
