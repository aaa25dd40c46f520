// Demo-page scenarios every engine's suite runs the same way (www/e2e-firefox/,
// www/e2e-webkit/): each takes the suite's page helpers (www/e2e/page.js) and returns the
// page's state for what the suite adds (a log line, an engine's own checks).
import assert from 'node:assert/strict';
import { keyCheckValue } from '../bot/bot.js';
import { at, requestGap } from './page.js';

/** Two answering participants: the key the provider got is theirs, kept in sessionStorage. */
export async function happyPath({ open, join }) {
  const s = await open({ bots: ['reply', 'reply'] });
  try {
    const state = await join(s.page);
    assert.equal(state.error, null, JSON.stringify(state.error));
    assert.equal(state.storageBackend, 'sessionStorage');
    assert.equal(state.setKeyCalls.length, 1);
    assert.equal(state.setKeyCalls[0].material, s.demo.meetingKey.toString('base64'));
    assert.equal(state.result.keyCheckValue, keyCheckValue(s.demo.meetingKey));
    return state;
  } finally { await s.close(); }
}

/** One at a time: the first participant silent, the second asked 5 s after the first, the key within 6.5 s. */
export async function rotationOneAtATime({ open, join }) {
  const s = await open({ bots: ['silent', 'reply'] }, '?e2e&hedge=0');
  try {
    const state = await join(s.page);
    assert.equal(state.result.from.userId, 'participant-2');
    const rotated = requestGap(s.demo.relay, 'participant-1', 'participant-2');
    assert.ok(rotated >= 4.95 && rotated <= 6.0, `second request ${rotated.toFixed(3)} s after the first`);
    const waited = at(state, 'Received the meeting key from participant-2') - at(state, 'Asking participant-1/1 for the meeting key');
    assert.ok(waited <= 6.5, `key ${waited} s after the first request`);
    return state;
  } finally { await s.close(); }
}

/** A reload in the same tab reuses the stored identity and asks the answerer first. */
export async function reloadReuse({ open, join, ready }) {
  const s = await open({ bots: ['silent', 'reply'] });
  try {
    const first = await join(s.page);
    assert.equal(first.registration.reused, false);
    await s.page.reload();
    await ready(s.page);
    const second = await join(s.page);
    assert.equal(second.registration.reused, true);
    assert.equal(second.registration.sessionId, first.registration.sessionId);
    assert.equal(second.keyGenerationMs, null, 'keys were loaded, not generated');
    assert.equal(second.result.from.userId, 'participant-2');
    assert.ok(second.result.timeToKeyMs < 2_000, `${second.result.timeToKeyMs} ms`);
    return second;
  } finally { await s.close(); }
}
