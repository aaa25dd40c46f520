// The package's entry for Node: the WebAssembly module is read from the package directory at
// import time, so there is nothing to initialise (init() is there for code shared with the
// browser, and resolves at once).
import { readFileSync } from 'node:fs';
import { initSync } from './index.js';

initSync({ module: readFileSync(new URL('./signal_guest_sdk_bg.wasm', import.meta.url)) });

export * from './index.js';

export default async function init() {}
