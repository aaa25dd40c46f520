// Assembles the npm package pkg/signal-guest-sdk from the wasm-pack `web` build (pkg/web),
// the entries in packaging/, the integrator docs and the licence. One package for browsers,
// bundlers (Vite, webpack) and Node, chosen by the `exports` map.
//   node scripts/package.mjs      (scripts/build.sh package runs it)
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const from = path.join(root, 'pkg/web');
const to = path.join(root, 'pkg/signal-guest-sdk');
const cargo = fs.readFileSync(path.join(root, 'Cargo.toml'), 'utf8');
const field = (name) => cargo.match(new RegExp(`^${name} = "(.*)"$`, 'm'))?.[1];

fs.rmSync(to, { recursive: true, force: true });
fs.mkdirSync(to, { recursive: true });
const copy = (src, dst = path.basename(src)) => {
  fs.cpSync(src, path.join(to, dst), { recursive: true });
  return dst;
};

const generated = fs.readdirSync(from).filter((f) => !['package.json', 'README.md', '.gitignore'].includes(f) && !f.startsWith('LICENSE'));
for (const f of generated) copy(path.join(from, f));
for (const f of ['index.d.ts', 'node.js', 'livekit.js', 'livekit.d.ts']) copy(path.join(root, 'packaging', f));
// The entry builds its one error through the binding's shim, found where wasm-bindgen put it.
const shim = fs.readdirSync(path.join(from, 'snippets')).map((d) => `snippets/${d}/src/web/shim.js`)
  .filter((f) => fs.existsSync(path.join(from, f)));
if (shim.length !== 1) throw new Error(`expected one shim.js in ${from}/snippets, found ${shim.length}`);
const entry = fs.readFileSync(path.join(root, 'packaging/index.js'), 'utf8');
if (!entry.includes("from './shim.js'")) throw new Error('packaging/index.js no longer imports ./shim.js');
fs.writeFileSync(path.join(to, 'index.js'), entry.replace("from './shim.js'", `from './${shim[0]}'`));
copy(path.join(root, 'packaging/README.md'), 'README.md');
copy(path.join(root, 'LICENSE'), 'LICENSE');
fs.mkdirSync(path.join(to, 'docs'));
for (const f of ['contract.md', 'api.md']) copy(path.join(root, 'docs', f), path.join('docs', f));

const pkg = {
  name: 'signal-guest-sdk',
  version: field('version'),
  description: field('description'),
  license: field('license'),
  type: 'module',
  main: './index.js',
  types: './index.d.ts',
  exports: {
    '.': { types: './index.d.ts', node: './node.js', default: './index.js' },
    // A key provider for livekit-client that keeps key indices (livekit-client must be installed).
    './livekit': { types: './livekit.d.ts', default: './livekit.js' },
    './signal_guest_sdk_bg.wasm': './signal_guest_sdk_bg.wasm',
    './package.json': './package.json',
  },
  peerDependencies: { 'livekit-client': '^2.23.0' },
  peerDependenciesMeta: { 'livekit-client': { optional: true } },
  files: fs.readdirSync(to).filter((f) => f !== 'package.json'),
  sideEffects: ['./node.js'],
  keywords: ['signal', 'e2ee', 'livekit', 'webassembly', 'x3dh', 'double-ratchet'],
};
fs.writeFileSync(path.join(to, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
console.log(`assembled ${path.relative(root, to)}: ${pkg.files.length} entries`);
