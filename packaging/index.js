// The package's entry for browsers and bundlers. `await init()` loads the WebAssembly module
// once; everything else is the generated binding (./signal_guest_sdk.js) with three
// additions: a clear NOT_INITIALISED error instead of a TypeError when the SDK is used
// before init(), `using guest = new GuestKeyExchange(…)` leaving the meeting at the end of
// the scope, and initSync for workers and tests.
import initWasm, {
  initSync as initWasmSync,
  GuestKeyExchange as Binding,
  guestErrorCode as bindingErrorCode,
} from './signal_guest_sdk.js';
// The binding's JS half (scripts/package.mjs points this at its generated path).
import { guestError, codeOf } from './shim.js';

export * from './signal_guest_sdk.js';

let ready = false;

// NOT_INITIALISED's index in `GuestErrorCode` (src/web/error_code.rs holds it): the error is
// made by the module's own builder, so that after init() the binding recognises it too.
const NOT_INITIALISED = 19;

function notInitialised() {
  return guestError('The SDK is not initialised: call and await init() first (in Node it initialises itself).',
    'NOT_INITIALISED', NOT_INITIALISED, false);
}

function check() {
  if (!ready) throw notInitialised();
}

/** Loads the WebAssembly module (fetches `signal_guest_sdk_bg.wasm` next to this file). */
export default async function init(input) {
  const output = await initWasm(input);
  ready = true;
  return output;
}

/** Loads the module from bytes or a compiled `WebAssembly.Module`, synchronously. */
export function initSync(input) {
  const output = initWasmSync(input);
  ready = true;
  return output;
}

// The short code's emoji (docs/contract.md §10), one `picture name` per index; kept here
// rather than in the wasm, which reports the seven indices.
const EMOJI = [
  '🐶 dog', '🐱 cat', '🦁 lion', '🐎 horse', '🦄 unicorn', '🐷 pig', '🐘 elephant', '🐰 rabbit',
  '🐼 panda', '🐓 rooster', '🐧 penguin', '🐢 turtle', '🐟 fish', '🐙 octopus', '🦋 butterfly', '🌷 flower',
  '🌳 tree', '🌵 cactus', '🍄 mushroom', '🌏 globe', '🌙 moon', '☁️ cloud', '🔥 fire', '🍌 banana',
  '🍎 apple', '🍓 strawberry', '🌽 corn', '🍕 pizza', '🎂 cake', '❤️ heart', '😀 smiley', '🤖 robot',
  '🎩 hat', '👓 glasses', '🔧 spanner', '🎅 santa', '👍 thumbs up', '☂️ umbrella', '⌛ hourglass', '⏰ clock',
  '🎁 gift', '💡 light bulb', '📕 book', '✏️ pencil', '📎 paperclip', '✂️ scissors', '🔒 lock', '🔑 key',
  '🔨 hammer', '☎️ telephone', '🏁 flag', '🚂 train', '🚲 bicycle', '✈️ aeroplane', '🚀 rocket', '🏆 trophy',
  '⚽ ball', '🎸 guitar', '🎺 trumpet', '🔔 bell', '⚓ anchor', '🎧 headphones', '📁 folder', '📌 pin',
];

/** Turns a key result's or key event's emoji indices into pictures and names. */
function withEmoji(value) {
  const code = value?.shortCode;
  if (code && typeof code.emoji?.[0] === 'number') {
    const pairs = code.emoji.map((i) => {
      const entry = EMOJI[i & 63];
      const space = entry.indexOf(' ');
      return [entry.slice(0, space), entry.slice(space + 1)];
    });
    code.emoji = pairs.map(([picture]) => picture);
    code.emojiNames = pairs.map(([, name]) => name);
  }
  return value;
}

export class GuestKeyExchange extends Binding {
  constructor(config) {
    check();
    const onEvent = config?.onEvent;
    super(typeof onEvent === 'function' ? { ...config, onEvent: (event) => onEvent(withEmoji(event)) } : config);
  }

  exchangeKey() {
    return super.exchangeKey().then(withEmoji);
  }

  static checkValueOf(key) {
    check();
    return Binding.checkValueOf(key);
  }

  static clearStoredState(meetingId, storage) {
    check();
    return Binding.clearStoredState(meetingId, storage);
  }
}

// Disposing (a `using` declaration) leaves the meeting: keys and stored state are wiped,
// not just the object freed.
if (Symbol.dispose) {
  GuestKeyExchange.prototype[Symbol.dispose] = function dispose() {
    this.leave();
    this.free();
  };
}

/** Whether `error` is one the SDK threw or rejected with (a type guard in TypeScript). */
export function isGuestError(error) {
  return guestErrorCode(error) !== undefined;
}

/** The code of an error the SDK threw or rejected with; `undefined` for anything else. */
export function guestErrorCode(error) {
  if (ready) return bindingErrorCode(error);
  return codeOf(error) === NOT_INITIALISED ? 'NOT_INITIALISED' : undefined;
}
