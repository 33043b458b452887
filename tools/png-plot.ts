// A small line-chart PNG writer (no dependencies): stacked panels, one series
// each, drawn on a grey grid. Enough to show that nothing grows in a soak run.
import * as zlib from 'node:zlib';

const CRC = new Int32Array(256).map((_, n) => { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; return c; });
function crc32(b: Buffer): number { let c = -1; for (const x of b) c = CRC[(c ^ x) & 0xff] ^ (c >>> 8); return (c ^ -1) >>> 0; }
function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

// 3x5 digits for axis labels.
const DIGITS: Record<string, string> = {
  '0': '111101101101111', '1': '010110010010111', '2': '111001111100111', '3': '111001111001111', '4': '101101111001001',
  '5': '111100111001111', '6': '111100111101111', '7': '111001001001001', '8': '111101111101111', '9': '111101111001111', '.': '000000000000010',
};

export function plotPng(panels: { label: string; values: number[]; color: [number, number, number] }[], width = 900, panelH = 150): Buffer {
  const H = panels.length * panelH;
  const px = Buffer.alloc(width * H * 3, 255);
  const set = (x: number, y: number, c: [number, number, number]) => {
    if (x < 0 || y < 0 || x >= width || y >= H) return;
    const o = (y * width + x) * 3; px[o] = c[0]; px[o + 1] = c[1]; px[o + 2] = c[2];
  };
  const text = (s: string, x: number, y: number) => {
    for (const ch of s) {
      const g = DIGITS[ch];
      if (g) for (let i = 0; i < 15; i++) if (g[i] === '1') for (let dy = 0; dy < 2; dy++) for (let dx = 0; dx < 2; dx++) set(x + (i % 3) * 2 + dx, y + Math.floor(i / 3) * 2 + dy, [0, 0, 0]);
      x += 8;
    }
  };
  panels.forEach((p, k) => {
    const top = k * panelH + 10, bottom = (k + 1) * panelH - 10, left = 60, right = width - 10;
    // An all-zero series (no drops: the usual case) gets a 0..1 axis, not 0..1e-9.
    const max = Math.max(1, ...p.values) * 1.1;
    for (let g = 0; g <= 4; g++) {
      const y = Math.round(bottom - ((bottom - top) * g) / 4);
      for (let x = left; x <= right; x++) set(x, y, [220, 220, 220]);
      const v = (max * g) / 4;
      text(v >= 100 ? String(Math.round(v)) : v.toPrecision(3), 2, y - 5);
    }
    for (let x = left; x <= right; x++) set(x, bottom, [120, 120, 120]);
    for (let y = top; y <= bottom; y++) set(left, y, [120, 120, 120]);
    // The series' colour bar names the panel (labels are in the JSON and README).
    for (let y = top; y < top + 8; y++) for (let x = right - 40; x < right; x++) set(x, y, p.color);
    const n = p.values.length;
    let prev: [number, number] | undefined;
    p.values.forEach((v, i) => {
      const x = Math.round(left + ((right - left) * i) / Math.max(1, n - 1));
      const y = Math.round(bottom - ((bottom - top) * v) / max);
      if (prev) {
        const steps = Math.max(Math.abs(x - prev[0]), Math.abs(y - prev[1]), 1);
        for (let s = 0; s <= steps; s++) set(Math.round(prev[0] + ((x - prev[0]) * s) / steps), Math.round(prev[1] + ((y - prev[1]) * s) / steps), p.color);
      }
      prev = [x, y];
    });
  });
  const raw = Buffer.alloc((width * 3 + 1) * H);
  for (let y = 0; y < H; y++) px.copy(raw, y * (width * 3 + 1) + 1, y * width * 3, (y + 1) * width * 3);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0); ihdr.writeUInt32BE(H, 4); ihdr[8] = 8; ihdr[9] = 2;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}
