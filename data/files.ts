// Reading an input file safely: only a regular file (a FIFO would block forever, /dev/zero would
// read until memory runs out), and only up to a byte bound, checked with fstat before any read.
// The open is non-blocking so that opening a FIFO with no writer returns at once.
// Writing an output whole: to a temporary name, then renamed (writeAtomic). Making an output's
// folders (makeDirs).

import { constants, fstatSync, fsyncSync, mkdirSync, openSync, readSync, renameSync, rmSync, statSync, writeSync, closeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { open } from 'node:fs/promises';

export const MiB = 1 << 20;

function describe(mode: number): string {
  const t = mode & constants.S_IFMT;
  if (t === constants.S_IFIFO) return 'a FIFO (named pipe)';
  if (t === constants.S_IFCHR) return 'a character device';
  if (t === constants.S_IFBLK) return 'a block device';
  if (t === constants.S_IFSOCK) return 'a socket';
  if (t === constants.S_IFDIR) return 'a directory';
  return 'not a regular file';
}

/** Why a file cannot be read, or undefined when it is a regular file within `maxBytes`. */
function refuse(mode: number, size: number, maxBytes: number): string | undefined {
  if ((mode & constants.S_IFMT) !== constants.S_IFREG) return `not a regular file: it is ${describe(mode)}`;
  // Small bounds (a Zarr chunk's) in bytes, large ones in MiB.
  if (size > maxBytes) return maxBytes < MiB ? `the file is ${size} bytes, more than the ${maxBytes} bytes allowed` : `the file is ${(size / MiB).toFixed(1)} MiB, more than the ${(maxBytes / MiB).toFixed(0)} MiB allowed`;
  return undefined;
}

export class FileReadError extends Error {
  constructor(readonly file: string, readonly reason: string) {
    super(reason);
    this.name = 'FileReadError';
  }
}

const FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

const errnoMessage = (e: unknown) => ((e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message);

/**
 * Reads a whole regular file of at most `maxBytes`; throws FileReadError (message without the file
 * name) otherwise, or the caller's error made by `fail` from its reason. `growing`: a log another
 * process appends to, read to the size it had.
 */
export function readBoundedSync(file: string, maxBytes: number, opts: { growing?: boolean; fail?: (reason: string) => Error } = {}): Buffer {
  try {
    return readWholeSync(file, maxBytes, opts.growing ?? false);
  } catch (e) {
    throw opts.fail ? opts.fail(reasonOf(e)) : e;
  }
}

/** Why a read failed, for a caller's message: a FileReadError's reason, else the error's message. */
export const reasonOf = (e: unknown): string => (e instanceof FileReadError ? e.reason : (e as Error).message);

function readWholeSync(file: string, maxBytes: number, growing: boolean): Buffer {
  let fd: number;
  try {
    fd = openSync(file, FLAGS);
  } catch (e) {
    throw new FileReadError(file, errnoMessage(e));
  }
  try {
    const st = fstatSync(fd);
    const why = refuse(st.mode, st.size, maxBytes);
    if (why) throw new FileReadError(file, why);
    // Read at most size+1 bytes: a file that grew since fstat is caught rather than read on;
    // `growing` (a log another process appends to): its first `size` bytes are what is read.
    const buf = Buffer.allocUnsafe(st.size + 1);
    let n = 0;
    for (let r; n < buf.length && (r = readSync(fd, buf, n, buf.length - n, n)) > 0; ) n += r;
    if (n > st.size) {
      if (!growing) throw new FileReadError(file, 'the file grew while being read');
      n = st.size;
    }
    return buf.subarray(0, n);
  } catch (e) {
    if (e instanceof FileReadError) throw e;
    throw new FileReadError(file, errnoMessage(e));
  } finally {
    closeSync(fd);
  }
}

/** The async twin of readBoundedSync. */
export async function readBounded(file: string, maxBytes: number): Promise<Buffer> {
  return withBoundedFile(file, maxBytes, async (readAt, size) => {
    const buf = await readAt(0, size + 1);
    if (buf.length > size) throw new FileReadError(file, 'the file grew while being read');
    return buf;
  });
}

/**
 * Runs `use` on a regular file of at most `maxBytes` opened for reading (checked with fstat),
 * with `readAt(at, n)`: up to n bytes from offset `at` (fewer at the end), so that a header is
 * read without the rest of the file. I/O errors name the file; the file is closed afterwards.
 */
export async function withBoundedFile<T>(file: string, maxBytes: number, use: (readAt: (at: number, n: number) => Promise<Buffer>, size: number, fd: number) => Promise<T> | T): Promise<T> {
  let fh;
  try {
    fh = await open(file, FLAGS);
  } catch (e) {
    throw new FileReadError(file, errnoMessage(e));
  }
  try {
    const h = fh;
    const io = async <R>(f: () => Promise<R>): Promise<R> => {
      try {
        return await f();
      } catch (e) {
        throw e instanceof FileReadError ? e : new FileReadError(file, errnoMessage(e));
      }
    };
    const st = await io(() => h.stat());
    const why = refuse(st.mode, st.size, maxBytes);
    if (why) throw new FileReadError(file, why);
    const readAt = (at: number, n: number) =>
      io(async () => {
        const buf = Buffer.allocUnsafe(Math.max(0, n));
        let got = 0;
        for (let r; got < buf.length && (r = (await h.read(buf, got, buf.length - got, at + got)).bytesRead) > 0; ) got += r;
        return buf.subarray(0, got);
      });
    return await use(readAt, st.size, h.fd);
  } finally {
    await fh.close();
  }
}

/** Writes bytes to `file` atomically: a crash leaves either the old file or the new one, never a torn one. */
export function writeAtomic(file: string, data: Uint8Array | string): void {
  // Said of the file asked for, not of the temporary one beside it.
  const st = statOrNone(file);
  if (st?.isDirectory()) throw new Error(`cannot write ${file}: it is a folder; give a file name`);
  const folder = statOrNone(dirname(resolve(file)));
  if (!folder?.isDirectory()) throw new Error(`cannot write ${file}: its folder ${dirname(resolve(file))} ${folder ? 'is not a folder' : 'does not exist'}`);
  const tmp = `${file}.tmp-${process.pid}`;
  let fd: number;
  try {
    fd = openSync(tmp, 'w');
  } catch (e) {
    throw new Error(`cannot write ${file}: ${(e as NodeJS.ErrnoException).code === 'EACCES' ? 'permission denied' : (e as Error).message}`);
  }
  try {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    for (let off = 0; off < bytes.byteLength; ) off += writeSync(fd, bytes, off, bytes.byteLength - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  // The rename itself is durable only once the directory entry is flushed.
  const dfd = openSync(join(file, '..'), 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

/** A path's stat, or undefined where nothing is there (ENOENT) or a parent is a file (ENOTDIR). */
function statOrNone(path: string): ReturnType<typeof statSync> | undefined {
  try {
    return statSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw e;
  }
}

/**
 * `mkdir -p` that fails instead of spinning: Node's recursive mkdirSync never returns where a
 * parent cannot be created and mkdir keeps answering ENOENT (under /proc, say). Each missing
 * folder is made in turn, so the error names the first one that cannot be.
 */
export function makeDirs(dir: string): void {
  const missing: string[] = [];
  for (let d = resolve(dir); ; d = dirname(d)) {
    const st = statOrNone(d);
    if (st) {
      if (!st.isDirectory()) throw new Error(`cannot create the folder ${dir}: ${d} exists and is not a folder`);
      break;
    }
    missing.push(d);
    if (dirname(d) === d) break;
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d);
    } catch (e) {
      // Made meanwhile by another process: fine.
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && statSync(d).isDirectory()) continue;
      throw new Error(`cannot create the folder ${dir}: ${(e as Error).message}`);
    }
  }
}

/**
 * Writes a folder whole: `write` fills a temporary folder beside `out`, which then replaces `out`.
 * An error, or an exit on the way (the commands exit on SIGINT, SIGTERM and SIGHUP), removes the
 * temporary folder: an interrupted command leaves neither a partial `out` nor its temporary.
 */
export async function writeFolder<T>(out: string, write: (dir: string) => Promise<T>): Promise<T> {
  const tmp = `${resolve(out)}.tmp-${process.pid}`;
  const remove = () => rmSync(tmp, { recursive: true, force: true });
  remove();
  process.on('exit', remove);
  try {
    makeDirs(tmp);
    const result = await write(tmp);
    rmSync(out, { recursive: true, force: true });
    renameSync(tmp, out);
    return result;
  } finally {
    remove();
    process.off('exit', remove);
  }
}
