// The reference relay's in-memory state: guests, participant devices and their keys, what was
// relayed, the keybundle rate limit. One context object that the HTTP routes, the socket
// handlers and MITM mode share; `state` is the part that `startRelay` hands to tests.

import { deviceKey } from './validate.js';
import { admit } from './sockets.js';

/**
 * The shared context of one relay. `external` (the guests' socket namespace) is set once
 * socket.io is up, and `attack` once MITM mode has started (it stays null without it).
 */
export function createContext(options) {
  const ctx = {
    ...options,
    /** @type {Map<string, any>} session_id -> guest record (public keys only) */
    guests: new Map(),
    /** @type {Map<string, any>} "user:device" -> participant device keys */
    participantKeys: new Map(),
    /** @type {Map<string, {user_id:string, device_id:string, display_name:string, socket:any}>}
     *  connected participant devices; Map insertion order = join order */
    connected: new Map(),
    /** @type {Map<string, any[]>} guest messages held until the guest is admitted */
    pending: new Map(),
    /** @type {Map<string, number[]>} rate-limit key ("guest:…", "device:…") -> fetch times (ms) in its window */
    fetchTimes: new Map(),
    /** @type {Map<string, number>} "user:device" -> until when (ms) it said it is busy */
    busyUntil: new Map(),
    external: null,
    attack: null,
  };
  ctx.state = {
    // What tests and benchmarks inspect, the latest LOG_MAX entries each (a relay under a
    // burst of thousands of guests would otherwise keep every body for good).
    registrations: [], // raw bodies POSTed to register, accepted or not
    guests: ctx.guests,
    participantKeys: ctx.participantKeys,
    prekeyConsumption: { participants: new Map(), guests: new Map() },
    relayedToParticipants: [], // {to:{user_id, device_id}, event, body}
    relayedToGuests: [], // {to: session_id, event, body}
    dropped: 0, // invalid socket bodies
    undeliverable: 0, // valid bodies whose target is not connected / not admitted
    admit: (sessionId) => admit(ctx, sessionId),
    isAdmitted: (sid) => ctx.guests.get(sid)?.admitted === true,
    heldFor: (sid) => ctx.pending.get(sid)?.length ?? 0, // guest messages held until admission
    // Fault injection for tests: "user:device" -> 'error500' | 'hang' | 'wrong-device'.
    faults: { keybundle: new Map() },
    participants: () => participantList(ctx),
  };
  return ctx;
}

const bump = (map, k) => map.set(k, (map.get(k) ?? 0) + 1);

/** Entries kept in each of the state's logs. */
export const LOG_MAX = 1000;

/** Appends to one of the state's logs; past LOG_MAX the oldest half goes (amortized O(1)). */
export function logEntry(log, entry) {
  log.push(entry);
  if (log.length > 2 * LOG_MAX) log.splice(0, log.length - LOG_MAX);
}

/** The connected participant devices in join order, as guests see them. */
export function participantList(ctx) {
  const listed = [...ctx.connected.values()].map(({ user_id, device_id, display_name }) => ({ user_id, device_id, display_name }));
  const extra = ctx.attack?.extraListing();
  return extra ? [extra, ...listed] : listed;
}

/**
 * Sliding window over `limit` ({max, windowMs}) for one key: 0 when the fetch is allowed (and
 * recorded), else the seconds until the window has room (Retry-After).
 */
export function rateLimited(ctx, limit, key) {
  const now = Date.now();
  const times = (ctx.fetchTimes.get(key) ?? []).filter((t) => now - t < limit.windowMs);
  ctx.fetchTimes.set(key, times);
  if (times.length >= limit.max) return Math.max(1, Math.ceil((times[0] + limit.windowMs - now) / 1000));
  times.push(now);
  return 0;
}

/**
 * How long (ms) a device's keybundle is refused for having said it is busy: 0 when it has not,
 * and 0 while every other device in the meeting is busy too, so that guests queue at someone
 * rather than fail everywhere (docs/contract.md §3).
 */
export function busyFor(ctx, key) {
  const now = Date.now();
  const left = (k) => (ctx.busyUntil.get(k) ?? 0) - now;
  if (left(key) <= 0) return 0;
  return [...ctx.connected.keys()].some((k) => k !== key && left(k) <= 0) ? left(key) : 0;
}

/** The stored Kyber prekey as bundles carry it: a copy (last resort, never used up), or null. */
const kyberOf = (rec) => (rec.kyber_pre_key ? { ...rec.kyber_pre_key } : null);

/** A participant device's bundle as the keybundle endpoint serves it; uses up one one-time prekey. */
export function takeParticipantBundle(ctx, p) {
  const pre = p.pre_keys.shift() ?? null; // one-time prekeys are handed out once, then deleted
  if (pre) bump(ctx.state.prekeyConsumption.participants, deviceKey(p.user_id, p.device_id));
  return {
    user_id: p.user_id, device_id: p.device_id, identity_key: p.identity_key,
    registration_id: p.registration_id, signed_pre_key: { ...p.signed_pre_key }, pre_key: pre,
    kyber_pre_key: kyberOf(p),
  };
}

/** A guest's bundle as participants fetch it; uses up one one-time prekey. */
export function takeGuestBundle(ctx, g) {
  const pre = g.pre_keys.shift() ?? null; // exhausted -> bundle with pre_key null (docs/contract.md §3)
  if (pre) bump(ctx.state.prekeyConsumption.guests, g.session_id);
  return {
    session_id: g.session_id, identity_key: g.identity_key, registration_id: g.registration_id,
    signed_pre_key: { ...g.signed_pre_key }, pre_key: pre, kyber_pre_key: kyberOf(g),
  };
}
