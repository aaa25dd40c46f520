// The demo: reference relay + participant bots + a static server for the prejoin page.
// Used by `scripts/demo.sh` (interactive or headless) and by the end-to-end tests.
// Env: GUEST_SDK_PKG  the package directory the page loads (default pkg/signal-guest-sdk), to
// run the page against another build of the SDK (as www/peerwave/demo.js).
import crypto from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { startRelay } from '../relay/relay.js';
import { startBot, keyCheckValue } from '../bot/bot.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const sdkPackage = path.resolve(root, process.env.GUEST_SDK_PKG ?? 'pkg/signal-guest-sdk');

/**
 * @param {{ port?: number, host?: string, bots?: (string | { mode?: string, peer?: 'official'|'current' })[],
 *   autoAdmit?: boolean, rotateAfterMs?: number, participantTimeoutMs?: number, meetingKey?: Buffer, log?: boolean }} o
 *   bots: one participant bot each, in join order: its mode, or { mode, peer } (www/bot/bot.js; peer
 *   'official' = libsignal 0.72.1, v3, the default; 'current' = libsignal 0.103.0, v4)
 */
export async function startDemo({
  port = 0,
  host = '127.0.0.1',
  // The one that answers runs current official libsignal, so the demo shows a v4 session.
  bots = ['silent', { mode: 'reply', peer: 'current' }, 'reply'],
  autoAdmit = true,
  rotateAfterMs = 3000,
  participantTimeoutMs = 5000,
  meetingKey = crypto.randomBytes(32),
  rateLimit,
  mitm,
  log = false,
} = {}) {
  // A LiveKit server, when there is one: LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET.
  const livekit = process.env.LIVEKIT_URL
    ? { url: process.env.LIVEKIT_URL, apiKey: process.env.LIVEKIT_API_KEY ?? 'devkey', apiSecret: process.env.LIVEKIT_API_SECRET ?? 'secret' }
    : undefined;
  const relay = await startRelay({
    port: 0, host, autoAdmit, ...(rateLimit ? { rateLimit } : {}), ...(livekit ? { livekit } : {}), ...(mitm ? { mitm } : {}),
  });
  const participants = [];
  // Sequential, so the relay lists them in this order (the first one is asked first).
  for (const [i, bot] of bots.entries()) {
    const { mode = 'reply', peer = 'official' } = typeof bot === 'string' ? { mode: bot } : bot;
    participants.push(await startBot({
      relayUrl: relay.url,
      userId: `participant-${i + 1}`,
      deviceId: '1',
      displayName: `Participant ${i + 1} (${mode}${peer === 'official' ? '' : `, ${peer}`})`,
      mode,
      peer,
      meetingKey,
      rotateAfterMs,
      log,
    }));
  }

  const app = express();
  app.get('/config.json', (_req, res) => res.json({
    relayUrl: relay.url,
    meetingId: 'demo-meeting',
    invitationToken: 'demo-invite',
    participantTimeoutMs,
    // What the participants' apps show, for the page to put next to its own.
    participantsKeyCheckValue: keyCheckValue(meetingKey),
    livekitConfigured: Boolean(livekit),
  }));
  // What each participant's app shows for a guest (its code and safety number), as the bots
  // print it, so the page can put it beside its own. Under the relay's MITM mode the genuine
  // participant talked to the impostor's guest session instead.
  app.get('/participant-codes/:sessionId', (req, res) => {
    const sid = req.params.sessionId;
    const seen = relay.state.mitm?.impostorGuests?.get?.(sid) ?? `mitm-${sid}`;
    const out = {};
    for (const bot of participants) {
      const code = bot.codes.get(sid) ?? bot.codes.get(seen);
      if (code) out[bot.userId] = { digits: code.digits, safetyNumber: code.safetyNumber };
    }
    res.json(out);
  });
  app.use('/pkg', express.static(sdkPackage));
  app.get('/vendor/socket.io-client.mjs', (_req, res) =>
    res.sendFile(path.join(root, 'node_modules/socket.io-client/dist/socket.io.esm.min.js')));
  app.get('/vendor/livekit-client.mjs', (_req, res) =>
    res.sendFile(path.join(root, 'node_modules/livekit-client/dist/livekit-client.esm.mjs')));
  app.get('/vendor/livekit-client.e2ee.worker.mjs', (_req, res) =>
    res.sendFile(path.join(root, 'node_modules/livekit-client/dist/livekit-client.e2ee.worker.mjs')));
  app.use(express.static(here, { index: 'index.html' }));
  const server = http.createServer(app);
  await new Promise((resolve) => server.listen(port, host, resolve));
  const url = `http://${host}:${server.address().port}/`;

  return {
    url,
    relay,
    bots: participants,
    meetingKey,
    async close() {
      await new Promise((resolve) => server.close(resolve));
      await Promise.all(participants.map((b) => b.close()));
      await relay.close();
    },
  };
}
