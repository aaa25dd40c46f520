// The demo for the benchmarks that drive a browser, laid out as in production: the relay (with
// the page server) in one process and each participant bot in a process of its own, none of
// them in the browser driver's. In the driver's process their socket hops and libsignal's
// asynchronous store calls wait behind the driver's own traffic (puppeteer's WebDriver BiDi
// messages for Firefox), and a bot sharing the relay's event loop holds up the relay's
// forwarding while it computes (measured, Firefox lobby: a bot's PreKey answer took 5–7 ms in
// the driver's process against 0.75 ms alone). The floor goes through the same relay and bots,
// so the ratios compare like with like.
//
//   const demo = await startDemoProcess({ bots: ['reply', 'reply'], autoAdmit: false });
//   demo.url; await demo.admit(sessionId); await demo.close();
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const PARTICIPANT_TOKEN = 'participant-secret'; // the relay's default (www/relay/relay.js)
const BOT_CLI = fileURLToPath(new URL('../www/bot/bot.js', import.meta.url));

/**
 * Runs `args` with node; resolves with the child once a line of its stdout matches `ready`.
 * Later lines that start with `keep` are kept in `child.kept` (the bots' last words).
 */
function startNode(args, ready, what, keep = null) {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (chunk) => {
      seen += chunk;
      const m = seen.match(ready);
      if (!m) return;
      child.stdout.off('data', onData);
      child.kept = [];
      if (keep) {
        let rest = seen.slice(m.index + m[0].length);
        child.stdout.on('data', (more) => {
          const lines = (rest + more).split('\n');
          rest = lines.pop();
          child.kept.push(...lines.filter((l) => l.startsWith(keep)).map((l) => l.slice(keep.length)));
        });
      } else {
        child.stdout.resume(); // later output is not read
      }
      resolve({ child, match: m });
    };
    child.stdout.setEncoding('utf8').on('data', onData);
    child.once('exit', (code) => reject(new Error(`${what} exited (${code}) before it was ready: ${seen.slice(-500)}`)));
  });
}

const stop = (child) => new Promise((resolve) => {
  if (child.exitCode !== null || child.signalCode !== null) return resolve();
  child.once('close', resolve); // after its output is read, not only its exit
  child.kill('SIGTERM');
});

/**
 * @param {{ bots?: (string | { mode?: string, peer?: string })[], autoAdmit?: boolean,
 *   rateLimit?: { max: number, windowMs: number } }} options as startDemo's (www/demo/server.js)
 */
export async function startDemoProcess({ bots = ['reply'], autoAdmit = true, rateLimit } = {}) {
  const children = [];
  try {
    const key = crypto.randomBytes(32).toString('base64');
    const { child: server, match } = await startNode(
      [fileURLToPath(import.meta.url), '--server', JSON.stringify({ autoAdmit, rateLimit, key })],
      /^demo (\S+) relay (\S+)$/m, 'the demo server');
    children.push(server);
    const [, url, relayUrl] = match;
    // One after the other, so the relay lists them in this order (the first is asked first).
    for (const [i, bot] of bots.entries()) {
      const { mode = 'reply', peer = 'official' } = typeof bot === 'string' ? { mode: bot } : bot;
      const { child } = await startNode([BOT_CLI, '--relay', relayUrl, '--user', `participant-${i + 1}`, '--device', '1',
        '--mode', mode, '--peer', peer, '--key', key, '--quiet'], /ready/, `bot ${i + 1}`, 'bot handling: ');
      child.participant = { user: `participant-${i + 1}`, peer };
      children.push(child);
    }
    return {
      url,
      relayUrl,
      /** The host admits a guest from the lobby (the relay's admit endpoint). */
      async admit(sessionId) {
        const r = await fetch(`${relayUrl}/api/relay/admit/${encodeURIComponent(sessionId)}`, {
          method: 'POST', headers: { authorization: `Bearer ${PARTICIPANT_TOKEN}` },
        });
        if (!r.ok) throw new Error(`relay admit ${sessionId}: ${r.status} ${await r.text()}`);
      },
      /**
       * Stops every process; resolves with each bot's handling times once it has stopped
       * (www/bot/bot.js `handling()`): [{ user, peer, handling }].
       */
      close: async () => {
        await Promise.all([...children].reverse().map(stop));
        return children.filter((c) => c.participant).map((c) => ({
          ...c.participant, handling: c.kept.length ? JSON.parse(c.kept.at(-1)) : null,
        }));
      },
    };
  } catch (e) {
    await Promise.all(children.map(stop));
    throw e;
  }
}

// The relay and the page server, without bots (they are processes of their own).
if (process.argv[2] === '--server') {
  const { startDemo } = await import('../www/demo/server.js');
  const { key, ...options } = JSON.parse(process.argv[3]);
  const demo = await startDemo({ ...options, meetingKey: Buffer.from(key, 'base64'), bots: [] });
  console.log(`demo ${demo.url} relay ${demo.relay.url}`);
  const close = () => demo.close().then(() => process.exit(0));
  process.on('SIGTERM', close);
  process.on('disconnect', close); // the benchmark is gone
}
