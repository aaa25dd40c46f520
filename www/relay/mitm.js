// MITM mode of the reference relay (see relay.js's header): the relay attacks one participant
// device. Guests get an impostor's bundle for it; the impostor decrypts their requests, asks the
// genuine device for the key while posing as a guest (session `mitm-<guest session>`), and
// answers the guest with the real key and its own sas_nonce, so key check values match but
// codes do not. Its counters and both sides' codes are in `state.mitm`.
//
// With `extraDevice` (a device id), the genuine device is left alone: the relay lists one more
// device of the same user, first, with the impostor's bundle (what a server that wants around a
// pinned device would do), and the impostor behind it asks the genuine device for the key.

import crypto from 'node:crypto';
import { createPeer, fingerprint } from '../../interop/peers.js';
import { NONCE_LEN, commitment, shortCode, emojiText } from '../bot/sas.js';
import { b64, deviceIdOf, deviceKey, nonEmpty } from './validate.js';
import { takeParticipantBundle } from './state.js';
import { deliverToGuest, deliverToParticipant } from './sockets.js';

const IMPOSTOR_PREKEYS = 200;
const PREFIX = 'mitm-';
const text = (o) => new TextEncoder().encode(JSON.stringify(o));
const parse = (u8) => JSON.parse(new TextDecoder().decode(u8));
const b64of = (u8) => Buffer.from(u8).toString('base64');

/** next bundle of `peer`, without a one-time prekey once they are used up */
const nextBundle = (peer) => {
  try { return peer.bundle(); } catch { return peer.bundle({ withOneTimePreKey: false }); }
};

/** Starts the attack on `o.userId`/`o.deviceId` (`o.log`: say what it does on the console). */
export async function startAttack(ctx, o) {
  const device = deviceIdOf(o?.deviceId);
  if (!nonEmpty(o?.userId, 128) || !device) throw new Error('mitm needs { userId, deviceId }');
  // The participant identity guests are given, and the guest identity the device is given.
  const participant = await createPeer('official', { oneTimePreKeyCount: IMPOSTOR_PREKEYS });
  const guest = await createPeer('official', { oneTimePreKeyCount: IMPOSTOR_PREKEYS });
  return new Attack(ctx, o, device, participant, guest);
}

class Attack {
  constructor(ctx, o, deviceId, participant, guest) {
    this.ctx = ctx;
    this.o = o;
    [this.userId, this.deviceId] = [o.userId, deviceId];
    this.target = deviceKey(o.userId, deviceId);
    // The device guests see: the attacked one, or the extra one the relay lists.
    this.face = o.extraDevice === undefined ? deviceId : deviceIdOf(o.extraDevice);
    if (!this.face) throw new Error('mitm extraDevice must be a device id');
    this.guestTarget = deviceKey(o.userId, this.face);
    this.participant = participant;
    this.guest = guest;
    /** impostor's request id -> { guestSid, upSid, guestRequestId, upNonce, deviceNonce, forgedNonce, answered } */
    this.exchanges = new Map();
    /** "<guest sid> <guest request id>" -> the same record */
    this.byGuestRequest = new Map();
    this.forged = new Set(); // guest sessions that hold the key from the impostor (update targets)
    this.upSids = new Set(); // the impostor guest sessions
    // Signal state must not be changed by two handlers at once: one queue for all of it.
    this.chain = Promise.resolve();
    this.m = {
      target: this.target,
      requestsIntercepted: 0, answersForged: 0, revealsForwarded: 0, updatesForwarded: 0,
      decryptFailures: 0, dropped: 0,
      impostorIdentityKey: participant.identityKey(),
      impostorGuestIdentityKey: guest.identityKey(),
      impostorGuests: new Map(), // guest session id -> impostor guest session id
      /** guest session id -> { guest: code the guest sees, participant: code the device sees } */
      codes: new Map(),
    };
    ctx.state.mitm = this.m;
  }

  say(...a) { if (this.o.log) console.log(`[relay mitm ${this.target}]`, ...a); }

  isImpostorGuest(sid) { return this.upSids.has(sid); }

  /** The extra device as the participants list shows it, or null when the attack has none. */
  extraListing() {
    if (this.face === this.deviceId) return null;
    const genuine = this.ctx.connected.get(this.target);
    return { user_id: this.userId, device_id: this.face, display_name: genuine?.display_name ?? this.userId };
  }

  /** The bundle guests get for the attacked device: the impostor participant's. */
  impostorBundle() {
    const b = nextBundle(this.participant);
    return {
      user_id: this.userId, device_id: this.face, identity_key: b64of(b.identityKey), registration_id: b.registrationId,
      signed_pre_key: { id: b.signedPreKey.id, public_key: b64of(b.signedPreKey.publicKey), signature: b64of(b.signedPreKey.signature) },
      pre_key: b.preKey ? { id: b.preKey.id, public_key: b64of(b.preKey.publicKey) } : null,
      kyber_pre_key: null, // the impostor is a 0.72.1 peer: guests talk X3DH (v3) to it
    };
  }

  /** A real guest's message to the attacked device. */
  fromGuest(guestSid, d) {
    this.queue(async () => {
      const p = await this.open(this.participant, guestSid, d);
      if (!p) return;
      const { meetingId } = this.ctx;
      if (p.type === 'guest:meeting_e2ee_key_request' && p.meeting_id === meetingId
        && p.guest_session_id === guestSid && typeof p.request_id === 'string') return this.onGuestRequest(guestSid, p);
      if (p.type === 'guest:meeting_e2ee_sas_reveal' && p.meeting_id === meetingId) return this.onGuestReveal(guestSid, p);
      this.m.dropped++;
    });
  }

  /** The attacked device's message to an impostor guest. */
  fromDevice(upSid, d) {
    this.queue(async () => {
      const p = await this.open(this.guest, upSid, d);
      if (p) await this.onDeviceMessage(upSid, p);
    });
  }

  queue(fn) {
    this.chain = this.chain.then(fn).catch((e) => { this.m.dropped++; this.say('error:', e.message); });
  }

  /** Decrypts with `peer`; a missing message_type is tried both ways, as receivers do. */
  async open(peer, address, d) {
    const body = b64(d.encrypted_message);
    const types = d.message_type === undefined ? [3, 2] : [d.message_type === 1 ? 2 : d.message_type];
    for (const type of types) {
      try { return parse(await peer.decrypt(address, { type, body })); } catch { /* next type */ }
    }
    this.m.decryptFailures++;
    return null;
  }

  /** The impostor guest for a real guest: an admitted entry in the guest table, public keys only. */
  impostorGuestFor(guestSid) {
    const { guests, meetingId } = this.ctx;
    let upSid = this.m.impostorGuests.get(guestSid);
    if (upSid) return upSid;
    upSid = `${PREFIX}${guestSid}`;
    const base = this.guest.bundle({ withOneTimePreKey: false });
    const pre_keys = [];
    for (let i = 0; i < 2; i++) { // for devices that answer on a session of their own
      const { preKey } = nextBundle(this.guest);
      if (preKey) pre_keys.push({ id: preKey.id, public_key: b64of(preKey.publicKey) });
    }
    guests.set(upSid, {
      session_id: upSid, meeting_id: meetingId, display_name: guests.get(guestSid)?.display_name ?? 'Guest',
      identity_key: b64of(base.identityKey), registration_id: base.registrationId,
      signed_pre_key: { id: base.signedPreKey.id, public_key: b64of(base.signedPreKey.publicKey), signature: b64of(base.signedPreKey.signature) },
      pre_keys, kyber_pre_key: null, admitted: true, registered_at: Date.now(),
    });
    this.m.impostorGuests.set(guestSid, upSid);
    this.upSids.add(upSid);
    return upSid;
  }

  /** Encrypts as the impostor guest and sends through the normal path to participants. */
  async sendUp(upSid, plaintext) {
    const c = await this.guest.encrypt(upSid, text(plaintext));
    deliverToParticipant(this.ctx, upSid, {
      participant_user_id: this.userId, participant_device_id: this.deviceId,
      type: plaintext.type, encrypted_message: b64of(c.body), message_type: c.type,
    });
  }

  /** Encrypts as the impostor participant and emits to the real guest's socket(s). */
  async sendDown(guestSid, plaintext) {
    const c = await this.participant.encrypt(guestSid, text(plaintext));
    deliverToGuest(this.ctx, guestSid, {
      participant_user_id: this.userId, participant_device_id: this.face,
      type: plaintext.type, encrypted_message: b64of(c.body), message_type: c.type, timestamp: Date.now(),
    });
  }

  /** A guest's key request: asked again of the device, as the impostor guest. */
  async onGuestRequest(guestSid, req) {
    this.m.requestsIntercepted++;
    const upSid = this.impostorGuestFor(guestSid);
    if (!(await this.guest.hasSession(upSid))) {
      const p = this.ctx.participantKeys.get(this.target);
      if (!p) { this.m.dropped++; this.say('the device has no keys'); return; }
      const j = takeParticipantBundle(this.ctx, p);
      await this.guest.processBundle(upSid, {
        registrationId: j.registration_id, deviceId: 1, identityKey: b64(j.identity_key),
        signedPreKey: { id: j.signed_pre_key.id, publicKey: b64(j.signed_pre_key.public_key), signature: b64(j.signed_pre_key.signature) },
        preKey: j.pre_key ? { id: j.pre_key.id, publicKey: b64(j.pre_key.public_key) } : null,
      });
    }
    const upNonce = new Uint8Array(crypto.randomBytes(NONCE_LEN));
    const up = {
      type: 'guest:meeting_e2ee_key_request', meeting_id: this.ctx.meetingId, guest_session_id: upSid,
      request_id: crypto.randomBytes(16).toString('base64url'), timestamp: Date.now(),
      sas_commitment: b64of(commitment(upNonce)),
    };
    const rec = {
      guestSid, upSid, guestRequestId: req.request_id, upRequestId: up.request_id,
      upNonce, forgedNonce: null, deviceNonce: null, answered: false,
    };
    this.exchanges.set(up.request_id, rec);
    this.byGuestRequest.set(`${guestSid} ${req.request_id}`, rec);
    await this.sendUp(upSid, up);
    this.say(`request ${req.request_id} from guest ${guestSid} -> ${up.request_id} as ${upSid}`);
  }

  /** A guest's sas_nonce reveal: the impostor guest reveals its own to the device. */
  async onGuestReveal(guestSid, r) {
    const rec = typeof r.request_id === 'string' ? this.byGuestRequest.get(`${guestSid} ${r.request_id}`) : undefined;
    if (!rec || !rec.answered) { this.m.dropped++; return; }
    this.byGuestRequest.delete(`${guestSid} ${r.request_id}`);
    await this.sendUp(rec.upSid, {
      type: 'guest:meeting_e2ee_sas_reveal', meeting_id: this.ctx.meetingId, request_id: rec.upRequestId, sas_nonce: b64of(rec.upNonce),
    });
    this.m.revealsForwarded++;
    this.recordCodes(guestSid, rec, b64(r.sas_nonce));
  }

  /** Both codes, as each side computes them, to show that they differ. */
  recordCodes(guestSid, rec, guestNonce) {
    const { target } = this;
    const { meetingId } = this.ctx;
    const deviceIdentity = this.guest.remoteIdentity(rec.upSid);
    const guestIdentity = this.participant.remoteIdentity(guestSid);
    if (!(guestNonce?.length === NONCE_LEN && rec.deviceNonce && deviceIdentity && guestIdentity)) return;
    const side = (g, gIdentity, gNonce, pIdentity, pNonce) => ({
      ...shortCode({
        guestNonce: gNonce, participantNonce: pNonce, guestIdentity: gIdentity, participantIdentity: pIdentity,
        guestId: `guest:${g}`, participantId: target, meetingId,
      }),
      safetyNumber: fingerprint(target, pIdentity, `guest:${g}`, gIdentity),
    });
    const codes = {
      guest: side(guestSid, guestIdentity, new Uint8Array(guestNonce), this.participant.identityKey(), rec.forgedNonce),
      participant: side(rec.upSid, this.guest.identityKey(), rec.upNonce, deviceIdentity, rec.deviceNonce),
    };
    this.m.codes.set(guestSid, codes);
    this.say(`guest ${guestSid} sees ${codes.guest.digits} ${emojiText(codes.guest.emoji)} / ${codes.guest.safetyNumber}`);
    this.say(`${target} sees ${codes.participant.digits} ${emojiText(codes.participant.emoji)} / ${codes.participant.safetyNumber}`);
  }

  async onDeviceMessage(upSid, p) {
    if (p?.meeting_id !== this.ctx.meetingId) { this.m.dropped++; return; }
    if (p.type === 'participant:meeting_e2ee_key_response') await this.onDeviceResponse(upSid, p);
    else if (p.type === 'participant:meeting_e2ee_key_update') await this.onDeviceUpdate(upSid, p);
    else this.m.dropped++;
  }

  /** The device's answer to the impostor guest: its key goes on to the real guest. */
  async onDeviceResponse(upSid, p) {
    const rec = typeof p.request_id === 'string' ? this.exchanges.get(p.request_id) : undefined;
    if (!rec || rec.upSid !== upSid || rec.answered) { this.m.dropped++; return; }
    rec.answered = true;
    this.exchanges.delete(p.request_id);
    rec.deviceNonce = b64(p.sas_nonce)?.length === NONCE_LEN ? new Uint8Array(b64(p.sas_nonce)) : null;
    rec.forgedNonce = new Uint8Array(crypto.randomBytes(NONCE_LEN));
    // The real key goes on, so key check values match; only the nonce is the impostor's.
    await this.sendDown(rec.guestSid, {
      type: 'participant:meeting_e2ee_key_response', meeting_id: this.ctx.meetingId, request_id: rec.guestRequestId,
      key: p.key, key_index: p.key_index ?? 0, timestamp: Date.now(), sas_nonce: b64of(rec.forgedNonce),
    });
    this.forged.add(rec.guestSid);
    this.m.answersForged++;
    this.say(`answered guest ${rec.guestSid} (${rec.guestRequestId}) with the device's key`);
  }

  /** A key update from the device: on to the guest that holds the key from the impostor. */
  async onDeviceUpdate(upSid, p) {
    const guestSid = upSid.slice(PREFIX.length);
    if (!guestSid || !this.forged.has(guestSid)) { this.m.dropped++; return; }
    await this.sendDown(guestSid, {
      type: p.type, meeting_id: this.ctx.meetingId, key: p.key, key_index: p.key_index ?? 0, timestamp: Date.now(),
    });
    this.m.updatesForwarded++;
  }
}
