// The demo page in WebKit (www/demo/webkit.js) against PeerWave's real server, booted from its
// bundle as www/peerwave/e2e.test.js boots it, with the SDK's `peerwave` wire profile: the happy
// path. scripts/peerwave-e2e.sh www/e2e-webkit/peerwave.test.js sets PeerWave up and runs it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchWebKit } from '../demo/webkit.js';
import { keyCheckValue } from '../bot/bot.js';
import { frameCheck } from '../e2e/frame-check.js';
import { pageHelpers } from '../e2e/page.js';
import { startPeerWaveDemo } from '../peerwave/demo.js';
import { clientIp } from '../peerwave/server.js';

let browser;
before(async () => { browser = await launchWebKit(); });
after(async () => { await browser?.close(); });

const { open, settled, until } = pageHelpers({
  browser: () => browser, start: startPeerWaveDemo, driver: 'webkit', readyMs: 20_000, untilMs: 15_000, pollMs: 50,
});

/** The sessions in PeerWave's lobby (each poll from its own address: PeerWave rate-limits per address). */
const lobby = async (demo) => {
  const r = await fetch(`${demo.server.url}/api/meetings/${demo.server.meetingId}/external/waiting`, { headers: { 'x-forwarded-for': clientIp() } });
  return r.ok ? (await r.json()).waiting.map((w) => w.session_id) : [];
};

test('PeerWave in WebKit: register, lobby, admitted by the host, key from a Flutter-like participant (0x33), frame check, guest token', async () => {
  const s = await open({ participants: [{ peer: 'ts', mode: 'reply' }, { peer: 'ts', mode: 'reply' }] });
  try {
    await s.page.click('#join');
    const sid = await until(() => s.page.evaluate(() => window.demo.registration?.sessionId), 'registration');
    await until(() => s.page.evaluate(() => window.demo.transcript.some((l) => l.text.startsWith('Waiting for the host'))), 'lobby');
    await until(async () => (await lobby(s.demo)).includes(sid), 'the guest in PeerWave\'s lobby');
    assert.equal(s.demo.bots.reduce((n, b) => n + b.stats.requests, 0), 0, 'no key request before admission');
    await s.demo.server.admit(sid);
    const state = await settled(s.page);
    assert.equal(state.error, null, JSON.stringify(state.error));
    assert.equal(state.result.from.userId, s.demo.bots[0].userId, 'the first participant listed answers');
    assert.equal(state.setKeyCalls.length, 1);
    assert.equal(state.setKeyCalls[0].material, s.demo.meetingKey.toString('base64'));
    assert.equal(state.result.keyCheckValue, keyCheckValue(s.demo.meetingKey));
    assert.equal(await s.page.evaluate(frameCheck, s.demo.meetingKey.toString('base64')), 'an encrypted video frame');
    // PeerWave broadcasts the request: the other participant's answer is dropped unread.
    await until(() => s.page.evaluate(() => window.demo.transcript.some((l) => l.text.endsWith('(unknown_sender)'))), 'the second answer dropped');
    assert.equal((await s.page.evaluate(() => window.demo.keys)).length, 1);
    // The LiveKit token from PeerWave's guest-token endpoint, for this guest.
    const livekit = await until(() => s.page.evaluate(() => window.demo.livekit), 'LiveKit token');
    assert.equal(livekit.roomName, s.demo.server.meetingId);
    assert.equal(livekit.identity, `guest_${sid}`);
    assert.ok(!s.lines.some((l) => l.startsWith('pageerror')), s.lines.join('\n'));
    console.log(`webkit (${browser.version()}), PeerWave: time to key ${Math.round(state.result.timeToKeyMs)} ms`);
  } finally { await s.close(); }
});
