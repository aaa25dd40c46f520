// Runs in the demo page (page.evaluate): one chat message published by a participant whose
// Room uses `option` ('encryption' or the deprecated 'e2ee') with the meeting key, taken off
// the wire where the SFU would see it, and handed to a guest Room with `encryption` and the
// key provider the SDK filled (`window.keyProvider`). No SFU: the participant's data channel
// is a function that keeps the bytes, the guest's is a call with them.
export async function dataPacketCheck({ key, option }) {
  const lk = await import('/vendor/livekit-client.mjs');
  const worker = () => new Worker('/vendor/livekit-client.e2ee.worker.mjs', { type: 'module' });
  const text = 'chat: meet at the west door';
  const until = async (condition, what) => {
    for (const started = performance.now(); !condition();) {
      if (performance.now() - started > 10_000) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  // What a connected room does once its signal connection is up, without a server.
  const encryptedRoom = async (options) => {
    const room = new lk.Room(options);
    await room.setE2EEEnabled(true);
    room.emit(lk.RoomEvent.SignalConnected);
    await until(() => room.e2eeManager.isEnabled, 'E2EE enabled');
    return room;
  };

  // The participant: a shared key at index 0, as participants with livekit-client hold it.
  const participantKeys = new lk.ExternalE2EEKeyProvider();
  await participantKeys.setKey(key);
  const participant = await encryptedRoom({ [option]: { keyProvider: participantKeys, worker: worker() } });
  const wire = [];
  participant.engine.ensurePublisherConnected = async () => {};
  participant.engine.dataChannels.reliable.send = async (bytes) => { wire.push(new Uint8Array(bytes)); };
  await participant.localParticipant.publishData(new TextEncoder().encode(text), { reliable: true });
  if (wire.length !== 1) throw new Error(`expected one packet on the wire, got ${wire.length}`);
  const seen = new TextDecoder('latin1').decode(wire[0]);

  const guest = await encryptedRoom({ encryption: { keyProvider: window.keyProvider, worker: worker() } });
  const received = new Promise((resolve) => {
    guest.on(lk.RoomEvent.DataReceived, (payload) => resolve(new TextDecoder().decode(payload)));
  });
  await guest.engine.handleDataMessage({ data: wire[0].slice().buffer });
  const got = await Promise.race([received, new Promise((r) => setTimeout(() => r(null), 5_000))]);
  return {
    wireHasText: seen.includes(text),
    guestReceived: got,
  };
}
