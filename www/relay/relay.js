// Reference meeting relay for the guest E2EE key exchange (docs/contract.md §3–§4).
// In-memory, single meeting, for tests and local demos only: it plays the meeting server the
// guest SDK talks to, and forwards Signal ciphertext between guests (/external namespace) and
// participant devices (main namespace). It never sees plaintext and refuses private key material.
//
// Endpoints and events that are the relay's own (NOT in the contract; the real server has its
// own participant login and host admission):
//   POST /api/participants/register   {auth, user_id, device_id, display_name, identity_key,
//                                      registration_id, signed_pre_key, pre_keys, kyber_pre_key?}
//                                      -> {user_id, device_id}; a participant device's public keys
//                                      (kyber_pre_key as in guest registration: a device that has one
//                                      gets PQXDH/v4 sessions from guests)
//   GET  /api/participants/:userId/:deviceId/prekeys  (Bearer) -> {count} of unused one-time prekeys
//   POST /api/participants/:userId/:deviceId/prekeys  (Bearer) {pre_keys: 1..100} -> {count}: top-up;
//                                      ids already stored are refused, at most 1,000 kept
//   POST /api/relay/admit/:sessionId  (Authorization: Bearer <participantToken>) -> {session_id, admitted}
//   main namespace, participant -> relay: `host:admit_guest` {session_id} (optional ack callback)
//   main namespace, participant -> relay: `participant:busy` {for_ms ≤ 60000}: keybundle fetches
//                                      for the device get 429 with Retry-After until then
//   main namespace auth: { token: participantToken, userId, deviceId }
// Decisions where the contract is silent:
//   - device_id is always a string in JSON (numbers are accepted and converted), as the
//     client reads it (`participant_device_id as String`).
//   - "in the meeting" = the participant device has a connected socket on the main namespace.
//   - registration is strict: unknown fields, duplicate prekey ids and a signed prekey whose
//     XEdDSA signature does not verify under the identity key are 400. The same holds for the
//     optional signed Kyber prekey (`kyber_pre_key`: 1,569 bytes starting 0x08, a 64-byte XEdDSA
//     signature over those bytes); `null` is read as absent. Bundles carry it, or `null`.
//   - the Kyber prekey is a last-resort key: every bundle hands out the same one, never deleted.
//   - rate limits (per guest and device, per device) count every keybundle attempt for a known
//     session (also ones that fail later); a device's busy notice holds only while another
//     device is free.
//   - nothing from participants reaches a guest that has not been admitted (key before admission
//     is one of PeerWave's defects).
//   - CLI/demo only: no TLS, no persistence.
//
// MITM mode (`mitm: {userId, deviceId}`, CLI `--mitm user:device`), for tests and demos of what
// safety numbers and the short code catch: the relay attacks that one participant device. Guests
// get an impostor's bundle for it; the impostor decrypts their requests, asks the genuine device
// for the key while posing as a guest (session `mitm-<guest session>`), and answers the guest
// with the real key and its own sas_nonce, so key check values match but codes do not.
// Both impostors are libsignal 0.72.1 peers without a Kyber prekey (v3 only), so the attacked
// device must speak v3 too: a 'current' (0.103, v4-only) bot refuses the impostor guest.
//
// CLI: node www/relay/relay.js --port 8080 [--host 127.0.0.1] [--meeting demo-meeting]
//      [--invite demo-invite] [--participant-token participant-secret] [--no-auto-admit]
//      [--livekit-url ws://127.0.0.1:7880] [--livekit-key devkey] [--livekit-secret ...]
//      [--mitm user:device] [--device-rate-limit 300/1000 (fetches per device / window ms)]

import http from 'node:http';
import { pathToFileURL } from 'node:url';
import { createContext } from './state.js';
import { createApp } from './routes.js';
import { attachSockets } from './sockets.js';
import { startAttack } from './mitm.js';

// The relay's parts, by job: validate.js (input checks), state.js (what it holds), routes.js
// (HTTP), sockets.js (socket.io and delivery), mitm.js (MITM mode).

/**
 * Keybundle fetches a participant device serves, all guests together: 300 a second, about what
 * one bot answers on this project's 2-core machines (docs/performance.md, "Load"); past it a
 * guest gets 429 with Retry-After and asks another participant.
 */
export const DEVICE_RATE_LIMIT = { max: 300, windowMs: 1_000 };

export async function startRelay({
  port = 0, host = '127.0.0.1', meetingId = 'demo-meeting', invitationToken = 'demo-invite',
  livekit = { apiKey: 'devkey', apiSecret: 'devsecret-devsecret-devsecret-123', url: 'ws://127.0.0.1:7880' },
  autoAdmit = true, participantToken = 'participant-secret',
  // docs/contract.md §3: keybundle fetches per guest and device, and per device for all guests
  rateLimit = { max: 3, windowMs: 60_000 },
  deviceRateLimit = DEVICE_RATE_LIMIT,
  mitm = null, // { userId, deviceId, log? }: attack that participant device (see the header)
} = {}) {
  const ctx = createContext({
    meetingId, invitationToken, livekit, autoAdmit, participantToken, rateLimit, deviceRateLimit,
  });
  const server = http.createServer(createApp(ctx));
  const rawSockets = trackConnections(server);
  const io = attachSockets(ctx, server);
  if (mitm) ctx.attack = await startAttack(ctx, mitm);

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const actualPort = server.address().port;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  return {
    url: `http://${urlHost}:${actualPort}`,
    port: actualPort,
    state: ctx.state,
    io,
    /**
     * A server restart as clients see it: every socket and HTTP connection drops and the
     * port refuses connections for `downtimeMs`. State survives, as a real server's
     * database would.
     */
    restart: async (downtimeMs = 500) => {
      const closed = new Promise((resolve) => server.close(resolve)); // stop accepting first
      io.disconnectSockets(true);
      for (const socket of rawSockets) socket.destroy(); // HTTP and upgraded WebSocket alike
      await closed;
      await new Promise((resolve) => setTimeout(resolve, downtimeMs));
      await new Promise((resolve) => server.listen(actualPort, host, resolve));
    },
    close: () => new Promise((resolve) => {
      io.disconnectSockets(true);
      server.closeAllConnections?.();
      io.close(() => resolve());
    }),
  };
}

/** Every TCP connection of `server`, so that `restart()` can drop them all (WebSockets included). */
function trackConnections(server) {
  const rawSockets = new Set();
  server.on('connection', (socket) => {
    rawSockets.add(socket);
    socket.on('close', () => rawSockets.delete(socket));
  });
  return rawSockets;
}

// ---------- CLI ----------
function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) continue;
    const name = a.slice(2);
    if (name.startsWith('no-')) out[name.slice(3)] = false;
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) out[name] = argv[++i];
    else out[name] = true;
  }
  return out;
}

/** "--device-rate-limit max/windowMs" */
function parseRate(v) {
  if (v === undefined) return DEVICE_RATE_LIMIT;
  const [max, windowMs] = String(v).split('/').map(Number);
  if (!(Number.isInteger(max) && max > 0 && Number.isInteger(windowMs) && windowMs > 0)) {
    console.error('--device-rate-limit needs max/windowMs (positive integers)');
    process.exit(2);
  }
  return { max, windowMs };
}

/** "--mitm user:device" (the device id is after the last colon) */
function parseMitm(v) {
  if (v === undefined || v === false) return null;
  const i = typeof v === 'string' ? v.lastIndexOf(':') : -1;
  if (i <= 0 || i === v.length - 1) {
    console.error('--mitm needs user:device');
    process.exit(2);
  }
  return { userId: v.slice(0, i), deviceId: v.slice(i + 1), log: true };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const a = parseArgs(process.argv.slice(2));
  const defaults = { apiKey: 'devkey', apiSecret: 'devsecret-devsecret-devsecret-123', url: 'ws://127.0.0.1:7880' };
  const relay = await startRelay({
    port: a.port ? Number(a.port) : 8080,
    host: a.host ?? '127.0.0.1',
    meetingId: a.meeting ?? 'demo-meeting',
    invitationToken: a.invite ?? 'demo-invite',
    participantToken: a['participant-token'] ?? 'participant-secret',
    autoAdmit: a['auto-admit'] !== false,
    livekit: {
      apiKey: a['livekit-key'] ?? defaults.apiKey,
      apiSecret: a['livekit-secret'] ?? defaults.apiSecret,
      url: a['livekit-url'] ?? defaults.url,
    },
    mitm: parseMitm(a.mitm),
    deviceRateLimit: parseRate(a['device-rate-limit']),
  });
  console.log(relay.url);
  if (relay.state.mitm) {
    console.log(`MITM on ${relay.state.mitm.target}: impostor identity ${Buffer.from(relay.state.mitm.impostorIdentityKey).toString('base64')}`);
  }
  const stop = () => relay.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
