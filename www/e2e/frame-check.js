// Runs in the demo page (pass it to page.evaluate with a base64 meeting key): encrypts a
// frame the way a participant's livekit-client would with that key, and decrypts it with
// the key material the page's key provider derived from what the SDK handed to setKey.
// Returns the frame's text, or 'decryption failed'.
export async function frameCheck(participantKey) {
  const lk = await import('/vendor/livekit-client.mjs');
  const options = window.keyProvider.getOptions();
  // Participant side: what the Flutter clients do with the base64 meeting key.
  const participantMaterial = await lk.createKeyMaterialFromString(participantKey);
  const { encryptionKey: sending } = await lk.deriveKeys(participantMaterial, options);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const frame = new TextEncoder().encode('an encrypted video frame');
  const sealed = await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, sending, frame);
  // Guest side: the material the provider derived from what the SDK passed to setKey.
  const [guestKey] = window.keyProvider.getKeys();
  const { encryptionKey: receiving } = await lk.deriveKeys(guestKey.key, options);
  try {
    return new TextDecoder().decode(await crypto.subtle.decrypt({ name: 'AES-GCM', iv }, receiving, sealed));
  } catch {
    return 'decryption failed';
  }
}
