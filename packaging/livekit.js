// `signal-guest-sdk/livekit`: a livekit-client key provider that keeps each key at the index
// the SDK hands over. livekit-client's `ExternalE2EEKeyProvider.setKey(key)` takes no index and
// puts every key in the current slot, so during a rotation the frames still under the old key
// and those under the new one compete for one slot. This provider is `BaseKeyProvider` in
// shared-key mode, with the same key derivation as `ExternalE2EEKeyProvider`: a string is
// PBKDF2 material (what PeerWave's participants pass), an ArrayBuffer HKDF material. It
// interoperates with participants that use either.
import { BaseKeyProvider, createKeyMaterialFromBuffer, createKeyMaterialFromString } from 'livekit-client';

/** A shared-key provider for `Room({ encryption: { keyProvider, worker } })`. */
export class GuestKeyProvider extends BaseKeyProvider {
  // Keys are derived one after the other, so that they reach the worker in the order given.
  #previous = Promise.resolve();

  constructor(options = {}) {
    // As ExternalE2EEKeyProvider: a shared key is never ratcheted or given up on after a
    // participant's frame fails (the key of another meeting member may just be late).
    super({ ...options, sharedKey: true, ratchetWindowSize: 0, failureTolerance: -1 });
  }

  /**
   * Derives the key from `material` and puts it at `keyIndex` (0–255; the worker's keyring
   * keeps `keyIndex % keyringSize`), which also becomes the index this guest encrypts with.
   */
  setKey(material, keyIndex = 0) {
    if (!Number.isInteger(keyIndex) || keyIndex < 0 || keyIndex > 255) {
      return Promise.reject(new RangeError(`keyIndex must be an integer from 0 to 255, not ${keyIndex}`));
    }
    if (typeof material !== 'string' && !(material instanceof ArrayBuffer)) {
      return Promise.reject(new TypeError('the key must be a string or an ArrayBuffer'));
    }
    const set = this.#previous.then(async () => {
      const key = typeof material === 'string'
        ? await createKeyMaterialFromString(material)
        : await createKeyMaterialFromBuffer(material);
      this.onSetEncryptionKey(key, undefined, keyIndex);
    });
    this.#previous = set.catch(() => {});
    return set;
  }
}
