// `scripts/demo.sh`: starts the relay, three participant bots (the first silent, so the
// rotation shows) and the prejoin page. With --headless, drives Debian's Chromium through
// the flow and prints the transcript instead of waiting for a person. With --peerwave, the
// server is PeerWave's own (booted from its bundle), which serves the page and admits each
// guest that asks, as a host watching the lobby would; the page speaks the `peerwave` profile.
import { startDemo } from './server.js';
import { launchChromium } from './chromium.js';

const args = new Set(process.argv.slice(2));
const port = Number(process.env.DEMO_PORT ?? (args.has('--headless') ? 0 : 8080));
const demo = args.has('--peerwave')
  ? await (await import('../peerwave/demo.js')).startPeerWaveDemo({ port: port || undefined, autoAdmit: true })
  : await startDemo({ port });
const server = demo.relay ? `Relay ${demo.relay.url}` : `PeerWave ${demo.server.url} (meeting ${demo.server.meetingId})`;
const modes = () => demo.bots.map((b) => (b.peerKind === 'current' ? `${b.mode} (libsignal 0.103, v4)` : b.mode)).join(', ');

if (!args.has('--headless')) {
  console.log(`${server}; participants: ${modes()}`);
  console.log(`\nOpen the prejoin page: ${demo.url}\n(Ctrl-C to stop)`);
  const stop = () => demo.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
} else {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(demo.url);
    await page.waitForFunction(() => window.demo?.ready);
    await page.fill('#name', 'Headless Guest');
    await page.click('#join');
    await page.waitForFunction(() => window.demo.result || window.demo.error, null, { timeout: 60_000 });
    // The sender's code arrives just after the key; wait for it to print both.
    // (PeerWave's participants take no part in the code.)
    if (demo.relay) await page.waitForFunction(() => window.demo.error || window.demo.participantCode, null, { timeout: 10_000 }).catch(() => {});
    const state = await page.evaluate(() => ({
      transcript: window.demo.transcript, result: window.demo.result, error: window.demo.error,
      participantCode: window.demo.participantCode,
    }));
    console.log(`Prejoin page ${demo.url} in headless Chromium; ${server}; participants: ${modes()}\n`);
    for (const { t, text } of state.transcript) console.log(`[${t.toFixed(3).padStart(7)} s] ${text}`);
    console.log('');
    if (state.result) {
      console.log(`Key from:        ${state.result.from.userId}/${state.result.from.deviceId}`);
      console.log(`Time to key:     ${Math.round(state.result.timeToKeyMs)} ms (includes waiting for the silent participant)`);
      console.log(`Key check value: ${state.result.keyCheckValue} (participants: ${(await import('../bot/bot.js')).keyCheckValue(demo.meetingKey)})`);
      const code = state.result.shortCode;
      console.log(`Code:            ${code ? `${code.digits}  ${code.emoji.join(' ')} (${code.emojiNames.join(', ')})` : 'none'}`);
      console.log(`Sender's code:   ${state.participantCode?.digits ?? 'not reported'}`);
      console.log(`Safety number:   ${state.result.safetyNumber.match(/.{5}/g).join(' ')}`);
    } else {
      console.log(`Failed: ${state.error.code}: ${state.error.message}`);
      process.exitCode = 1;
    }
  } finally {
    await browser.close();
    await demo.close();
  }
}
