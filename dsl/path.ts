// POSIX-style path arithmetic for model files, without node:path, so that loading and compiling
// run in browsers too. Paths are '/'-separated; a leading '/' makes one absolute. Names are only
// rewritten lexically (no file system, no working directory).

const split = (p: string): string[] => p.split('/').filter((s) => s !== '' && s !== '.');

/** `a/./b/../c` → `a/c`; leading `..` of a relative path stay, `..` above `/` is dropped; `''` → `.`. */
export function normalizePath(p: string): string {
  const abs = p.startsWith('/');
  const out: string[] = [];
  for (const s of split(p)) {
    if (s !== '..') out.push(s);
    else if (out.length && out[out.length - 1] !== '..') out.pop();
    else if (!abs) out.push('..');
  }
  const body = out.join('/');
  return abs ? `/${body}` : body || '.';
}

/** `base` joined with `rel`, normalised; an absolute `rel` stands for itself. */
export function joinPath(base: string, rel: string): string {
  return normalizePath(rel.startsWith('/') ? rel : `${base}/${rel}`);
}

/** The folder of a path: `models/a.vae` → `models`, `a.vae` → `.`, `/a.vae` → `/`. */
export function dirnamePath(p: string): string {
  const n = normalizePath(p);
  const i = n.lastIndexOf('/');
  if (i < 0) return '.';
  return i === 0 ? '/' : n.slice(0, i);
}

/** The last part of a path: `models/a.vae` → `a.vae`. */
export function basenamePath(p: string): string {
  const parts = split(p);
  return parts[parts.length - 1] ?? '';
}

/**
 * The name of `to` seen from the folder `from` (`models`, `models/lib/b.vae` → `lib/b.vae`;
 * `models`, `x.vae` → `../x.vae`). Where no such name follows from the names alone (one path
 * absolute and the other not, or `from` climbing out further than `to`), `to` normalised.
 */
export function relativePath(from: string, to: string): string {
  const f = normalizePath(from);
  const t = normalizePath(to);
  if (f.startsWith('/') !== t.startsWith('/')) return t;
  const fs = split(f);
  const ts = split(t);
  let k = 0;
  while (k < fs.length && k < ts.length && fs[k] === ts[k]) k++;
  if (fs.slice(k).includes('..')) return t;
  return [...fs.slice(k).map(() => '..'), ...ts.slice(k)].join('/') || '.';
}
