// The in-memory session, one-time prekey and signed prekey stores of the official libsignal
// peers, one definition for both packages (0.72.1 in peers.js, 0.103.0 in peer-current.js):
// each store subclasses its own package's bridge class, so the classes are made per package.
// Records are kept as the objects libsignal hands over (it copies what it is given and hands a
// new record to every save), so a message costs no serialization round trip.

/** @param {any} lib the package's module namespace */
export function recordStores(lib) {
  class SessionStore extends lib.SessionStore {
    /** records by "name.deviceId" */
    sessions = new Map();
    async saveSession(address, record) { this.sessions.set(address.toString(), record); }
    async getSession(address) { return this.sessions.get(address.toString()) ?? null; }
    async getExistingSessions(addresses) {
      return Promise.all(addresses.map(async (a) => {
        const r = await this.getSession(a);
        if (!r) throw new Error(`no session for ${a.toString()}`);
        return r;
      }));
    }
  }

  class PreKeyStore extends lib.PreKeyStore {
    preKeys = new Map();
    async savePreKey(id, record) { this.preKeys.set(id, record); }
    async getPreKey(id) {
      const r = this.preKeys.get(id);
      if (!r) throw new Error(`no one-time prekey ${id}`);
      return r;
    }
    async removePreKey(id) { this.preKeys.delete(id); }
  }

  class SignedPreKeyStore extends lib.SignedPreKeyStore {
    signedPreKeys = new Map();
    async saveSignedPreKey(id, record) { this.signedPreKeys.set(id, record); }
    async getSignedPreKey(id) {
      const r = this.signedPreKeys.get(id);
      if (!r) throw new Error(`no signed prekey ${id}`);
      return r;
    }
  }

  return { SessionStore, PreKeyStore, SignedPreKeyStore };
}
