// statcell serve's static server (cli/web-site.ts serveFolder) against hostile requests: it must
// answer each and keep serving.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { serveFolder } from '../../cli/web-site.ts';

test('a malformed escape gets 400 (it ended the server), a path out of the site 403, and the server still serves', async () => {
  const site = mkdtempSync(join(tmpdir(), 'statcell-serve-'));
  writeFileSync(join(site, 'index.json'), '{}');
  const server = await serveFolder(site, 0);
  const port = (server.address() as { port: number }).port;
  const status = (path: string) =>
    new Promise<number | string>((ok) => {
      const r = request({ host: '127.0.0.1', port, path }, (res) => {
        res.resume();
        ok(res.statusCode!);
      });
      r.on('error', (e) => ok(e.message));
      r.end();
    });
  try {
    expect(await status('/%E0%A4%A')).toBe(400);
    expect(await status('/..%2f..%2fetc%2fpasswd')).toBe(403);
    expect(await status('/index.json')).toBe(200);
  } finally {
    server.close();
  }
});

test('only GET and HEAD are served (POST and DELETE got the file with 200); every reply, errors too, says its type and keeps the isolation headers', async () => {
  const site = mkdtempSync(join(tmpdir(), 'statcell-serve-'));
  writeFileSync(join(site, 'index.json'), '{"a":1}');
  const server = await serveFolder(site, 0);
  const port = (server.address() as { port: number }).port;
  const ask = (method: string, path: string) =>
    new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((ok, fail) => {
      const r = request({ host: '127.0.0.1', port, path, method }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c)).on('end', () => ok({ status: res.statusCode!, headers: res.headers, body }));
      });
      r.on('error', fail);
      r.end();
    });
  try {
    for (const m of ['POST', 'DELETE', 'PUT']) {
      const r = await ask(m, '/index.json');
      expect(r.status).toBe(405);
      expect(r.headers.allow).toBe('GET, HEAD');
      expect(r.body).not.toContain('"a"');
    }
    const head = await ask('HEAD', '/index.json');
    expect([head.status, head.body, head.headers['content-length']]).toEqual([200, '', '7']);
    for (const path of ['/..%2f..%2fetc%2fpasswd', '/nope.json']) {
      const r = await ask('GET', path);
      expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(r.headers['cross-origin-embedder-policy']).toBe('require-corp');
      expect(r.headers['cross-origin-opener-policy']).toBe('same-origin');
    }
  } finally {
    server.close();
  }
});

test('a request for another host name is refused (a DNS-rebinding page got 200 and could read the weights)', async () => {
  const site = mkdtempSync(join(tmpdir(), 'statcell-serve-'));
  writeFileSync(join(site, 'index.json'), '{"a":1}');
  const server = await serveFolder(site, 0);
  const port = (server.address() as { port: number }).port;
  const ask = (host: string) =>
    new Promise<number>((ok, fail) => {
      const r = request({ host: '127.0.0.1', port, path: '/index.json', headers: { host } }, (res) => {
        res.resume();
        ok(res.statusCode!);
      });
      r.on('error', fail);
      r.end();
    });
  try {
    expect(await ask('evil.example:80')).toBe(403);
    expect(await ask(`localhost:${port}`)).toBe(200);
    expect(await ask(`127.0.0.1:${port}`)).toBe(200);
    expect(await ask(`[::1]:${port}`)).toBe(200);
  } finally {
    server.close();
  }
});
