// OME-Zarr (NGFF 0.4, Zarr v2) images of cells, written and read with zarrita (browser-safe: any
// store of bytes by key; data/images.ts adds the directory store of Node).
// Written: one multiscale level "0", axes c, (z,) y, x with the spatial units, a scale transform of
// the physical pixel sizes, omero channel names and colours, float32 chunks of one channel each,
// zlib-compressed; the pixel sizes' source goes in the attributes' "statcell" entry.
// Read: the metadata first (each file bounded), the declared shape, chunks, dtype and codecs checked
// against the model's input before a chunk is read; every chunk must be there, and decompresses
// to its declared size at most (zarrita's own zlib/gzip decode has no bound, so the codecs are
// replaced by bounded ones here; blosc's header states its size, which is checked first). The
// replacement is in zarrita's registry, so every zarrita reader of the process or page (Vol-E's
// too) gets the bound once this module has read or written; arrays of strings or objects keep
// zarrita's own codecs.

import { Gunzip, Unzlib, zlibSync } from 'fflate';
import * as zarr from 'zarrita';
import { BYTES, checkDeclared, ImageError, MAX_DECODED_BYTES, type Image, type ImageBounds, type ImageHeader } from './decode.ts';
import { hexColor, type NamedChannel, type PixelSize } from './ome.ts';

const MiB = 1 << 20;
/** Largest metadata file (.zattrs, .zarray, .zgroup) read. */
export const MAX_ZARR_METADATA_BYTES = 1 * MiB;
/** Most chunks one image may have (a cell is a handful: one per channel, or per plane). */
export const MAX_ZARR_CHUNKS = 65536;

// ---- bounded codecs --------------------------------------------------------------------------

type ChunkMeta = { dataType: string; shape: number[] };
const ITEM_BYTES: Record<string, number> = { bool: 1, uint8: 1, int8: 1, uint16: 2, int16: 2, float16: 2, uint32: 4, int32: 4, float32: 4, float64: 8, uint64: 8, int64: 8 };
/** A chunk's decoded bytes, for fixed-size types; undefined for others (strings, objects), whose codecs stay zarrita's own. */
const decodedBytes = (m: ChunkMeta) => (ITEM_BYTES[m.dataType] ? m.shape.reduce((a, b) => a * b, ITEM_BYTES[m.dataType]) : undefined);
type CodecEntry = { fromConfig(config: unknown, meta: ChunkMeta): unknown };

/** Inflates in slices of the input, stopping as soon as the output passes `expected` bytes (a deflate stream can expand 1000×). */
function inflateBounded(bytes: Uint8Array, expected: number, Stream: typeof Unzlib | typeof Gunzip, what: string): Uint8Array {
  const out = new Uint8Array(expected);
  let n = 0;
  const s = new Stream((chunk) => {
    if (n + chunk.length > expected) throw new Error(`${what} chunk decompresses to more than its declared ${expected} bytes`);
    out.set(chunk, n);
    n += chunk.length;
  });
  const SLICE = 1 << 16;
  for (let at = 0; at < bytes.length; at += SLICE) s.push(bytes.subarray(at, at + SLICE), at + SLICE >= bytes.length);
  if (n !== expected) throw new Error(`${what} chunk decompresses to ${n} bytes, its declared size is ${expected}`);
  return out;
}

const deflateCodec = (Stream: typeof Unzlib | typeof Gunzip, what: string, original: CodecEntry, encode?: (b: Uint8Array, level: number) => Uint8Array) => ({
  kind: 'bytes_to_bytes' as const,
  fromConfig(config: { level?: number } | undefined, meta: ChunkMeta) {
    const expected = decodedBytes(meta);
    if (expected === undefined) return original.fromConfig(config, meta);
    const level = Math.min(9, Math.max(0, config?.level ?? 6)) as 6;
    return {
      kind: 'bytes_to_bytes' as const,
      async encode(b: Uint8Array) {
        if (!encode) throw new Error(`${what}: statcell writes zlib, not ${what}`);
        return encode(b, level);
      },
      async decode(b: Uint8Array) {
        return inflateBounded(b, expected, Stream, what);
      },
    };
  },
});

let registered = false;
/** Puts the bounded codecs in zarrita's registry (once; they replace zarrita's own zlib and gzip, which decode without a bound). */
export function registerBoundedCodecs(): void {
  if (registered) return;
  registered = true;
  // zarrita's own entries stay in use for types without a fixed size.
  // (The factories are taken now, called when a codec is first needed: numcodecs' blosc loads its Wasm then.)
  const own = (k: string) => zarr.registry.get(k) as () => Promise<CodecEntry>;
  const [ownZlib, ownGzip, ownBlosc] = [own('zlib'), own('gzip'), own('blosc')];
  const zlib = async () => deflateCodec(Unzlib, 'zlib', await ownZlib(), (b, level) => zlibSync(b, { level: level as 6 }));
  const gzip = async () => deflateCodec(Gunzip, 'gzip', await ownGzip());
  for (const k of ['zlib', 'numcodecs.zlib']) zarr.registry.set(k, zlib as never);
  for (const k of ['gzip', 'numcodecs.gzip']) zarr.registry.set(k, gzip as never);
  // Blosc states the decompressed and compressed sizes in its 16-byte header: both are checked before numcodecs decodes.
  const blosc = async () => {
    const Blosc = await ownBlosc();
    return {
      kind: 'bytes_to_bytes',
      fromConfig(config: unknown, meta: ChunkMeta) {
        const inner = Blosc.fromConfig(config, meta) as { encode(b: Uint8Array): Promise<Uint8Array>; decode(b: Uint8Array): Promise<Uint8Array> };
        const expected = decodedBytes(meta);
        if (expected === undefined) return inner;
        return {
          kind: 'bytes_to_bytes',
          encode: (b: Uint8Array) => inner.encode(b),
          async decode(b: Uint8Array) {
            if (b.length < 16) throw new Error(`blosc chunk of ${b.length} bytes has no 16-byte header`);
            const v = new DataView(b.buffer, b.byteOffset, 16);
            const nbytes = v.getUint32(4, true);
            const cbytes = v.getUint32(12, true);
            if (nbytes !== expected) throw new Error(`blosc chunk header declares ${nbytes} bytes decompressed, the array's chunk is ${expected}`);
            if (cbytes !== b.length) throw new Error(`blosc chunk header declares ${cbytes} bytes compressed, the file has ${b.length}`);
            return inner.decode(b);
          },
        };
      },
    };
  };
  for (const k of ['blosc', 'numcodecs.blosc']) zarr.registry.set(k, blosc as never);
}

// ---- writing ---------------------------------------------------------------------------------

export interface OmeZarrCell {
  /** [Y, X] or [Y, X, Z]. */
  size: number[];
  channels: NamedChannel[];
  pixelSize: PixelSize;
  name?: string;
}

const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v, null, 1) + '\n');

/** The NGFF 0.4 attributes of a cell image (the root group's .zattrs). */
export function omeZarrAttributes(cell: OmeZarrCell): Record<string, unknown> {
  const three = cell.size.length === 3;
  const ps = cell.pixelSize;
  if (three && ps.z === undefined) throw new Error(`OME-Zarr: a 3D image needs a Z pixel size (${ps.source})`);
  const space = (name: string) => ({ name, type: 'space', unit: 'micrometer' });
  const axes = [{ name: 'c', type: 'channel' }, ...(three ? [space('z')] : []), space('y'), space('x')];
  const scale = [1, ...(three ? [ps.z!] : []), ps.y, ps.x];
  const max = (d: Float32Array) => d.reduce((m, v) => (v > m ? v : m), 0);
  return {
    multiscales: [{ version: '0.4', name: cell.name ?? 'statcell', axes, datasets: [{ path: '0', coordinateTransformations: [{ type: 'scale', scale }] }] }],
    omero: {
      name: cell.name ?? 'statcell',
      version: '0.4',
      channels: cell.channels.map((c) => ({ label: c.name, color: hexColor(c.color ?? [1, 1, 1]), active: true, coefficient: 1, family: 'linear', inverted: false, window: { min: 0, max: Math.max(1, max(c.data)), start: 0, end: max(c.data) || 1 } })),
      rdefs: { model: 'color', defaultZ: three ? Math.floor(cell.size[2] / 2) : 0, defaultT: 0 },
    },
    statcell: { pixelSizeSource: ps.source, unit: 'micrometer', layout: 'float32 values as the model outputs them (inputs are scaled to [0, 1])' },
  };
}

/**
 * The files of a cell as an OME-Zarr 0.4 image, by path inside its folder: .zgroup, .zattrs,
 * 0/.zarray and the chunks 0/c/z/y/x (one chunk per channel), written through zarrita.
 */
export async function omeZarrFiles(cell: OmeZarrCell): Promise<Map<string, Uint8Array>> {
  registerBoundedCodecs();
  const [Y, X] = cell.size;
  const three = cell.size.length === 3;
  const Z = cell.size[2] ?? 1;
  const C = cell.channels.length;
  const n = Y * X * Z;
  for (const c of cell.channels) if (c.data.length !== n) throw new Error(`OME-Zarr: channel '${c.name}' has ${c.data.length} values, the size ${cell.size.join('×')} has ${n}`);
  const shape = [C, ...(three ? [Z] : []), Y, X];
  const store = new Map<string, Uint8Array>();
  store.set('/.zgroup', json({ zarr_format: 2 }));
  store.set('/.zattrs', json(omeZarrAttributes(cell)));
  store.set('/0/.zarray', json({ zarr_format: 2, shape, chunks: [1, ...shape.slice(1)], dtype: '<f4', compressor: { id: 'zlib', level: 6 }, fill_value: 0, order: 'C', filters: null, dimension_separator: '/' }));
  // statcell's layout is channel-major with Z fastest ([C, Y, X, Z]); OME's is [C, Z, Y, X].
  const data = new Float32Array(C * n);
  cell.channels.forEach((ch, c) => {
    for (let y = 0; y < Y; y++) for (let x = 0; x < X; x++) for (let z = 0; z < Z; z++) data[((c * Z + z) * Y + y) * X + x] = ch.data[(y * X + x) * Z + z];
  });
  const arr = await zarr.open.v2(zarr.root(store).resolve('0'), { kind: 'array' });
  const stride = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  await zarr.set(arr as zarr.Array<'float32', Map<string, Uint8Array>>, null, { data, shape, stride });
  return new Map([...store].map(([k, v]) => [k.slice(1), v]));
}

// ---- reading ---------------------------------------------------------------------------------

/** Bytes by key inside an OME-Zarr folder ("0/.zarray"); undefined when there is no such file. At most `maxBytes` are read. */
export interface ZarrSource {
  get(key: string, maxBytes: number): Promise<Uint8Array | undefined>;
}

const DTYPES: Record<string, NonNullable<Image['dtype']>> = { '|u1': 'uint8', '<u1': 'uint8', '>u1': 'uint8', '<u2': 'uint16', '>u2': 'uint16', '<f4': 'float32', '>f4': 'float32' };
const COMPRESSORS = ['zlib', 'gzip', 'blosc'];
const TO_UM: Record<string, number> = { micrometer: 1, nanometer: 1e-3, millimeter: 1e3, angstrom: 1e-4 };
/** A dataset path: names joined by '/', no '..', nothing absolute. */
const SAFE_PATH = /^(?!.*(^|\/)\.\.?(\/|$))[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/;

/**
 * An OME-Zarr image's header from its metadata only (.zattrs and the first level's .zarray, every
 * field checked as decodeOmeZarr checks it, against the bounds); no chunk is read.
 */
export async function omeZarrHeader(file: string, src: ZarrSource, o: { dims?: 2 | 3; bounds?: ImageBounds } = {}): Promise<ImageHeader> {
  const { C, spatial, dtype, channelNames } = await zarrMetadata(file, src, o);
  return { channels: C, spatial, dtype, channelNames };
}

/** The metadata of decodeOmeZarr, checked field by field before a chunk is read. */
async function zarrMetadata(file: string, src: ZarrSource, o: { dims?: 2 | 3; bounds?: ImageBounds }) {
  registerBoundedCodecs();
  const fail = (key: string, msg: string): never => {
    throw new ImageError(`${file}/${key}`, msg);
  };
  const readJson = async (key: string) => {
    const b = await src.get(key, MAX_ZARR_METADATA_BYTES);
    if (!b) return undefined;
    try {
      return JSON.parse(new TextDecoder().decode(b)) as Record<string, unknown>;
    } catch (e) {
      return fail(key, `not valid JSON: ${(e as Error).message}`);
    }
  };
  const attrs = await readJson('.zattrs');
  if (!attrs) {
    if (await src.get('zarr.json', MAX_ZARR_METADATA_BYTES)) fail('zarr.json', 'a Zarr v3 store (OME-Zarr 0.5); statcell reads OME-Zarr 0.4 (Zarr v2: .zattrs, .zarray)');
    fail('.zattrs', 'no such file: not an OME-Zarr 0.4 image folder');
  }
  const ms = (attrs!.multiscales as Record<string, unknown>[] | undefined)?.[0];
  if (!ms) fail('.zattrs', 'no multiscales[0]: not an OME-Zarr image');
  if (ms!.version !== '0.4') fail('.zattrs', `multiscales[0].version is ${JSON.stringify(ms!.version)}; statcell reads OME-Zarr 0.4`);
  const axes = ms!.axes as { name?: string; type?: string; unit?: string }[] | undefined;
  if (!Array.isArray(axes) || axes.some((a) => typeof a?.name !== 'string')) fail('.zattrs', 'multiscales[0].axes is not a list of named axes');
  const names = axes!.map((a) => a.name!).join('');
  if (!/^t?c?z?yx$/.test(names)) fail('.zattrs', `multiscales[0].axes are ${axes!.map((a) => a.name).join(',')}; expected (t,)(c,)(z,)y,x`);
  const ds = (ms!.datasets as { path?: unknown; coordinateTransformations?: { type: string; scale?: number[] }[] }[] | undefined)?.[0];
  if (typeof ds?.path !== 'string' || !SAFE_PATH.test(ds.path)) fail('.zattrs', `multiscales[0].datasets[0].path ${JSON.stringify(ds?.path)} is not a relative path inside the folder`);
  const path = ds!.path as string;
  const meta = await readJson(`${path}/.zarray`);
  if (!meta) fail(`${path}/.zarray`, 'no such file: the array of multiscales[0].datasets[0] is missing');
  const m = meta!;
  const field = (f: string, msg: string): never => fail(`${path}/.zarray`, `${f}: ${msg}`);
  if (m.zarr_format !== 2) field('zarr_format', `${JSON.stringify(m.zarr_format)}, expected 2`);
  const dtype = DTYPES[m.dtype as string];
  if (!dtype) field('dtype', `${JSON.stringify(m.dtype)}; expected uint8 ('|u1'), uint16 ('<u2') or float32 ('<f4')`);
  const shape = m.shape as number[];
  const chunks = m.chunks as number[];
  const dims = (v: unknown) => Array.isArray(v) && v.length === axes!.length && v.every((d) => Number.isSafeInteger(d) && d >= 1);
  if (!dims(shape)) field('shape', `${JSON.stringify(m.shape)}; expected ${axes!.length} positive whole numbers (axes ${names.split('').join(',')})`);
  if (!dims(chunks)) field('chunks', `${JSON.stringify(m.chunks)}; expected ${axes!.length} positive whole numbers`);
  if (m.filters !== null && m.filters !== undefined && !(Array.isArray(m.filters) && m.filters.length === 0)) field('filters', 'filters are not supported (expected null)');
  const comp = m.compressor as { id?: string } | null;
  if (comp !== null && !COMPRESSORS.includes(comp?.id as string)) field('compressor', `${JSON.stringify(comp?.id)}; expected null, ${COMPRESSORS.join(', ')}`);
  if (m.order !== 'C' && m.order !== 'F') field('order', `${JSON.stringify(m.order)}, expected "C" or "F"`);
  // zarrita joins a chunk's indices with it into the chunk's key: "/../../x/" would read files outside the folder.
  if (m.dimension_separator !== undefined && m.dimension_separator !== '.' && m.dimension_separator !== '/') field('dimension_separator', `${JSON.stringify(m.dimension_separator).slice(0, 40)}, expected "." or "/"`);
  const size = (a: string) => (names.includes(a) ? shape[names.indexOf(a)] : 1);
  if (size('t') !== 1) field('shape', `${size('t')} time points; a cell is one`);
  const C = size('c');
  const [Y, X, Z] = [size('y'), size('x'), size('z')];
  const want = o.dims ?? (names.includes('z') ? 3 : 2);
  if (want === 3 && !names.includes('z')) field('shape', `a 2D image (axes ${names.split('').join(',')}) but the model takes 3D input`);
  if (want === 2 && Z !== 1) field('shape', `${Z} Z slices but the model takes 2D input`);
  const spatial = want === 3 ? [Y, X, Z] : [Y, X];
  try {
    checkDeclared(`${file}/${path}/.zarray`, spatial, C, o.bounds, BYTES[dtype]);
  } catch (e) {
    throw new ImageError(`${file}/${path}/.zarray`, `shape: ${(e as Error).message.replace(/^.*?\.zarray: /, '')}`);
  }
  const chunkBytes = chunks.reduce((a, b) => a * b, BYTES[dtype]);
  if (chunkBytes > MAX_DECODED_BYTES) field('chunks', `${chunks.join('×')} = ${(chunkBytes / MiB).toFixed(0)} MiB a chunk, more than the ${MAX_DECODED_BYTES / MiB} MiB allowed`);
  const nChunks = shape.reduce((a, d, i) => a * Math.ceil(d / chunks[i]), 1);
  if (nChunks > MAX_ZARR_CHUNKS) field('chunks', `${chunks.join('×')} over ${shape.join('×')} is ${nChunks} chunks, more than ${MAX_ZARR_CHUNKS}`);
  // Compressed chunks may be slightly larger than raw ones; uncompressed ones are exactly their size.
  const chunkFileMax = comp === null ? chunkBytes : chunkBytes + Math.ceil(chunkBytes / 8) + 4096;

  // Physical pixel sizes from the dataset's scale (and the multiscale's, if any), in µm.
  let pixelSize: Image['pixelSize'];
  const scales = [ds!.coordinateTransformations, ms!.coordinateTransformations as NonNullable<typeof ds>['coordinateTransformations']].flatMap((t) => (Array.isArray(t) ? t.filter((x) => x?.type === 'scale') : []));
  const um = (a: string) => {
    const i = names.indexOf(a);
    if (i < 0 || !scales.length) return undefined;
    const f = TO_UM[axes![i].unit ?? ''];
    const v = scales.reduce((p, s) => p * Number(s.scale?.[i]), 1);
    return f !== undefined && v > 0 && Number.isFinite(v) ? v * f : undefined;
  };
  const px = um('x');
  const py = um('y');
  if (px !== undefined && py !== undefined) pixelSize = { x: px, y: py, z: um('z'), source: `the OME-Zarr's multiscales scale (${file})` };
  const omero = (attrs!.omero as { channels?: { label?: string }[] } | undefined)?.channels;
  const channelNames = omero?.length === C ? omero.map((c, i) => (typeof c?.label === 'string' ? c.label : `channel ${i}`)) : undefined;

  return { fail, path, shape, chunks, comp, dtype: dtype!, chunkBytes, chunkFileMax, names, C, Y, X, Z, spatial, channelNames, pixelSize };
}

/**
 * Reads the first multiscale level of an OME-Zarr 0.4 cell image as C × Y × X(× Z). `file` names
 * the folder in errors; every field is checked before the chunks are read, against `bounds` (the
 * model's size and fit) like any image.
 */
export async function decodeOmeZarr(file: string, src: ZarrSource, o: { dims?: 2 | 3; bounds?: ImageBounds } = {}): Promise<Image> {
  const { fail, path, shape, chunks, comp, dtype, chunkBytes, chunkFileMax, names, C, Y, X, Z, spatial, channelNames, pixelSize } = await zarrMetadata(file, src, o);
  // The chunks, through zarrita, from a store that reads each key within its bound and refuses a missing chunk.
  const store = {
    async get(key: string) {
      const k = key.replace(/^\//, '');
      const isMeta = /(^|\/)\.z(array|attrs|group)$/.test(k);
      const b = await src.get(k, isMeta ? MAX_ZARR_METADATA_BYTES : chunkFileMax);
      if (!b && !isMeta) fail(k, `chunk file missing (the array ${path} declares ${shape.join('×')} in chunks of ${chunks.join('×')}); a partial copy?`);
      // Zarr v2 stores every chunk whole (edge chunks padded); zarrita would read a short raw one as fill values.
      if (b && !isMeta && comp === null && b.length !== chunkBytes) fail(k, `an uncompressed chunk of ${b.length} bytes; a ${chunks.join('×')} chunk of ${dtype} is ${chunkBytes} (a partial copy?)`);
      return b;
    },
  };
  let out: { data: ArrayLike<number>; shape: number[]; stride: number[] };
  try {
    const arr = await zarr.open.v2(zarr.root(store).resolve(path), { kind: 'array' });
    out = (await zarr.get(arr)) as typeof out;
  } catch (e) {
    if (e instanceof ImageError) throw e;
    const cause = (e as { cause?: Error }).cause;
    throw new ImageError(`${file}/${path}`, `cannot read the array: ${(e as Error).message}${cause ? `: ${cause.message}` : ''}`);
  }
  const at = (a: string) => (names.includes(a) ? out.stride[names.indexOf(a)] : 0);
  const [sc, sz, sy, sx] = [at('c'), at('z'), at('y'), at('x')];
  const data = new (dtype === 'uint8' ? Uint8Array : dtype === 'uint16' ? Uint16Array : Float32Array)(C * Y * X * Z);
  for (let c = 0; c < C; c++) for (let y = 0; y < Y; y++) for (let x = 0; x < X; x++) for (let z = 0; z < Z; z++) data[((c * Y + y) * X + x) * Z + z] = out.data[c * sc + z * sz + y * sy + x * sx];
  return { channels: C, spatial, data, dtype, channelNames, pixelSize };
}
