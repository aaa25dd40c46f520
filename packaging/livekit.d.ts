import { BaseKeyProvider, type KeyProviderOptions } from 'livekit-client';

/**
 * A livekit-client key provider that keeps each key at the index the SDK hands over
 * (`ExternalE2EEKeyProvider` ignores the index). Shared-key mode, with the same key
 * derivation as `ExternalE2EEKeyProvider`: a string is PBKDF2 material, an `ArrayBuffer`
 * HKDF material.
 */
export declare class GuestKeyProvider extends BaseKeyProvider {
  constructor(options?: Partial<Omit<KeyProviderOptions, 'sharedKey' | 'ratchetWindowSize' | 'failureTolerance'>>);
  /**
   * Derives the key and puts it at `keyIndex` (0–255, default 0), which also becomes the
   * index this guest encrypts with. Rejects a `RangeError` for another index and a
   * `TypeError` for another kind of material; keys are set in the order given.
   */
  setKey(material: string | ArrayBuffer, keyIndex?: number): Promise<void>;
}
