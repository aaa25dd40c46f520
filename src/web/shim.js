// The asynchronous browser calls the SDK makes, as callbacks instead of Rust futures:
// an async runtime in the wasm would cost more than the rest of the browser layer.

// fetch, then read the body as text; calls done({ status, retryAfter, body }) exactly once.
// status 0 means no answer (network error, CORS refusal, or aborted after timeoutMs).
export function fetchText(url, method, headers, body, timeoutMs, done) {
  const abort = new AbortController();
  const timer = timeoutMs > 0 ? setTimeout(() => abort.abort(), timeoutMs) : undefined;
  const init = { method, headers, signal: abort.signal };
  if (body !== undefined) init.body = body;
  fetch(url, init)
    .then((response) =>
      response.text().then(
        (text) => [response.status, response.headers.get("retry-after"), text],
        () => [response.status, response.headers.get("retry-after"), ""],
      ),
    )
    .catch(() => [0, null, ""])
    .then(([status, retryAfter, body]) => {
      clearTimeout(timer);
      done({ status, retryAfter, body });
    });
}

// Waits for value if it is a promise; calls done(true) if it fulfils, done(false) if not.
export function whenSettled(value, done) {
  Promise.resolve(value).then(
    () => done(true),
    () => done(false),
  );
}
