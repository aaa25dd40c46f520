// Shortens the names of the wasm module's imports and exports, in the module and in
// wasm-bindgen's glue.
//   node scripts/minify-imports.mjs <dir>   (holding signal_guest_sdk_bg.wasm and signal_guest_sdk.js)
//
// wasm-bindgen names each import after its JavaScript function plus a 16-digit hash, under a
// module path ("./signal_guest_sdk_bg.js", "./snippets/…/shim.js") that the module repeats for
// every import: about 3.5 KB of the module, 1.5 KB gzipped, that only the glue reads. Here
// every import moves to module "a" under a base-36 index, and the glue's import object gets
// the same keys. The exports the glue reads as `wasm.<name>` (the class's methods, the
// allocator, closure trampolines with hashed names; 0.8 KB) get base-36 names too: the glue is
// their only reader, and the package's API is the glue's, not the module's.
// Anything unexpected in either file stops the build instead of shipping a mismatch.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const dir = process.argv[2];
if (!dir) throw new Error('usage: node scripts/minify-imports.mjs <dir>');
const wasmPath = path.join(dir, 'signal_guest_sdk_bg.wasm');
const gluePath = path.join(dir, 'signal_guest_sdk.js');
const wasm = readFileSync(wasmPath);
let glue = readFileSync(gluePath, 'utf8');

function readLeb(bytes, at) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const b = bytes[at++];
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (b < 0x80) return [value, at];
  }
}

function leb(n) {
  const out = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

const name = (s) => [...leb(Buffer.byteLength(s)), ...Buffer.from(s)];

// Renames, in the export section (id 7), every export the glue reads as `wasm.<name>`.
const exportsRenamed = [];
function renameExports(body) {
  let [count, p] = readLeb(body, 0);
  const rewritten = [...leb(count)];
  for (let i = 0; i < count; i++) {
    let len;
    [len, p] = readLeb(body, p);
    const field = body.subarray(p, p + len).toString();
    p += len;
    const descriptorAt = p;
    p += 1;
    [, p] = readLeb(body, p);
    const reads = glue.split(`wasm.${field}`).length - 1;
    const short = `x${i.toString(36)}`;
    const keep = reads === 0;
    if (!keep) exportsRenamed.push({ field, short });
    rewritten.push(...name(keep ? field : short), ...body.subarray(descriptorAt, p));
  }
  if (p !== body.length) throw new Error('export section: trailing bytes');
  return Buffer.from([7, ...leb(rewritten.length), ...rewritten]);
}

// Rewrites the import section (id 2); every other section is copied as it is.
const imports = [];
const out = [wasm.subarray(0, 8)];
let at = 8;
while (at < wasm.length) {
  const id = wasm[at];
  const [size, bodyAt] = readLeb(wasm, at + 1);
  const end = bodyAt + size;
  if (id === 11) {
    // build.sh's --low-memory-unused holds only with the stack first and data above it.
    const [, segAt] = readLeb(wasm, bodyAt);
    if (wasm[segAt] !== 0 || wasm[segAt + 1] !== 0x41) throw new Error('data section: unexpected first segment');
    const [offset] = readLeb(wasm, segAt + 2);
    if (offset < 1024 * 1024) throw new Error(`data starts at ${offset}, below the 1 MiB stack: drop --low-memory-unused`);
  }
  if (id === 7) {
    out.push(renameExports(wasm.subarray(bodyAt, end)));
    at = end;
    continue;
  }
  if (id !== 2) {
    out.push(wasm.subarray(at, end));
    at = end;
    continue;
  }
  const body = wasm.subarray(bodyAt, end);
  let [count, p] = readLeb(body, 0);
  const rewritten = [...leb(count)];
  for (let i = 0; i < count; i++) {
    let len;
    [len, p] = readLeb(body, p);
    const module = body.subarray(p, p + len).toString();
    p += len;
    [len, p] = readLeb(body, p);
    const field = body.subarray(p, p + len).toString();
    p += len;
    const descriptorAt = p;
    const kind = body[p++];
    if (kind !== 0) throw new Error(`import ${module} ${field}: only functions are expected (kind ${kind})`);
    [, p] = readLeb(body, p);
    const short = i.toString(36);
    imports.push({ module, field, short });
    rewritten.push(...name('a'), ...name(short), ...body.subarray(descriptorAt, p));
  }
  if (p !== body.length) throw new Error('import section: trailing bytes');
  out.push(Buffer.from([2, ...leb(rewritten.length), ...rewritten]));
  at = end;
}
if (imports.length === 0) throw new Error('no imports found (already minified?)');

// The glue: `function __wbg_get_imports() { const import0 = { key: function(…) {…}, … };
// return { "<module>": import0, "<snippet>": import1, … }; }`.
const start = glue.indexOf('function __wbg_get_imports() {');
const returnAt = glue.indexOf('\n    return {\n        __proto__: null,\n', start);
const returnEnd = glue.indexOf('\n    };\n}', returnAt);
if (start < 0 || returnAt < 0 || returnEnd < 0) throw new Error('glue: __wbg_get_imports has an unexpected shape');
const moduleObjects = new Map();
for (const m of glue.slice(returnAt, returnEnd).matchAll(/\n {8}"([^"]+)": (import\d+),/g)) moduleObjects.set(m[1], m[2]);
const own = moduleObjects.get('./signal_guest_sdk_bg.js');
if (own !== 'import0') throw new Error('glue: the module\'s own imports are not import0');

let body = glue.slice(start, returnAt);
const borrowed = [];
for (const { module, field, short } of imports) {
  const object = moduleObjects.get(module);
  if (!object) throw new Error(`glue: no import object for module ${module}`);
  if (object === own) {
    const key = `\n        ${field}: function(`;
    const found = body.split(key).length - 1;
    if (found !== 1) throw new Error(`glue: import ${field} found ${found} times`);
    body = body.replace(key, `\n        "${short}": function(`);
  } else {
    borrowed.push(`    import0["${short}"] = ${object}.${field};`);
  }
}
glue = `${glue.slice(0, start)}${body}\n${borrowed.join('\n')}\n    return { __proto__: null, a: import0 };\n}${glue.slice(returnEnd + '\n    };\n}'.length)}`;

if (exportsRenamed.length === 0) throw new Error('no exports renamed');
for (const { field, short } of exportsRenamed) {
  // `wasm.<name>` and nothing longer that starts with it (the names are matched whole).
  const pattern = new RegExp(`\\bwasm\\.${field.replace(/\$/g, '\\$')}(?![\\w$])`, 'g');
  const found = glue.match(pattern)?.length ?? 0;
  if (found === 0) throw new Error(`glue: export ${field} is not read as wasm.${field}`);
  glue = glue.replace(pattern, `wasm.${short}`);
}
writeFileSync(wasmPath, Buffer.concat(out));
writeFileSync(gluePath, glue);
console.log(`minified ${imports.length} import and ${exportsRenamed.length} export names`);
