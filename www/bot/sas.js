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
