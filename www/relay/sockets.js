// The reference relay's socket.io side (docs/contract.md §4): guests on the /external
// namespace, participant devices on the main one, and the delivery of Signal ciphertext
// between them. Guests' messages wait until the guest is admitted; bodies that fail the checks
// are counted in `state.dropped`, those with nowhere to go in `state.undeliverable`.

import { Server } from 'socket.io';
import { deviceIdOf, deviceKey, nonEmpty, validCipherBody } from './validate.js';
import { logEntry } from './state.js';

const MAX_QUEUED_PER_GUEST = 100; // guest messages held back until admission

/** socket.io on `server`, both namespaces wired to `ctx`; sets `ctx.external`. */
export function attachSockets(ctx, server) {
  const io = new Server(server, { cors: { origin: '*' }, maxHttpBufferSize: 1e6 });
  ctx.external = io.of('/external');
  ctx.external.use((socket, next) => guestAuth(ctx, socket, next));
  ctx.external.on('connection', (socket) => onGuestConnection(ctx, socket));
  io.use((socket, next) => participantAuth(ctx, socket, next));
  io.on('connection', (socket) => onParticipantConnection(ctx, socket));
  return io;
}

/** Marks a guest admitted and releases the messages it sent while waiting. */
export function admit(ctx, sessionId) {
  const g = ctx.guests.get(sessionId);
  if (!g) return false;
  g.admitted = true;
  // Tell the guest (docs/contract.md §4): it starts asking for the key after this.
  ctx.external.to(`guest:${sessionId}`).emit('guest:admitted', { session_id: sessionId });
  const queued = ctx.pending.get(sessionId) ?? [];
  ctx.pending.delete(sessionId);
  for (const m of queued) deliverToParticipant(ctx, sessionId, m);
  return true;
}

/** A guest's message to the participant device it names. */
export function deliverToParticipant(ctx, sessionId, d) {
  const { attack, state } = ctx;
  const to = deviceKey(d.participant_user_id, d.participant_device_id);
  // Guests' messages to the attacked device go to the impostor, never to the device.
  if (attack && to === attack.guestTarget && !attack.isImpostorGuest(sessionId)) return attack.fromGuest(sessionId, d);
  const target = ctx.connected.get(to);
  if (!target) { state.undeliverable++; return; }
  const body = {
    guest_session_id: sessionId, // from the socket's auth, never from the body
    type: d.type, encrypted_message: d.encrypted_message, message_type: d.message_type,
    timestamp: Date.now(),
  };
  target.socket.emit('guest:signal_message', body);
  logEntry(state.relayedToParticipants, { to: { user_id: target.user_id, device_id: target.device_id }, event: 'guest:signal_message', body, at: epochNow() });
}

/** Epoch ms with the monotonic clock's resolution: comparable with a page's timeOrigin + now(). */
const epochNow = () => performance.timeOrigin + performance.now();

/** A participant's message (`body` as the guest receives it) to every socket of the guest. */
export function deliverToGuest(ctx, sessionId, body) {
  ctx.external.to(`guest:${sessionId}`).emit('participant:signal_message', body);
  logEntry(ctx.state.relayedToGuests, { to: sessionId, event: 'participant:signal_message', body, at: epochNow() });
}

// ----- guests: the /external namespace -----

function guestAuth(ctx, socket, next) {
  const sid = socket.handshake.auth?.sessionId;
  if (typeof sid !== 'string' || !ctx.guests.has(sid)) return next(new Error('unknown guest session'));
  socket.data.sessionId = sid;
  socket.join(`guest:${sid}`); // a guest may have more than one socket (reconnects)
  next();
}

function onGuestConnection(ctx, socket) {
  const { state } = ctx;
  const sid = socket.data.sessionId;
  // An admitted guest learns it on every connection (it may have missed the first event).
  if (state.isAdmitted(sid)) socket.emit('guest:admitted', { session_id: sid });
  socket.on('guest:admission_query', () => {
    if (state.isAdmitted(sid)) socket.emit('guest:admitted', { session_id: sid });
  });
  socket.on('guest:signal_message', (d) => onGuestMessage(ctx, sid, d));
}

function onGuestMessage(ctx, sid, d) {
  const { state, pending } = ctx;
  const device = deviceIdOf(d?.participant_device_id);
  if (!validCipherBody(d) || !nonEmpty(d.participant_user_id, 128) || !device) { state.dropped++; return; }
  const m = {
    participant_user_id: d.participant_user_id, participant_device_id: device,
    type: d.type, encrypted_message: d.encrypted_message, message_type: d.message_type,
  };
  if (state.isAdmitted(sid)) return deliverToParticipant(ctx, sid, m);
  // Hold key requests back until the host admits the guest.
  const q = pending.get(sid) ?? [];
  if (q.length >= MAX_QUEUED_PER_GUEST) { state.undeliverable++; return; }
  q.push(m);
  pending.set(sid, q);
}

// ----- participant devices: the main namespace -----

/** The longest a device may call itself busy at once. */
const MAX_BUSY_MS = 60_000;

function participantAuth(ctx, socket, next) {
  const { token, userId } = socket.handshake.auth ?? {};
  const device = deviceIdOf(socket.handshake.auth?.deviceId);
  if (token !== ctx.participantToken) return next(new Error('invalid participant token'));
  if (!nonEmpty(userId, 128) || !device) return next(new Error('userId and deviceId required'));
  socket.data.userId = userId;
  socket.data.deviceId = device;
  next();
}

function onParticipantConnection(ctx, socket) {
  const { connected, state } = ctx;
  const { userId, deviceId } = socket.data;
  const key = deviceKey(userId, deviceId);
  const existing = connected.get(key);
  const display_name = ctx.participantKeys.get(key)?.display_name ?? userId;
  // A reconnecting device keeps its place in the join order; the newest socket receives.
  if (existing) existing.socket = socket;
  else connected.set(key, { user_id: userId, device_id: deviceId, display_name, socket });

  socket.on('disconnect', () => {
    if (connected.get(key)?.socket === socket) connected.delete(key);
  });
  socket.on('participant:signal_message_to_guest', (d) => onParticipantMessage(ctx, userId, deviceId, d));
  // The device says it is busy: keybundle fetches for it get 429 until then (docs/contract.md §3).
  socket.on('participant:busy', (d) => {
    const ms = d?.for_ms;
    if (!Number.isInteger(ms) || ms < 0 || ms > MAX_BUSY_MS) { state.dropped++; return; }
    ctx.busyUntil.set(key, Date.now() + ms);
  });
  socket.on('host:admit_guest', (d, ack) => {
    const ok = typeof d?.session_id === 'string' && admit(ctx, d.session_id);
    if (!ok) state.dropped++;
    if (typeof ack === 'function') ack({ ok });
  });
}

function onParticipantMessage(ctx, userId, deviceId, d) {
  const { attack, state } = ctx;
  if (!validCipherBody(d) || typeof d.guest_session_id !== 'string') { state.dropped++; return; }
  const g = ctx.guests.get(d.guest_session_id);
  if (!g || !g.admitted) { state.undeliverable++; return; }
  // Answers to the impostor guest have no socket to go to: the impostor reads them.
  if (attack && attack.isImpostorGuest(g.session_id)) {
    if (deviceKey(userId, deviceId) === attack.target) attack.fromDevice(g.session_id, d);
    else state.undeliverable++;
    return;
  }
  deliverToGuest(ctx, g.session_id, {
    participant_user_id: userId, participant_device_id: deviceId, // from auth, never the body
    type: d.type, encrypted_message: d.encrypted_message, message_type: d.message_type,
    timestamp: Date.now(),
  });
}
