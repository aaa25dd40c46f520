// Runs in the demo page (page.evaluate): livekit-client's own E2EE worker and frame cryptor on
// both ends of a video track, with no SFU in between. The participant's end is the worker as
// livekit-client's E2EEManager drives it (init, setKey, enable, encode); the guest's end is a
// `Room({ encryption })` whose key provider is the one the SDK fills (`window.keyProvider`), so
// every key reaches it the way it does in a meeting: participant → Signal → SDK → provider →
// E2EEManager → worker. Each worker runs livekit-client's worker script unchanged; a small
// wrapper around it feeds frames made here into the cryptor's transform and hands back what
// comes out (a browser gives the worker RTCEncodedVideoFrames; these have the same fields).
//
// Two tracks from the participant: `video`, the continuous stream the rotation must not break,
// and `probe`, encrypted under the newest key as soon as it exists, whose first decrypted frame
// says when the guest could use a new key.

/**
 * Sets up both ends and starts sending a frame every `everyMs` on `video`.
 * `key`: the meeting key as the SDK hands it over (base64 text or raw bytes as base64, see
 * `profile`); `keyIndex`: its index. Leaves `window.lkHarness` for the calls below.
 */
export async function startTrack({ key, keyIndex, profile = 'base64', everyMs = 10 }) {
  const lk = await import('/vendor/livekit-client.mjs');
  const js = (source) => URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
  // Acknowledgements of the harness's own messages stay in the worker (the guest's E2EEManager
  // would look for a remote participant that only a connected room has).
  const quiet = js(`self.harnessPost = self.postMessage.bind(self);
    self.postMessage = (m, t) => { if (!m?.data?.harness) self.harnessPost(m, t); };`);
  const workerUrl = js(`import '${quiet}';
    import '${location.origin}/vendor/livekit-client.e2ee.worker.mjs';
    const livekit = self.onmessage;
    const feeds = new Map();
    self.onmessage = (ev) => {
      const m = ev.data;
      if (m.kind === 'harness:track') {
        let feed;
        const readableStream = new ReadableStream({ start(c) { feed = c; } });
        const writableStream = new WritableStream({ write(f) {
          self.harnessPost({ kind: 'harness:out', trackId: m.trackId, data: f.data, timestamp: f.timestamp }, [f.data]);
        } });
        feeds.set(m.trackId, feed);
        livekit({ data: { kind: m.operation, data: { readableStream, writableStream, trackId: m.trackId,
          codec: 'vp8', participantIdentity: m.participantIdentity } } });
      } else if (m.kind === 'harness:frame') {
        const { data, timestamp } = m;
        feeds.get(m.trackId).enqueue({ data, timestamp, type: 'delta',
          getMetadata: () => ({ synchronizationSource: m.ssrc, payloadType: 96, rtpTimestamp: timestamp }) });
      } else {
        livekit(ev);
      }
    };`);
  const PARTICIPANT = 'participant-1';
  const options = new lk.ExternalE2EEKeyProvider().getOptions(); // what shared-key participants run
  const material = (k) => (profile === 'base64'
    ? lk.createKeyMaterialFromString(k)
    : lk.createKeyMaterialFromBuffer(Uint8Array.from(atob(k), (c) => c.charCodeAt(0)).buffer));

  // A participant's sending end: livekit-client's worker driven with the messages its
  // E2EEManager sends.
  async function sender(trackId) {
    const worker = new Worker(workerUrl, { type: 'module' });
    worker.postMessage({ kind: 'init', data: { keyProviderOptions: options, loglevel: 'warn' } });
    worker.postMessage({ kind: 'enable', data: { enabled: true, participantIdentity: PARTICIPANT } });
    worker.postMessage({ kind: 'harness:track', operation: 'encode', trackId, participantIdentity: PARTICIPANT });
    return worker;
  }
  const video = await sender('video');
  const probe = await sender('probe');

  // The guest's end: a Room with `encryption` and the SDK's key provider. No SFU: the events a
  // connection would bring (signal connected; the participant's track) are given here.
  const guestWorker = new Worker(workerUrl, { type: 'module' });
  const room = new lk.Room({ encryption: { keyProvider: window.keyProvider, worker: guestWorker } });
  await room.setE2EEEnabled(true);
  room.emit(lk.RoomEvent.SignalConnected);
  guestWorker.postMessage({ kind: 'enable', data: { enabled: true, participantIdentity: PARTICIPANT, harness: true } });
  for (const trackId of ['video', 'probe']) {
    guestWorker.postMessage({ kind: 'harness:track', operation: 'decode', trackId, participantIdentity: PARTICIPANT });
  }

  const h = (window.lkHarness = {
    sent: 0, stopped: false,
    sentIndex: [], // key index of each video frame, from its trailer
    decrypted: [], // video frame numbers the guest decrypted
    firstDecrypted: {}, // key index -> page time of the first video frame decrypted under it
    probeDecrypted: {}, // key index -> page time of the first probe frame decrypted under it
    switchedAt: {}, // key index -> page time the participant started sending under it
    errors: 0,
  });
  room.on(lk.RoomEvent.EncryptionError, () => { h.errors += 1; });

  const frame = (n) => {
    const data = new Uint8Array(3 + 4 + 200); // VP8 delta frame: 3 bytes stay in the clear
    new DataView(data.buffer).setUint32(3, n);
    data.fill(0x5a, 7);
    return data.buffer;
  };
  video.onmessage = (ev) => {
    if (ev.data.kind !== 'harness:out') return;
    const bytes = new Uint8Array(ev.data.data);
    h.sentIndex[ev.data.timestamp / 3000] = bytes[bytes.length - 1];
    guestWorker.postMessage({ kind: 'harness:frame', trackId: 'video', ssrc: 1, data: ev.data.data, timestamp: ev.data.timestamp }, [ev.data.data]);
  };
  probe.onmessage = (ev) => {
    if (ev.data.kind !== 'harness:out') return;
    guestWorker.postMessage({ kind: 'harness:frame', trackId: 'probe', ssrc: 2, data: ev.data.data, timestamp: ev.data.timestamp }, [ev.data.data]);
  };
  guestWorker.addEventListener('message', (ev) => {
    if (ev.data.kind !== 'harness:out') return;
    const n = new DataView(ev.data.data).getUint32(3);
    if (ev.data.trackId === 'video') {
      h.decrypted.push(n);
      const index = h.sentIndex[n];
      h.firstDecrypted[index] ??= performance.now();
    } else {
      h.probeDecrypted[n] ??= performance.now(); // probe frames carry their key index
    }
  });

  /** The participant's key at `index`: installed at once, sent under only when `use`. */
  h.install = async ({ key: k, keyIndex: index, use }) => {
    const keyMaterial = await material(k);
    video.postMessage({ kind: 'setKey', data: { key: keyMaterial, keyIndex: index, updateCurrentKeyIndex: use } });
    if (use) h.switchedAt[index] = performance.now();
    // The probe always sends under the newest key, a frame every 2 ms until the guest has it.
    probe.postMessage({ kind: 'setKey', data: { key: keyMaterial, keyIndex: index, updateCurrentKeyIndex: true } });
    clearInterval(h.probing);
    let t = 0;
    h.probing = setInterval(() => {
      if (h.probeDecrypted[index] !== undefined) return clearInterval(h.probing);
      t += 1;
      probe.postMessage({ kind: 'harness:frame', trackId: 'probe', ssrc: 2, data: frame(index), timestamp: t * 3000 });
    }, 2);
  };
  await h.install({ key, keyIndex, use: true });
  // Both ends derive keys asynchronously in their workers: the stream starts once a probe
  // frame got through.
  for (const started = performance.now(); h.probeDecrypted[keyIndex] === undefined;) {
    if (performance.now() - started > 10_000) throw new Error('the guest never decrypted a probe frame');
    await new Promise((r) => setTimeout(r, 5));
  }

  h.sending = setInterval(() => {
    if (h.stopped) return;
    const n = h.sent++;
    video.postMessage({ kind: 'harness:frame', trackId: 'video', ssrc: 1, data: frame(n), timestamp: n * 3000 });
  }, everyMs);
  h.stop = () => { h.stopped = true; clearInterval(h.sending); clearInterval(h.probing); };
  h.room = room;
  return true;
}

/** What the harness saw, as plain data. */
export function trackStats() {
  const h = window.lkHarness;
  return {
    sent: h.sent, sentIndex: h.sentIndex, decrypted: h.decrypted, firstDecrypted: h.firstDecrypted,
    probeDecrypted: h.probeDecrypted, switchedAt: h.switchedAt, errors: h.errors,
    setKeyCalls: (window.demo.setKeyCalls ?? []).map(({ keyIndex, at }) => ({ keyIndex, at })),
  };
}
