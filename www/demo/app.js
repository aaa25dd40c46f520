// Demo prejoin page: how a page integrates the guest SDK with socket.io-client and
// livekit-client. Everything the page shows is also kept in `window.demo` (transcript,
// result, error) so the headless demo and the end-to-end tests can read it. Nothing here
// ever prints or stores the key itself: only its check value.
import init, { GuestKeyExchange } from 'signal-guest-sdk';
import { io } from 'socket.io-client';
import { GuestKeyProvider } from 'signal-guest-sdk/livekit';
import { ExternalE2EEKeyProvider, Room } from 'livekit-client';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const config = await (await fetch('/config.json')).json();
await init();

const demo = (window.demo = {
  ready: true,
  transcript: [],
  registration: null,
  result: null,
  error: null,
  // Every error a call ended with, in order.
  errors: [],
  left: false,
  keys: [],
  keyGenerationMs: null,
});
let started = performance.now();
let guest = null;
let socket = null;
let keyProvider = null;

function line(text) {
  const t = ((performance.now() - started) / 1000).toFixed(3);
  demo.transcript.push({ t: Number(t), text });
  $('progress').textContent += `[${t.padStart(7)} s] ${text}\n`;
  console.log(`[guest] ${text}`);
}

const who = (p) => (p ? `${p.userId}/${p.deviceId}` : '?');

// Every SDK event carries a message a page can show as it is; the demo adds who and why
// where the event says more.
function describe(event) {
  if (event.type === 'progress' && event.stage === 'rotating') {
    return `${who(event.from)}: ${event.detail}; rotating to ${who(event.to)}`;
  }
  if (event.type === 'key') return `${event.message} (check value ${event.keyCheckValue}, index ${event.keyIndex})`;
  if (event.type === 'dropped') return `${event.message} (${event.reason})`;
  return event.message ?? event.type;
}

function onEvent(event) {
  line(describe(event));
  // ?bench: every event's type and stage with the page's clock, for bench/time-to-key.js (the
  // admission → key measurement waits for `waiting_for_admission`, then for the page to be idle).
  if (params.has('bench')) (demo.events ??= []).push({ type: event.type, stage: event.stage ?? null, at: performance.now() });
  // The SDK registered again (the server had lost the guest): the page's session changed too.
  if (event.type === 'registered' && demo.registration) {
    demo.registration = { ...demo.registration, sessionId: event.sessionId };
  }
  if (event.type === 'key') {
    demo.keys.push({ keyIndex: event.keyIndex, keyCheckValue: event.keyCheckValue, from: event.from });
    $('check-value').textContent = event.keyCheckValue;
    $('key-index').textContent = String(event.keyIndex);
  }
}

function newKeyProvider() {
  // Keeps each key at the index the SDK hands over. ?provider=external uses livekit-client's
  // ExternalE2EEKeyProvider instead, which ignores the index (the tests show what that breaks).
  const provider = params.get('provider') === 'external' ? new ExternalE2EEKeyProvider() : new GuestKeyProvider();
  if (params.has('e2e')) {
    // Test hook: record what reaches the provider, so the tests can compare it with the
    // participants' key. Kept in memory only; never printed.
    demo.setKeyCalls = [];
    const setKey = provider.setKey.bind(provider);
    provider.setKey = (material, keyIndex) => {
      demo.setKeyCalls.push({ material, keyIndex, at: performance.now() });
      return setKey(material, keyIndex);
    };
  }
  window.keyProvider = provider;
  return provider;
}

async function exchange() {
  $('error').hidden = true;
  $('status').textContent = 'Exchanging encryption keys…';
  demo.error = null;
  const t0 = performance.now();
  try {
    const result = await guest.exchangeKey();
    demo.result = { ...result, timeToKeyMs: performance.now() - t0 };
    $('status').textContent = 'Encryption key received. You can join the call.';
    $('status').className = 'ok';
    $('key-from').textContent = who(result.from);
    $('time-to-key').textContent = `${Math.round(demo.result.timeToKeyMs)} ms`;
    $('check-value').textContent = result.keyCheckValue;
    // In a meeting each participant's app shows its check value; people compare them.
    const match = result.keyCheckValue === config.participantsKeyCheckValue;
    $('participants-check-value').textContent = `${config.participantsKeyCheckValue} ${match ? '(same key)' : '(DIFFERENT KEY)'}`;
    $('key-index').textContent = String(result.keyIndex);
    // Read aloud or compared on screen with the participant's app: equal unless someone is
    // in the middle (the key check value alone cannot tell).
    $('safety-number').textContent = result.safetyNumber.match(/.{5}/g).join(' ');
    $('short-code').textContent = result.shortCode
      ? `${result.shortCode.digits}  ${result.shortCode.emoji.join(' ')}`
      : '(the participant did not take part)';
    $('result').hidden = false;
    line(`Done in ${Math.round(demo.result.timeToKeyMs)} ms`);
    if (result.shortCode) await showParticipantCode(result);
    await joinRoom();
  } catch (e) {
    // The SDK's messages are written to be shown as they are.
    demo.error = { code: e.code, message: e.message, retryable: e.retryable, attempts: e.attempts ?? [] };
    demo.errors.push({ code: e.code, retryable: e.retryable });
    if (e.code === 'LEFT') return; // the Leave button: nothing to show
    $('status').textContent = 'Unable to get the meeting key.';
    $('status').className = 'bad';
    $('error-text').textContent = e.message;
    $('retry').hidden = !e.retryable;
    $('error').hidden = false;
  }
}

// What the sender's app shows (the demo's bots report it): in a meeting, people compare the
// two codes by reading them aloud.
async function showParticipantCode(result) {
  for (let i = 0; i < 20; i++) {
    const codes = await (await fetch(`/participant-codes/${demo.registration.sessionId}`)).json();
    const theirs = codes[result.from.userId];
    if (theirs) {
      const same = theirs.digits === result.shortCode?.digits;
      demo.participantCode = theirs;
      $('participant-code').textContent = `${theirs.digits} ${same ? '(same: no one in the middle)' : '(DIFFERENT: someone is in the middle)'}`;
      line(`${who(result.from)} shows code ${theirs.digits}${same ? '' : ' - it differs from ours'}`);
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

// The LiveKit side: a guest token once admitted, a Room whose E2EE uses the key provider the
// SDK filled, and a connection when a LiveKit server is configured (LIVEKIT_URL for the demo).
async function joinRoom() {
  try {
    const { url, roomName, token, identity } = await guest.fetchLiveKitToken();
    demo.livekit = { url, roomName, identity };
    // `encryption` encrypts media and data packets; the deprecated `e2ee` leaves data in the clear.
    const room = new Room({
      encryption: { keyProvider, worker: new Worker('/vendor/livekit-client.e2ee.worker.mjs', { type: 'module' }) },
    });
    await room.setE2EEEnabled(true);
    demo.room = room;
    if (config.livekitConfigured) {
      await room.connect(url, token);
      line(`Connected to LiveKit room ${roomName} at ${url}, end-to-end encrypted`);
    } else {
      line(`LiveKit token for room ${roomName}; E2EE enabled (no LiveKit server configured: set LIVEKIT_URL to connect)`);
    }
  } catch (e) {
    line(`LiveKit: ${e.message}`);
  }
}

async function join(name) {
  started = performance.now();
  demo.transcript = [];
  $('progress').textContent = '';
  $('join').disabled = true;
  $('leave').hidden = false;
  demo.left = false;
  keyProvider = newKeyProvider();
  // socket.io-client's default transports start with HTTP long-polling (slower to connect);
  // ?polling keeps them, to show that exchangeKey() waits for the connection either way.
  const transports = params.has('polling') ? undefined : ['websocket'];
  socket = io(`${config.relayUrl}/external`, { autoConnect: false, ...(transports ? { transports } : {}) });
  // socket.io-client reconnects by itself after network loss, but not after the server
  // closed the connection (e.g. a server restart): reconnect then too.
  socket.on('disconnect', (reason) => {
    line(`Disconnected from the meeting server (${reason})`);
    if (reason === 'io server disconnect') socket.connect();
  });
  socket.io.on('reconnect', () => line('Reconnected to the meeting server'));
  // The time-to-key benchmark measures its plaintext floor over this same socket; the
  // end-to-end tests watch what the SDK emits on it.
  if (params.has('bench') || params.has('e2e')) window.guestSocket = socket;
  guest = new GuestKeyExchange({
    baseUrl: config.relayUrl,
    // PeerWave's server as it ships (docs/contract.md §8): the SDK then drives the socket's
    // handshake and PeerWave's lobby itself.
    ...(config.wireProfile ? { wireProfile: config.wireProfile } : {}),
    meetingId: config.meetingId,
    invitationToken: config.invitationToken,
    displayName: name,
    socket,
    keyProvider,
    // ?keyProfile=raw: setKey gets an ArrayBuffer (HKDF) instead of base64 text (PBKDF2).
    ...(params.has('keyProfile') ? { keyProfile: params.get('keyProfile') } : {}),
    onEvent,
    participantTimeoutMs: Number(params.get('timeout') ?? config.participantTimeoutMs),
    ...(params.has('admissionTimeout') ? { admissionTimeoutMs: Number(params.get('admissionTimeout')) } : {}),
    // ?hedge=0 asks one participant at a time (the SDK's default asks the next one as well
    // after 1.5 s without an answer).
    ...(params.has('hedge') ? { hedgeAfterMs: Number(params.get('hedge')) } : {}),
    // ?order=server asks in the server's order, which the test pages (?e2e, ?bench) do unless
    // they say ?order=spread: their scenarios name the participant asked first. Otherwise the
    // SDK's default: each guest starts at a participant picked by its session id.
    ...((params.get('order') ?? (params.has('e2e') || params.has('bench') ? 'server' : 'spread')) === 'server'
      ? { spreadFirstRequests: false } : {}),
    // ?pin=<userId>:<deviceId>:<base64 identity key>: refuse that device unless it has that key.
    pinnedIdentities: params.getAll('pin').map((p) => {
      const [userId, deviceId, identityKey] = p.split(':');
      return { userId, deviceId, identityKey };
    }),
    debug: params.has('debug'),
  });
  demo.keyGenerationMs = guest.keyGenerationMs ?? null;
  demo.storageBackend = guest.storageBackend;
  demo.identityKey = Array.from(guest.identityKey);
  // The guest's identity now (it changes when the SDK registers again after a loss).
  window.guestIdentity = () => (guest ? Array.from(guest.identityKey ?? []) : null);
  line(guest.keyGenerationMs != null
    ? `Generated identity, signed prekey, ${config.wireProfile === 'peerwave' ? '' : 'Kyber prekey '}and 30 one-time prekeys in ${guest.keyGenerationMs.toFixed(1)} ms`
    : 'Loaded this tab\'s stored Signal identity');
  try {
    demo.registration = await guest.register();
  } catch (e) {
    demo.error = { code: e.code, message: e.message, retryable: e.retryable };
    $('status').textContent = e.message;
    $('status').className = 'bad';
    $('join').disabled = false;
    return;
  }
  line(demo.registration.reused ? 'Registration reused from this tab' : 'Registered');
  socket.on('connect', () => line('Connected to the meeting server'));
  if (config.wireProfile !== 'peerwave') {
    socket.auth = { sessionId: demo.registration.sessionId };
    // No need to wait for the connection: exchangeKey() waits for it (and for admission).
    socket.connect();
  }
  // ?exchangeAfter=<ms>: call exchangeKey() that long after register() resolved (by default
  // at once), e.g. while the SDK's socket is still connecting.
  if (params.has('exchangeAfter')) await new Promise((r) => setTimeout(r, Number(params.get('exchangeAfter'))));
  await exchange();
}

// Leaving the meeting (this button, or the meeting ending) is the one time to call leave():
// it wipes the keys and this tab's stored state. The next Join starts afresh.
function leave() {
  guest?.leave();
  guest = null;
  socket?.disconnect();
  socket = null;
  demo.room?.disconnect();
  demo.room = null;
  demo.left = true;
  $('leave').hidden = true;
  $('error').hidden = true;
  $('result').hidden = true;
  $('status').textContent = 'You left the meeting.';
  $('status').className = '';
  $('join').disabled = false;
  line('Left the meeting');
}

$('join-form').addEventListener('submit', (e) => {
  e.preventDefault();
  join($('name').value.trim() || 'Guest');
});
$('retry').addEventListener('click', () => exchange());
$('leave').addEventListener('click', () => leave());
// A reload is not a leave: pagehide fires on reloads too, and the reloaded page reuses this
// tab's registration and admission (the browser discards sessionStorage with the tab). Only
// the LiveKit room is disconnected here.
window.addEventListener('pagehide', () => { demo.room?.disconnect(); });
