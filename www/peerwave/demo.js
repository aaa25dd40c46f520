// The demo prejoin page (www/demo) in front of PeerWave's real server: PeerWave serves the page
// same-origin from its web root (its /api has no CORS), participants behave like PeerWave's
// Flutter participants, and the page uses the SDK's `peerwave` wire profile. Used by
// `scripts/demo.sh --peerwave` and the end-to-end suite (www/peerwave/e2e.test.js).
// Env: GUEST_SDK_PKG  the package directory the page loads (default pkg/signal-guest-sdk), to
// run the suite against another build of the SDK.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPeerWave, clientIp } from './server.js';
import { startParticipant } from './participant.js';
import { keyCheckValue } from '../bot/bot.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const sdkPackage = path.resolve(root, process.env.GUEST_SDK_PKG ?? 'pkg/signal-guest-sdk');

/** The files the page needs, linked into one directory PeerWave serves as its web root. */
function webRoot(config) {
  const dir = path.join(root, 'target/peerwave/web', `${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  fs.mkdirSync(path.join(dir, 'vendor'), { recursive: true });
  const link = (target, name) => fs.symlinkSync(path.resolve(root, target), path.join(dir, name));
  link('www/demo/index.html', 'index.html');
  link('www/demo/app.js', 'app.js');
  link(sdkPackage, 'pkg');
  link('node_modules/socket.io-client/dist/socket.io.esm.min.js', 'vendor/socket.io-client.mjs');
  link('node_modules/livekit-client/dist/livekit-client.esm.mjs', 'vendor/livekit-client.mjs');
  link('node_modules/livekit-client/dist/livekit-client.e2ee.worker.mjs', 'vendor/livekit-client.e2ee.worker.mjs');
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

/**
 * @param {{ participants?: { peer?: 'ts'|'official', mode?: 'reply'|'silent', plaintextFloor?: boolean }[],
 *   autoAdmit?: boolean, participantTimeoutMs?: number, port?: number, log?: boolean }} o
 *   autoAdmit: admit every guest that asks, through PeerWave's own admit endpoint, as a host
 *   watching the lobby would.
 *   plaintextFloor: that participant also answers the benchmark's plaintext requests
 *   (participant.js, PLAINTEXT_FLOOR_MESSAGE_TYPE; bench/time-to-key.js only).
 */
export async function startPeerWaveDemo({
  participants = [{ mode: 'silent' }, { mode: 'reply' }, { mode: 'reply', peer: 'official' }],
  autoAdmit = false,
  participantTimeoutMs = 5000,
  port,
  log = false,
} = {}) {
  if (!fs.existsSync(path.join(sdkPackage, 'index.js'))) {
    throw new Error(`${path.relative(root, sdkPackage)} is missing: run scripts/build.sh package`);
  }
  const meetingKey = crypto.randomBytes(32);
  // The page reads its configuration from the web root; the meeting is known once PeerWave is
  // seeded, so the file is written after the boot (the directory is linked before it).
  const dir = webRoot({});
  const server = await startPeerWave({ webRoot: dir, port, echo: log });
  const bots = [];
  for (const p of participants) {
    bots.push(await startParticipant({
      server, peer: p.peer ?? 'ts', mode: p.mode ?? 'reply', meetingKey, log, ...(p.plaintextFloor ? { plaintextFloor: true } : {}),
    }));
  }
  // LiveKit lists them in this order: the first is asked first.
  server.livekit.setParticipants(bots.map((b) => ({ userId: b.userId, deviceId: b.deviceId })));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({
    relayUrl: server.url,
    wireProfile: 'peerwave',
    meetingId: server.meetingId,
    invitationToken: server.invitationToken,
    participantTimeoutMs,
    participantsKeyCheckValue: keyCheckValue(meetingKey),
    livekitConfigured: false,
  }));

  // The host: admits guests that asked (PeerWave's lobby), when asked to.
  const admitted = new Set();
  let stopped = false;
  const host = autoAdmit ? (async () => {
    while (!stopped) {
      try {
        const r = await fetch(`${server.url}/api/meetings/${server.meetingId}/external/waiting`, { headers: { 'x-forwarded-for': clientIp() } });
        const { waiting = [] } = r.ok ? await r.json() : {};
        for (const { session_id: sid } of waiting) {
          if (admitted.has(sid)) continue;
          try { await server.admit(sid); admitted.add(sid); } catch { /* not asked yet */ }
        }
      } catch { /* restarting */ }
      await new Promise((r) => setTimeout(r, 200));
    }
  })() : null;

  return {
    url: `${server.url}/`,
    server,
    bots,
    meetingKey,
    async close() {
      stopped = true;
      await host;
      await Promise.all(bots.map((b) => b.close()));
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
