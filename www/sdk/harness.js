// The shipped SDK (pkg/web) in Node, against a meeting server played by a stubbed `fetch`
// and a socket stub, with one participant on our engine's interop build (target/pkg-node).
// Lets the tests steer every answer: statuses, hangs, what the participant sends back.
// Needs `scripts/build.sh package` and `scripts/build.sh interop`.
import crypto from 'node:crypto';
import { SignalParty } from '../../interop/ours.js';

// The package's Node entry: it loads the module itself.
export const sdk = await import(new URL('../../pkg/signal-guest-sdk/node.js', import.meta.url));

export const BASE = 'https://meet.example.test';
export const MEETING = 'meeting-1';
const b64 = (bytes) => Buffer.from(bytes).toString('base64');
const json = (status, body, headers = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

/** A fetch that never answers, but honours the abort signal like the real one. */
export function hang(init) {
  return new Promise((_, reject) => {
    init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
  });
}

/** One participant device answering key requests with `key`, on our engine. */
export class Participant {
  constructor({ userId = 'p1', deviceId = '1', key = crypto.randomBytes(32) } = {}) {
    Object.assign(this, { userId, deviceId, key });
    this.party = new SignalParty(10);
    this.requests = [];
    this.answer = true;
  }

  bundle() {
    const b = this.party.bundle(true);
    return {
      user_id: this.userId,
      device_id: this.deviceId,
      identity_key: b64(b.identityKey),
      registration_id: b.registrationId,
      signed_pre_key: { id: b.signedPreKey.id, public_key: b64(b.signedPreKey.publicKey), signature: b64(b.signedPreKey.signature) },
      pre_key: { id: b.preKey.id, public_key: b64(b.preKey.publicKey) },
    };
  }

  /** The relayed answer to a guest message, or null when this participant stays silent. */
  receive(body) {
    const plain = this.party.decrypt('guest', body.message_type, Buffer.from(body.encrypted_message, 'base64'));
    const request = JSON.parse(Buffer.from(plain).toString());
    this.requests.push(request);
    if (!this.answer) return null;
    const response = {
      type: 'participant:meeting_e2ee_key_response',
      meeting_id: request.meeting_id,
      request_id: request.request_id,
      key: b64(this.key),
      key_index: 0,
      timestamp: Date.now(),
    };
    const m = this.party.encrypt('guest', new TextEncoder().encode(JSON.stringify(response)));
    return {
      participant_user_id: this.userId,
      participant_device_id: this.deviceId,
      type: response.type,
      encrypted_message: b64(m.body),
      message_type: m.type,
      timestamp: Date.now(),
    };
  }
}

/**
 * A meeting: the server (as `globalThis.fetch`), the guest's socket and one participant.
 * `routes` may override any endpoint: (init) => Response | Promise<Response>.
 */
export function meeting(routes = {}, { autoAdmit = true, connected = true } = {}) {
  const participant = new Participant();
  const handlers = new Map();
  let admitted = null;
  const socket = {
    connected,
    /** Like socket.io-client: connected, then the 'connect' event. */
    connect() {
      socket.connected = true;
      for (const h of handlers.get('connect') ?? []) h();
    },
    on(event, h) { handlers.set(event, [...(handlers.get(event) ?? []), h]); },
    off(event, h) { handlers.set(event, (handlers.get(event) ?? []).filter((x) => x !== h)); },
    emit(event, body) {
      if (event === 'guest:admission_query' && admitted) setTimeout(() => socket.admit(admitted), 1);
      if (event !== 'guest:signal_message') return;
      const answer = participant.receive(body);
      if (answer) setTimeout(() => (handlers.get('participant:signal_message') ?? []).forEach((h) => h(answer)), 5);
    },
    listeners(event) { return (handlers.get(event) ?? []).length; },
    /** The server's admission notice for `sessionId`. */
    admit(sessionId) {
      admitted = sessionId;
      for (const h of handlers.get('guest:admitted') ?? []) h({ session_id: sessionId });
    },
  };
  const defaults = {
    register: () => json(200, { session_id: 'guest-1', meeting_id: MEETING, display_name: 'G' }),
    participants: () => json(200, [{ user_id: participant.userId, device_id: participant.deviceId }]),
    keys: () => json(200, participant.bundle()),
    token: () => json(403, { error: 'not admitted' }),
  };
  const route = { ...defaults, ...routes };
  // Like the reference relay: an admitted guest hears so once it is registered.
  const register = route.register;
  route.register = async (init) => {
    const response = await register(init);
    if (autoAdmit && response.ok) {
      const { session_id: sid } = await response.clone().json();
      setTimeout(() => socket.admit(sid), 1);
    }
    return response;
  };
  const calls = [];
  globalThis.fetch = async (url, init = {}) => {
    const path = new URL(url).pathname;
    calls.push(path);
    if (path === '/api/meetings/external/register') return route.register(init);
    if (path.endsWith('/participants')) return route.participants(init);
    if (path.endsWith('/keys')) return route.keys(init);
    if (path === '/api/livekit/external-token') return route.token(init);
    return json(404, {});
  };
  return { participant, socket, calls, json };
}

/** A key provider that records the calls; `refuse` makes the next n calls reject. */
export function keyProvider() {
  return {
    keys: [],
    refuse: 0,
    setKey(material, index) {
      if (this.refuse > 0) {
        this.refuse -= 1;
        return Promise.reject(new Error('refused'));
      }
      this.keys.push([material, index]);
      return Promise.resolve();
    },
  };
}

export function guest(m, extra = {}) {
  return new sdk.GuestKeyExchange({
    baseUrl: BASE, meetingId: MEETING, invitationToken: 'invite', displayName: 'Guest',
    socket: m.socket, keyProvider: null, ...extra,
  });
}

export async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}
