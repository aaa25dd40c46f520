// The asynchronous browser calls the SDK makes. They call back into the wasm instead of
// being awaited as Rust futures, which keeps an async executor out of the size budget.
//
// Every call back into the wasm goes through `guard`: if the module traps (a bug, or the
// deliberate stop when the CSPRNG fails), its state can no longer be trusted. The trap is
// caught here, every promise the SDK still owes is rejected with INTERNAL_ERROR, and no
// further callback enters the module; later calls are refused (see `stopped`).

const owed = new Set();
let trapped = null;

// Every error this module throws or rejects with, and its code's index in `GuestErrorCode`,
// so that `guestErrorCode` recognises exactly those (an object that only looks like one is
// not).
const made = new WeakMap();

/** The one builder of a `GuestError`: an `Error` with a stable `code` and `retryable`. */
export function guestError(message, code, index, retryable) {
  const error = new Error(message);
  error.name = "GuestError";
  error.code = code;
  error.retryable = retryable;
  made.set(error, index);
  return error;
}

/** The code index of an error this module made, or `undefined`. */
export function codeOf(value) {
  return typeof value === "object" && value !== null ? made.get(value) : undefined;
}

// INTERNAL_ERROR's index in `GuestErrorCode` (src/web/error_code.rs; a test holds it).
const INTERNAL_ERROR = 18;

function internalError() {
  return guestError("The SDK stopped after an internal error. Reload the page to join again.", "INTERNAL_ERROR", INTERNAL_ERROR, false);
}

function guard(callback) {
  return (...args) => {
    if (trapped !== null) return undefined;
    try {
      return callback(...args);
    } catch (e) {
      if (!(e instanceof WebAssembly.RuntimeError)) throw e;
      trapped = e;
      for (const reject of owed) reject(internalError());
      owed.clear();
      // Nothing may enter the module any more, and a pending timer would keep Node alive.
      for (const id of timers) clearTimeout(id);
      timers.clear();
      return undefined;
    }
  };
}

// A promise the SDK owes the page: rejected with INTERNAL_ERROR if the module traps first.
export function owe(reject) { owed.add(reject); }
export function paid(reject) { owed.delete(reject); }
// Whether the module has trapped (then the SDK refuses every call).
export function stopped() { return trapped !== null; }

// The SDK's pending timers (one per guest), cleared when the module traps.
const timers = new Set();
export function setTimer(handler, ms) {
  const guarded = guard(handler);
  const id = setTimeout((...args) => { timers.delete(id); guarded(...args); }, ms);
  timers.add(id);
  return id;
}
export function clearTimer(id) {
  timers.delete(id);
  clearTimeout(id);
}

// socket.on(event, handler) with the handler guarded; returns what to pass to socket.off.
export function listen(socket, event, handler) {
  const guarded = guard(handler);
  socket.on(event, guarded);
  return guarded;
}

// fetch, then read the body as text; calls done({ status, retryAfter, body, timedOut })
// exactly once. status 0 means no answer (network error, CORS refusal, or aborted after
// timeoutMs, when timedOut is true).
export function fetchText(url, method, headers, body, timeoutMs, done) {
  const noAnswer = [0, null, ""];
  let answer;
  let timer;
  let timedOut = false;
  try {
    const abort = new AbortController();
    if (timeoutMs > 0) {
      timer = setTimeout(() => {
        timedOut = true;
        abort.abort();
      }, timeoutMs);
    }
    const init = { method, headers, signal: abort.signal };
    if (body !== undefined) init.body = body;
    answer = fetch(url, init).then((response) => {
      const retryAfter = response.headers.get("retry-after");
      return response.text().then(
        (text) => [response.status, retryAfter, text],
        () => [response.status, retryAfter, ""],
      );
    });
  } catch {
    answer = Promise.resolve(noAnswer);
  }
  answer
    .catch(() => noAnswer)
    .then(([status, retryAfter, text]) => {
      clearTimeout(timer);
      guard(done)({ status, retryAfter, body: text, timedOut: timedOut && status === 0 });
    });
}

// Waits for value if it is a promise; calls done(true) if it fulfils, done(false) if not.
export function whenSettled(value, done) {
  Promise.resolve(value).then(
    () => guard(done)(true),
    () => guard(done)(false),
  );
}

// Claims the Web Lock `name` for as long as this page keeps it: calls done(true) if this tab
// holds it now, done(false) if another live tab holds it, done(undefined) where Web Locks are
// unavailable (Node, old browsers, opaque origins). Exactly once, and never before this
// function has returned the function that releases the lock. A holder that is letting go
// (a guest of this page that just left) gets `graceMs` to do so before the lock counts as
// held by another tab.
export function claimLock(name, graceMs, done) {
  let answered = false;
  const answer = (value) => {
    if (!answered) {
      answered = true;
      queueMicrotask(() => guard(done)(value));
    }
  };
  let release = () => {};
  const held = new Promise((resolve) => { release = resolve; });
  const keep = (lock) => {
    answer(lock !== null);
    return lock === null ? undefined : held;
  };
  try {
    const locks = globalThis.navigator?.locks;
    if (typeof locks?.request !== "function") {
      answer(undefined);
      return release;
    }
    locks
      .request(name, { ifAvailable: true }, (lock) => {
        if (lock !== null) return keep(lock);
        // Taken: wait a little for a holder that is releasing it. A timer and an
        // AbortController, not AbortSignal.timeout: Safari 15.4-15.6 have Web Locks without
        // it, and the TypeError would have counted as "no Web Locks" (the copy unnoticed).
        const abort = new AbortController();
        setTimeout(() => abort.abort(), graceMs);
        locks
          .request(name, { signal: abort.signal }, keep)
          .catch((e) => answer(e?.name === "AbortError" ? false : undefined));
        return undefined;
      })
      .catch(() => answer(undefined));
  } catch {
    answer(undefined);
  }
  return release;
}
