// Short verification code (docs/contract.md §10), the one JavaScript copy: the bot, the relay's
// MITM mode and the tests all compute it here, so they cannot drift apart.
import crypto from 'node:crypto';

export const NONCE_LEN = 32;
const COMMITMENT_LABEL = 'signal-guest sas commitment v1';
const CODE_SALT = 'signal-guest sas v1';

/** The 64 pictures, in the contract's order: [emoji, name]. */
export const EMOJI = Object.freeze([
  ['🐶', 'dog'], ['🐱', 'cat'], ['🦁', 'lion'], ['🐎', 'horse'],
  ['🦄', 'unicorn'], ['🐷', 'pig'], ['🐘', 'elephant'], ['🐰', 'rabbit'],
  ['🐼', 'panda'], ['🐓', 'rooster'], ['🐧', 'penguin'], ['🐢', 'turtle'],
  ['🐟', 'fish'], ['🐙', 'octopus'], ['🦋', 'butterfly'], ['🌷', 'flower'],
  ['🌳', 'tree'], ['🌵', 'cactus'], ['🍄', 'mushroom'], ['🌏', 'globe'],
  ['🌙', 'moon'], ['☁️', 'cloud'], ['🔥', 'fire'], ['🍌', 'banana'],
  ['🍎', 'apple'], ['🍓', 'strawberry'], ['🌽', 'corn'], ['🍕', 'pizza'],
  ['🎂', 'cake'], ['❤️', 'heart'], ['😀', 'smiley'], ['🤖', 'robot'],
  ['🎩', 'hat'], ['👓', 'glasses'], ['🔧', 'spanner'], ['🎅', 'santa'],
  ['👍', 'thumbs up'], ['☂️', 'umbrella'], ['⌛', 'hourglass'], ['⏰', 'clock'],
  ['🎁', 'gift'], ['💡', 'light bulb'], ['📕', 'book'], ['✏️', 'pencil'],
  ['📎', 'paperclip'], ['✂️', 'scissors'], ['🔒', 'lock'], ['🔑', 'key'],
  ['🔨', 'hammer'], ['☎️', 'telephone'], ['🏁', 'flag'], ['🚂', 'train'],
  ['🚲', 'bicycle'], ['✈️', 'aeroplane'], ['🚀', 'rocket'], ['🏆', 'trophy'],
  ['⚽', 'ball'], ['🎸', 'guitar'], ['🎺', 'trumpet'], ['🔔', 'bell'],
  ['⚓', 'anchor'], ['🎧', 'headphones'], ['📁', 'folder'], ['📌', 'pin'],
].map((e) => Object.freeze(e)));

const bytes = (b, what, len) => {
  const u = b instanceof Uint8Array ? b : null;
  if (!u || (len !== undefined && u.length !== len)) throw new TypeError(`${what} must be a Uint8Array${len ? ` of ${len} bytes` : ''}`);
  return u;
};

/** SHA-256("signal-guest sas commitment v1" ‖ nonce), 32 bytes. */
export function commitment(nonceBytes) {
  bytes(nonceBytes, 'nonce', NONCE_LEN);
  return new Uint8Array(crypto.createHash('sha256').update(COMMITMENT_LABEL).update(nonceBytes).digest());
}

/** Whether a revealed nonce hashes to the commitment (constant time; false for any malformed input). */
export function revealMatches(commitmentBytes, nonceBytes) {
  if (!(commitmentBytes instanceof Uint8Array) || commitmentBytes.length !== 32) return false;
  if (!(nonceBytes instanceof Uint8Array) || nonceBytes.length !== NONCE_LEN) return false;
  return crypto.timingSafeEqual(commitment(nonceBytes), commitmentBytes);
}

/** 16-bit big-endian byte length, then the UTF-8 (contract §10 step 4). */
function lengthPrefixed(s) {
  const utf8 = Buffer.from(String(s), 'utf8');
  if (utf8.length > 0xffff) throw new RangeError('identifier longer than 65535 bytes');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(utf8.length);
  return Buffer.concat([len, utf8]);
}

/** The 6 HKDF bytes the code is read from. */
export function codeBytes({ guestNonce, participantNonce, guestIdentity, participantIdentity, guestId, participantId, meetingId }) {
  const ikm = Buffer.concat([bytes(guestNonce, 'guestNonce', NONCE_LEN), bytes(participantNonce, 'participantNonce', NONCE_LEN)]);
  const info = Buffer.concat([
    bytes(guestIdentity, 'guestIdentity', 33), bytes(participantIdentity, 'participantIdentity', 33),
    lengthPrefixed(guestId), lengthPrefixed(participantId), lengthPrefixed(meetingId),
  ]);
  return new Uint8Array(crypto.hkdfSync('sha256', ikm, CODE_SALT, info, 6));
}

/** @returns {{ digits: string, emoji: number[] }} digits "n1 n2 n3", emoji = seven indices into EMOJI */
export function shortCode(inputs) {
  const [b0, b1, b2, b3, b4, b5] = codeBytes(inputs);
  const n1 = ((b0 << 5) | (b1 >> 3)) + 1000;
  const n2 = (((b1 & 7) << 10) | (b2 << 2) | (b3 >> 6)) + 1000;
  const n3 = (((b3 & 63) << 7) | (b4 >> 1)) + 1000;
  const bits = [b0, b1, b2, b3, b4, b5].reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
  const emoji = Array.from({ length: 7 }, (_, i) => Number((bits >> BigInt(42 - 6 * i)) & 63n));
  return { digits: `${n1} ${n2} ${n3}`, emoji };
}

/** The emoji form as text, e.g. "❤️ ❤️ 🐼 …". */
export const emojiText = (indices) => indices.map((i) => EMOJI[i][0]).join(' ');

/**
 * The participant's side of §10 (steps 2–4). The code's inputs are frozen when the participant
 * answers: the identity key of the guest whose request it answered (the key of the session that
 * request arrived on), `guest:<session id>` from that request, its own identity key and id, the
 * meeting, the commitment and the nonce it sends. The reveal only supplies `Ng`; the code is
 * computed from the frozen inputs, never from whatever identity is known for that session id by
 * the time the reveal arrives. Otherwise someone in the middle, having seen `Np`, could set up a
 * new session under the same session id with a guest identity key ground until the codes match
 * (about 2^39 tries), and reveal over that one. One reveal per answer, right or wrong.
 */
export class ParticipantCodes {
  /**
   * @param {{ participantId: string, participantIdentity: Uint8Array, meetingId: string,
   *   guestIdentity: (guestSessionId: string) => Uint8Array | null, maxOpen?: number }} options
   *   `guestIdentity`: the identity key the participant's store holds for a guest session id
   *   (read once, at the answer).
   */
  constructor({ participantId, participantIdentity, meetingId, guestIdentity, maxOpen = 1000 }) {
    if (typeof guestIdentity !== 'function') throw new TypeError('guestIdentity must be a function');
    this.participantId = String(participantId);
    this.participantIdentity = bytes(participantIdentity, 'participantIdentity', 33).slice();
    this.meetingId = String(meetingId);
    this.guestIdentityOf = guestIdentity;
    this.maxOpen = maxOpen;
    /** "<session id> <request id>" -> frozen inputs, per answer; the oldest go first */
    this.open = new Map();
  }

  get size() { return this.open.size; }

  /**
   * Call when answering a request from `guestSessionId`, before anything else can change what is
   * known for that session id; returns `Np`, the nonce to put in the response. `commitment` is
   * null when the request carried none (or a malformed one): no reveal can then match.
   */
  answer({ guestSessionId, requestId, commitment: committed }) {
    const known = this.guestIdentityOf(guestSessionId);
    const participantNonce = new Uint8Array(crypto.randomBytes(NONCE_LEN));
    const id = `${guestSessionId} ${requestId}`;
    this.open.delete(id);
    this.open.set(id, Object.freeze({
      commitment: committed instanceof Uint8Array ? committed.slice() : null,
      participantNonce,
      guestIdentity: known instanceof Uint8Array && known.length === 33 ? known.slice() : null,
      guestId: `guest:${guestSessionId}`,
      participantIdentity: this.participantIdentity,
      participantId: this.participantId,
      meetingId: this.meetingId,
    }));
    while (this.open.size > this.maxOpen) this.open.delete(this.open.keys().next().value);
    return participantNonce;
  }

  /**
   * A reveal that arrived from `guestSessionId`. `guestNonce` is the decoded `sas_nonce`
   * (null if it was not base64 of 32 bytes).
   * @returns {{ refusal: string } | { code: { digits: string, emoji: number[] }, inputs: object }}
   *   `inputs`: the frozen inputs the code was computed from (guestIdentity, guestId,
   *   participantIdentity, participantId, meetingId, …), e.g. for the safety number.
   */
  reveal({ guestSessionId, requestId, meetingId, guestNonce }) {
    const id = `${guestSessionId} ${requestId}`;
    const open = typeof requestId === 'string' ? this.open.get(id) : undefined;
    if (open) this.open.delete(id); // one reveal per answer, right or wrong
    const refusal = !open ? 'unknown request'
      : meetingId !== open.meetingId ? 'other meeting'
        : !(guestNonce instanceof Uint8Array) || guestNonce.length !== NONCE_LEN ? 'nonce is not base64 of 32 bytes'
          : !open.guestIdentity ? 'no identity key for the guest'
            : !revealMatches(open.commitment, guestNonce) ? 'does not match the commitment' : null;
    if (refusal) return { refusal };
    const { commitment: _c, ...inputs } = open;
    return { code: shortCode({ ...inputs, guestNonce }), inputs };
  }
}
