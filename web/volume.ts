// The 3D view of a 3D run's cells, rendered by @aics/vole-core (the Allen Cell viewer's engine,
// WebGL2 ray marching): the selected cell, its reconstruction, or the integrated cell (the
// structures the target model generated in it), as one multi-channel volume with a toggle per
// channel. Loaded by the page only for 3D sites (a dynamic import: 2D pages never fetch three.js).
// Voxels go to vole-core as uint8 after the page's display gain (the contrast stretch of the
// site's cells), so the volume looks as the 2D projections do; the physical pixel sizes set its
// aspect.

import { LoadSpec, Lut, RawArrayLoader, View3d, type Volume } from '@aics/vole-core';
import { DEFAULT_PIXEL_SIZE, type PixelSize } from '../data/ome.ts';
import { PALETTE, STRUCTURE_COLOURS } from '../data/palette.ts';
import { escapeXml } from '../data/markup.ts';
import type { CellChannels } from '../session/feeds.ts';

type Rgb = [number, number, number];
export interface VolumeChannel {
  name: string;
  data: Float32Array;
  colour: Rgb;
  gain: number;
}

/** uint8 [C, Z, Y, X] (vole-core's layout) of channels [Y, X, Z] each (Z fastest, statcell's), times their gain, clipped to [0, 1]. */
export function volumeBytes(size: number[], channels: VolumeChannel[]): Uint8Array<ArrayBuffer> {
  const [Y, X, Z] = size;
  const out = new Uint8Array(new ArrayBuffer(channels.length * Z * Y * X));
  channels.forEach((ch, c) => {
    for (let y = 0; y < Y; y++)
      for (let x = 0; x < X; x++)
        for (let z = 0; z < Z; z++) out[((c * Z + z) * Y + y) * X + x] = Math.round(255 * Math.min(1, Math.max(0, ch.data[(y * X + x) * Z + z] * ch.gain)));
  });
  return out;
}

export type VolumeShown = 'cell' | 'reconstruction' | 'integrated';

/** The 3D view's panel: a vole-core View3d, which volume it shows, and its channel toggles. */
export class VolumePanel {
  private readonly view: View3d;
  private volume: Volume | null = null;
  private channels: VolumeChannel[] = [];
  private sources: Partial<Record<VolumeShown, { title: string; channels: VolumeChannel[] }>> = {};
  /** Channel names switched off by the user (kept across volumes). */
  private readonly off = new Set<string>();
  private busy: Promise<void> = Promise.resolve();
  private shownSource: { title: string; channels: VolumeChannel[] } | null = null;

  constructor(
    private readonly root: HTMLElement,
    private readonly size: number[],
    private readonly pixelSize: PixelSize = DEFAULT_PIXEL_SIZE,
    private readonly gain: Record<string, number> = {},
  ) {
    const holder = root.querySelector<HTMLElement>('.volume-canvas')!;
    this.view = new View3d({ parentElement: holder });
    if (!this.view.hasWebGL2()) throw new Error('the 3D view needs WebGL2, which this browser does not give');
    this.view.setBackgroundColor([0.05, 0.055, 0.063]); // the scatter's background (three.js colours are 0…1)
    this.view.setShowAxis(true);
    root.querySelector<HTMLSelectElement>('.volume-shown')!.addEventListener('change', () => this.render());
    root.querySelector('.volume-channels')!.addEventListener('change', (e) => {
      const input = e.target as HTMLInputElement;
      if (input.checked) this.off.delete(input.value);
      else this.off.add(input.value);
      this.applyToggles();
    });
  }

  private layers(ch: CellChannels): VolumeChannel[] {
    return (['membrane', 'structure', 'dna'] as const).filter((k) => ch[k]).map((k) => ({ name: k === 'dna' ? 'DNA' : k, data: ch[k]!, colour: PALETTE[k], gain: this.gain[k] ?? 1 }));
  }

  /** A selected cell and its reconstruction (its channels as decoded). */
  setCell(name: string, cell: CellChannels, recon: CellChannels): Promise<void> {
    this.sources.cell = { title: name, channels: this.layers(cell) };
    this.sources.reconstruction = { title: `reconstruction of ${name}`, channels: this.layers({ ...cell, ...recon }) };
    return this.render();
  }

  /** The integrated cell: membrane, each generated structure in its colour, DNA (the paper's order). */
  setIntegrated(name: string, cell: CellChannels, structures: [string, Float32Array][]): Promise<void> {
    const chans: VolumeChannel[] = [];
    if (cell.membrane) chans.push({ name: 'membrane', data: cell.membrane, colour: PALETTE.membrane, gain: this.gain.membrane ?? 1 });
    structures.forEach(([label, data], k) => chans.push({ name: label, data, colour: STRUCTURE_COLOURS[k % STRUCTURE_COLOURS.length], gain: this.gain.structure ?? 1 }));
    if (cell.dna) chans.push({ name: 'DNA', data: cell.dna, colour: PALETTE.dna, gain: this.gain.dna ?? 1 });
    this.sources.integrated = { title: `${structures.length} structure(s) generated in ${name}`, channels: chans };
    return this.render();
  }

  /** Shows the chosen volume (one render at a time, in order). */
  render(): Promise<void> {
    this.busy = this.busy.then(() => this.load()).catch((e) => {
      this.root.querySelector('.volume-note')!.textContent = `3D view: ${(e as Error).message}`;
      throw e;
    });
    return this.busy;
  }

  private async load(): Promise<void> {
    const shown = this.root.querySelector<HTMLSelectElement>('.volume-shown')!.value as VolumeShown;
    const src = this.sources[shown];
    // Nothing to show yet, or already shown (a new integrated cell while the cell is shown).
    if (!src || src === this.shownSource) return;
    this.shownSource = src;
    const [Y, X, Z] = this.size;
    this.channels = src.channels;
    const C = this.channels.length;
    const bytes = volumeBytes(this.size, this.channels);
    const ps = this.pixelSize;
    const loader = new RawArrayLoader(
      { dtype: 'uint8', shape: [C, Z, Y, X], buffer: new DataView(bytes.buffer) },
      { name: src.title, sizeX: X, sizeY: Y, sizeZ: Z, sizeC: C, physicalPixelSize: [ps.x, ps.y, ps.z ?? ps.x], spatialUnit: 'μm', channelNames: this.channels.map((c) => c.name) },
    );
    if (this.volume) this.view.removeAllVolumes();
    let arrived = 0;
    const all = new Promise<void>((ok) => {
      loader
        .createVolume(new LoadSpec(), (v, c) => {
          this.view.onVolumeData(v, [c]);
          this.view.updateChannelColor(v, c, this.channels[c].colour.map((x) => Math.round(255 * x)) as Rgb);
          // The LUT spans the whole uint8 range: the gain is already in the voxels.
          v.getChannel(c).setLut(new Lut().createFromMinMax(0, 255));
          this.view.setVolumeChannelEnabled(v, c, !this.off.has(this.channels[c].name));
          this.view.updateActiveChannels(v);
          this.view.updateLuts(v);
          if (++arrived === C) ok();
        })
        .then(async (v) => {
          this.volume = v;
          this.view.addVolume(v);
          await loader.loadVolumeData(v);
        });
    });
    await all;
    this.view.setMaxProjectMode(this.volume!, true);
    // A cell is small in vole-core's default frame (camera at 5 units from a unit-sized volume): closer, from above at an angle.
    if (!this.root.dataset.rendered) this.view.setCameraState({ position: [0.9, -1.2, 1.5], target: [0, 0, 0], up: [0, 0, 1] });
    this.view.redraw(true);
    this.drawToggles();
    const el = this.root.querySelector<HTMLElement>('.volume-note')!;
    el.textContent = `${src.title}: ${this.size.join('×')} voxels (Y×X×Z) of X ${ps.x}, Y ${ps.y}, Z ${ps.z ?? ps.x} µm, ${C} channels (vole-core, maximum intensity rendering; drag to rotate, scroll to zoom).`;
    this.root.dataset.rendered = String(Number(this.root.dataset.rendered ?? 0) + 1);
    this.root.dataset.shown = shown;
  }

  private drawToggles(): void {
    const fs = this.root.querySelector('.volume-channels')!;
    fs.querySelectorAll('label').forEach((l) => l.remove());
    for (const c of this.channels) {
      const lab = document.createElement('label');
      lab.innerHTML = `<input type="checkbox" value="${escapeXml(c.name)}" ${this.off.has(c.name) ? '' : 'checked'}> ${escapeXml(c.name)} `;
      fs.append(lab);
    }
  }

  private applyToggles(): void {
    if (!this.volume) return;
    this.channels.forEach((c, k) => this.view.setVolumeChannelEnabled(this.volume!, k, !this.off.has(c.name)));
    this.view.updateActiveChannels(this.volume);
    this.view.redraw(true);
    this.root.dataset.toggled = String(Number(this.root.dataset.toggled ?? 0) + 1);
  }
}
