// One writer per run directory: a `lock` file created exclusively, holding the writer's pid, the
// folder (a copy of a run carries the file, but not the lock), its host and a token of the
// process. A lock whose process is gone (killed, crashed) is stale and taken over, so a run killed
// with SIGKILL resumes without manual clean-up:
//   - on this host: its pid runs no more, or it is this process's pid but not its token (a pod's
//     trainer is pid 1 in every pod: a retry found "pid 1" alive for ever);
//   - of another host (a shared file system, a requeue on another node): no pid can be asked
//     there, so the holder touches the file every HEARTBEAT_MS and a lock untouched for
//     STALE_MS is stale. Node only.

import { randomUUID } from 'node:crypto';
import { openSync, closeSync, rmSync, statSync, utimesSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { makeDirs, readBoundedSync } from '../data/files.ts';

export class LockError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LockError';
  }
}

/** Whether a process with this pid runs (and is not this one's zombie). */
export function alive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** How often a holder touches its lock, and how long another host's untouched lock stays live. */
export const HEARTBEAT_MS = 30_000;
export const STALE_MS = 5 * 60_000;

/** This process's token: a lock with its pid but another token is a dead process's (pids are reused). */
const TOKEN = randomUUID();

/**
 * The live holder of `dir/lock` for this folder, with its host when another host's, else undefined
 * (no lock, a dead holder, or a lock that came with a copy of the run: it names another folder).
 */
function liveLock(dir: string): { pid: number; host?: string } | undefined {
  const file = join(dir, 'lock');
  let text: string;
  try {
    // Bounded, regular files only: a FIFO named lock blocked the trainer here; such a file holds no live lock.
    text = readBoundedSync(file, 8192).toString('utf8');
  } catch {
    return undefined;
  }
  // Locks written before the host and token were recorded have neither: taken as this host's.
  const [pid, folder, host, token] = text.split('\n');
  if (folder && folder !== resolve(dir)) return undefined;
  const holder = Number(pid.trim());
  if (host && host !== hostname()) {
    let age = Infinity;
    try {
      age = Date.now() - statSync(file).mtimeMs;
    } catch {
      // gone meanwhile
    }
    return Number.isSafeInteger(holder) && age < STALE_MS ? { pid: holder, host } : undefined;
  }
  if (holder === process.pid && token && token !== TOKEN) return undefined;
  return alive(holder) ? { pid: holder } : undefined;
}

/** The pid of `dir/lock`'s live holder (see liveLock), else undefined. */
export const lockHolder = (dir: string): number | undefined => liveLock(dir)?.pid;

/** Takes `dir/lock` for this process; returns its release. Throws LockError when another live process holds it. */
export function lockRun(dir: string, what = 'a trainer'): () => void {
  makeDirs(dir);
  const file = join(dir, 'lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      // The folder too: a run copied while its trainer runs carries this file, with a live pid.
      writeSync(fd, `${process.pid}\n${resolve(dir)}\n${hostname()}\n${TOKEN}\n`);
      closeSync(fd);
      const beat = setInterval(() => {
        try {
          utimesSync(file, new Date(), new Date());
        } catch {
          // the lock was removed (the run folder deleted): nothing to keep alive
        }
      }, HEARTBEAT_MS);
      beat.unref();
      return () => {
        clearInterval(beat);
        if (lockHolder(dir) === process.pid) rmSync(file, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const holder = liveLock(dir);
      if (holder) throw new LockError(`${dir}: ${what} (pid ${holder.pid}${holder.host ? ` on host ${holder.host}` : ''}) is writing to this run directory; wait for it to end, or give another --out`);
      rmSync(file, { force: true }); // stale: its process is gone
    }
  }
  throw new LockError(`${dir}: could not take the lock file ${file}`);
}
