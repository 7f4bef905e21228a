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
