// Our engine, built for Node by wasm-pack (`--target nodejs --features interop`), behind the
// same async interface as the peers in peers.js.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const wasmPath = process.env.SIGNAL_WASM_PKG ?? new URL('../target/pkg-node/signal_guest_sdk.js', import.meta.url).pathname;
const { SignalParty } = require(wasmPath);

export { SignalParty };

export class OursPeer {
  kind = 'ours';
  constructor(oneTimePreKeyCount = 5) {
    this.party = new SignalParty(oneTimePreKeyCount);
    this.registrationId = this.party.registrationId;
  }
  identityKey() { return this.party.identityKey(); }
  bundle({ withOneTimePreKey = true } = {}) { return this.party.bundle(withOneTimePreKey); }
  async processBundle(address, bundle) { this.party.processBundle(address, bundle); }
  async encrypt(address, plaintext) { return this.party.encrypt(address, plaintext); }
  async decrypt(address, message) { return this.party.decrypt(address, message.type, message.body); }
  async hasSession(address) { return this.party.hasSession(address); }
  sign(message) { return this.party.sign(message); }
  verify(key, message, signature) { return SignalParty.verify(key, message, signature); }
}
