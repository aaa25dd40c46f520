// The reference relay's HTTP side: the contract's guest endpoints (registration, participant
// list, keybundles, LiveKit token; docs/contract.md §3) and the relay's own participant
// endpoints (device key upload, guest bundles, admission). Handlers throw HttpError; the last
// middleware turns it into `{error}` with its status.

import crypto from 'node:crypto';
import express from 'express';
import { AccessToken } from 'livekit-server-sdk';
import {
  HttpError, MAX_PREKEY_STOCK, bad, deviceIdOf, deviceKey, findPrivateKeyName, nonEmpty, onlyFields, validateKeys,
  validatePreKeys,
} from './validate.js';
import {
  busyFor, logEntry, participantList, rateLimited, takeGuestBundle, takeParticipantBundle,
} from './state.js';
import { admit } from './sockets.js';

/** The relay's express app over `ctx`. */
export function createApp(ctx) {
  const app = express();
  app.disable('x-powered-by');
  // Every answer is made for its request (a keybundle uses up a prekey): no ETag, so no
  // conditional request is ever answered 304 from a stale body, and no SHA-1 of each body.
  app.set('etag', false);
  app.use(cors);
  app.use(express.json({ limit: '256kb' }));
  guestRoutes(app, ctx);
  app.post('/api/livekit/external-token', (req, res) => liveKitToken(ctx, req, res));
  participantRoutes(app, ctx);
  app.use((req, res) => res.status(404).json({ error: 'not found' }));
  app.use(errorHandler);
  return app;
}

function cors(req, res, next) {
  // Browsers on other local ports call the relay: allow any origin and our custom headers.
  res.set('Access-Control-Allow-Origin', '*');
  res.set('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
  res.set('Access-Control-Allow-Headers', 'Content-Type, X-Guest-Session, Authorization');
  res.set('Access-Control-Expose-Headers', 'Retry-After'); // so pages can read it on 429
  if (req.method === 'OPTIONS') return res.status(204).end();
  next();
}

// Express 5 forwards thrown errors (also from async handlers) here.
// eslint-disable-next-line no-unused-vars
function errorHandler(err, req, res, next) {
  const status = err instanceof HttpError ? err.status : err.type === 'entity.parse.failed' ? 400
    : err.status >= 400 && err.status < 500 ? err.status : 500;
  if (status === 500) console.error('[relay]', err);
  res.status(status).json({ error: status === 500 ? 'internal error' : err.message });
}

// ----- guests (the contract) -----

function guestRoutes(app, ctx) {
  app.post('/api/meetings/external/register', (req, res) => registerGuest(ctx, req, res));
  app.get('/api/meetings/external/:meetingId/participants', (req, res) => {
    const guest = ctx.guests.get(req.get('x-guest-session') ?? '');
    if (!guest) throw new HttpError(403, 'missing or unknown X-Guest-Session');
    if (req.params.meetingId !== ctx.meetingId) throw new HttpError(404, 'meeting not found');
    res.json(participantList(ctx));
  });
  app.get('/api/meetings/external/:sessionId/participant/:userId/:deviceId/keys', (req, res) => keyBundle(ctx, req, res));
}

function registerGuest(ctx, req, res) {
  const { state, meetingId } = ctx;
  logEntry(state.registrations, req.body);
  const body = req.body;
  if (!body || typeof body !== 'object' || Array.isArray(body)) bad('body must be a JSON object');
  const priv = findPrivateKeyName(body);
  if (priv) bad(`private key material is never accepted (field ${priv})`);
  onlyFields(body, ['invitation_token', 'meeting_id', 'display_name', 'identity_key_public',
    'registration_id', 'signed_pre_key', 'pre_keys', 'kyber_pre_key'], 'body');
  if (typeof body.invitation_token !== 'string') bad('invitation_token must be a string');
  if (body.invitation_token !== ctx.invitationToken) throw new HttpError(403, 'invalid invitation token');
  if (typeof body.meeting_id !== 'string') bad('meeting_id must be a string');
  if (body.meeting_id !== meetingId) throw new HttpError(404, 'meeting not found');
  if (!nonEmpty(body.display_name)) bad('display_name must be a non-empty string (max 200)');
  const keys = validateKeys(body, 'identity_key_public');

  const session_id = crypto.randomUUID();
  ctx.guests.set(session_id, {
    session_id, meeting_id: meetingId, display_name: body.display_name, ...keys,
    admitted: false, registered_at: Date.now(),
  });
  if (ctx.autoAdmit) admit(ctx, session_id);
  res.json({ session_id, meeting_id: meetingId, display_name: body.display_name });
}

/** A participant device's bundle for a guest: rate-limited, with the injected faults and MITM mode. */
function keyBundle(ctx, req, res) {
  const { sessionId, userId, deviceId } = req.params;
  const { attack, participantKeys } = ctx;
  if (!ctx.guests.has(sessionId)) throw new HttpError(404, 'unknown session');
  const key = deviceKey(userId, deviceId);
  // Per guest and device, then per device for all guests together, then whether the device
  // said it is busy (docs/contract.md §3).
  const busyMs = busyFor(ctx, key);
  const retryAfter = rateLimited(ctx, ctx.rateLimit, `guest:${sessionId}:${key}`)
    || rateLimited(ctx, ctx.deviceRateLimit, `device:${key}`)
    || (busyMs > 0 ? Math.ceil(busyMs / 1000) : 0);
  if (retryAfter) {
    res.set('Retry-After', String(retryAfter));
    throw new HttpError(429, 'too many keybundle fetches');
  }
  const fault = ctx.state.faults.keybundle.get(key);
  if (fault === 'error500') throw new HttpError(500, 'injected fault');
  if (fault === 'hang') return; // never answers
  if (attack && key === attack.guestTarget) return res.json(attack.impostorBundle());
  if (!ctx.connected.has(key)) throw new HttpError(403, 'target is not in the meeting');
  const p = fault === 'wrong-device'
    ? [...participantKeys.values()].find((other) => deviceKey(other.user_id, other.device_id) !== key)
    : participantKeys.get(key);
  if (!p) throw new HttpError(404, 'participant has no keys');
  res.json(takeParticipantBundle(ctx, p));
}

async function liveKitToken(ctx, req, res) {
  const { meetingId, livekit } = ctx;
  const { sessionId, meetingId: mid } = req.body ?? {};
  if (typeof sessionId !== 'string' || typeof mid !== 'string') bad('sessionId and meetingId must be strings');
  const g = ctx.guests.get(sessionId);
  if (!g || mid !== meetingId) throw new HttpError(404, 'unknown session or meeting');
  if (!g.admitted) throw new HttpError(403, 'not admitted yet');
  const identity = `guest_${sessionId}`;
  const at = new AccessToken(livekit.apiKey, livekit.apiSecret, { identity, name: g.display_name, ttl: '2h' });
  at.addGrant({ roomJoin: true, room: meetingId, canPublish: true, canSubscribe: true, canPublishData: true });
  res.json({ token: await at.toJwt(), url: livekit.url, roomName: meetingId, identity });
}

// ----- participant devices (the relay's own) -----

function participantRoutes(app, ctx) {
  const authorized = (req) => req.get('authorization') === `Bearer ${ctx.participantToken}`;
  app.get('/api/meetings/:meetingId/external/:sessionId/keys', (req, res) => {
    if (!authorized(req)) throw new HttpError(403, 'participant authorization required');
    const g = ctx.guests.get(req.params.sessionId);
    if (req.params.meetingId !== ctx.meetingId || !g) throw new HttpError(404, 'unknown meeting or session');
    res.json(takeGuestBundle(ctx, g));
  });
  // Participant device key upload (the real server has its own, authenticated).
  app.post('/api/participants/register', (req, res) => registerParticipant(ctx, req, res));
  // One-time prekey stock: how many are left, and top-ups of at most 100 (docs/contract.md §3).
  const deviceOf = (req) => {
    if (!authorized(req)) throw new HttpError(403, 'participant authorization required');
    const p = ctx.participantKeys.get(deviceKey(req.params.userId, req.params.deviceId));
    if (!p) throw new HttpError(404, 'unknown participant device');
    return p;
  };
  app.get('/api/participants/:userId/:deviceId/prekeys', (req, res) => {
    res.json({ count: deviceOf(req).pre_keys.length });
  });
  app.post('/api/participants/:userId/:deviceId/prekeys', (req, res) => {
    const p = deviceOf(req);
    const body = req.body;
    if (!body || typeof body !== 'object' || Array.isArray(body)) bad('body must be a JSON object');
    onlyFields(body, ['pre_keys'], 'body');
    const added = validatePreKeys(body.pre_keys);
    const stored = new Set(p.pre_keys.map((k) => k.id));
    const reused = added.find((k) => stored.has(k.id));
    if (reused) bad(`pre_keys id ${reused.id} is already stored`);
    if (p.pre_keys.length + added.length > MAX_PREKEY_STOCK) bad(`a device holds at most ${MAX_PREKEY_STOCK} one-time prekeys`);
    p.pre_keys.push(...added);
    res.json({ count: p.pre_keys.length });
  });
  app.post('/api/relay/admit/:sessionId', (req, res) => {
    if (!authorized(req)) throw new HttpError(403, 'participant authorization required');
    if (!admit(ctx, req.params.sessionId)) throw new HttpError(404, 'unknown session');
    res.json({ session_id: req.params.sessionId, admitted: true });
  });
}

function registerParticipant(ctx, req, res) {
  const body = req.body;
  if (!body || typeof body !== 'object' || Array.isArray(body)) bad('body must be a JSON object');
  // "auth" is the participant token, not key material; check every other name for private keys.
  const { auth, ...rest } = body;
  const priv = findPrivateKeyName(rest);
  if (priv) bad(`private key material is never accepted (field ${priv})`);
  if (auth !== ctx.participantToken) throw new HttpError(403, 'invalid participant token');
  onlyFields(rest, ['user_id', 'device_id', 'display_name', 'identity_key', 'registration_id',
    'signed_pre_key', 'pre_keys', 'kyber_pre_key'], 'body');
  if (!nonEmpty(rest.user_id, 128)) bad('user_id must be a non-empty string');
  const device_id = deviceIdOf(rest.device_id);
  if (!device_id) bad('device_id must be a non-empty string or integer');
  const keys = validateKeys(rest, 'identity_key');
  const display_name = nonEmpty(rest.display_name) ? rest.display_name : rest.user_id;
  ctx.participantKeys.set(deviceKey(rest.user_id, device_id), { user_id: rest.user_id, device_id, display_name, ...keys });
  const live = ctx.connected.get(deviceKey(rest.user_id, device_id));
  if (live) live.display_name = display_name;
  res.json({ user_id: rest.user_id, device_id });
}
