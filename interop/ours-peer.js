// Our engine behind the same async interface as the peers in peers.js, over whichever build of
// the interop binding the caller loaded (Node: interop/ours.js; browser: bench/browser/).

/** The peer class over `SignalParty` (the interop binding's class). */
export function makeOursPeer(SignalParty) {
  return class OursPeer {
    kind = 'ours';
    /** With `kyberPreKey` the bundle carries a signed Kyber prekey, so initiators that read it
     *  (official 0.103, and ours) start v4 sessions; 0.72.1 and the TypeScript port ignore it. */
    constructor(oneTimePreKeyCount = 5, kyberPreKey = true) {
      this.party = new SignalParty(oneTimePreKeyCount, kyberPreKey);
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
  };
}
