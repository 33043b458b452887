// Rust symbol demangling (legacy `_ZN…17h<hash>E` and v0 `_R…`) through
// gecko-profiler-demangle, which wraps rustc-demangle compiled to WASM.
//
// The package is a wasm-bindgen "bundler" build whose entry point imports the
// .wasm file as an ES module; Node 20 cannot do that without a flag. So we
// instantiate the .wasm ourselves, synchronously, and wire it to the package's
// JS glue (index_bg.js), keeping demangle() synchronous for the symbol index.

import * as fs from 'node:fs';

interface DemangleGlue {
  __wbg_set_wasm(exports: WebAssembly.Exports): void;
  demangle_any(name: string): string;
}

let glue: DemangleGlue | undefined;

function loadGlue(): DemangleGlue {
  if (glue) return glue;
  let g: DemangleGlue;
  try {
    // index_bg.js is an ES module; require() of ES modules works from Node 20.19 on.
    g = require('gecko-profiler-demangle/index_bg.js') as DemangleGlue;
  } catch (e) {
    throw new Error(`cannot load the Rust demangler (needs Node >= 20.19): ${(e as Error).message}`);
  }
  const wasmPath = require.resolve('gecko-profiler-demangle/index_bg.wasm');
  const module = new WebAssembly.Module(fs.readFileSync(wasmPath));
  const instance = new WebAssembly.Instance(module, { './index_bg.js': g as unknown as WebAssembly.ModuleImports });
  g.__wbg_set_wasm(instance.exports);
  (instance.exports.__wbindgen_start as () => void)();
  glue = g;
  return g;
}

// ThinLTO appends `.llvm.<digits>` to promoted local symbols; it is not part of the name.
const LLVM_SUFFIX = /\.llvm\.\d+$/;
// Legacy names always end in a 16-hex-digit hash path segment. Requiring it keeps
// plain C++ `_ZN…E` names (which rustc-demangle would also accept) out.
// Other `.suffix`es (e.g. `.cold`) are kept: they name a different code fragment.
const LEGACY = /17h([0-9a-f]{16})E(?:\.[A-Za-z0-9_.$]+)?$/;
// v0: `_R`, an optional decimal encoding version, then an uppercase path tag.
const V0 = /^_R[0-9]*[A-Z]/;

function withoutLlvmSuffix(name: string): string {
  return name.includes('.llvm.') ? name.replace(LLVM_SUFFIX, '') : name;
}

export function isRustMangled(name: string): boolean {
  // Cheap prefix checks first: this runs over every symbol of large C++ binaries too.
  if (name.startsWith('_R')) return V0.test(name);
  return name.startsWith('_ZN') && LEGACY.test(withoutLlvmSuffix(name));
}

/** The 16-hex-digit hash of a legacy-mangled name, or null (v0 names have none). */
export function legacyHash(mangled: string): string | null {
  if (!mangled.startsWith('_ZN')) return null;
  const m = LEGACY.exec(withoutLlvmSuffix(mangled));
  return m ? m[1] : null;
}

/**
 * The demangled name without the legacy hash, e.g.
 * `<hyper::proto::h1::role::Server as hyper::proto::h1::Http1Transaction>::parse`,
 * or null if `mangled` is not a valid Rust symbol.
 */
export function demangle(mangled: string): string | null {
  const name = withoutLlvmSuffix(mangled);
  if (!isRustMangled(name)) return null;
  const out = loadGlue().demangle_any(name);
  // On failure the library returns its input, or its input minus the leading `_`
  // (after falling back to the C++ demangler).
  if (out === name || out === name.slice(1)) return null;
  return out;
}
