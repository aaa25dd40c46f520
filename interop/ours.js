// Our engine, built for Node by wasm-pack (`--target nodejs --features interop`), behind the
// same async interface as the peers in peers.js.
import { createRequire } from 'node:module';
import { makeOursPeer } from './ours-peer.js';

const require = createRequire(import.meta.url);
const wasmPath = process.env.SIGNAL_WASM_PKG ?? new URL('../target/pkg-node/signal_guest_sdk.js', import.meta.url).pathname;
const { SignalParty } = require(wasmPath);

export { SignalParty };

export const OursPeer = makeOursPeer(SignalParty);
