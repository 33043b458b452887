// iced-x86, the x86 decoder, loaded on first use: compiling its WASM takes
// ~40 ms, which only commands that decode code should pay.
export type Iced = typeof import('iced-x86');

let iced: Iced | undefined;

export function loadIced(): Iced {
  if (!iced) iced = require('iced-x86') as Iced;
  return iced;
}
