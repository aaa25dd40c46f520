//! TypeScript declarations for the plain objects the API takes and returns.

use wasm_bindgen::prelude::*;

// The reason unions are made where the reasons are (exchange/failure.rs), so they cannot drift.
#[wasm_bindgen(typescript_custom_section)]
const ATTEMPT_REASON: &'static str = crate::exchange::ATTEMPT_REASON_TS;

#[wasm_bindgen(typescript_custom_section)]
const DROP_REASON: &'static str = crate::exchange::DROP_REASON_TS;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** The page's connected socket.io-client `Socket` on the `/external` namespace (or anything alike). */
export interface GuestSocket {
  emit(event: string, body: unknown): unknown;
  on(event: string, handler: (body: unknown) => void): unknown;
  off(event: string, handler: (body: unknown) => void): unknown;
  /** When `false`, sending counts as a failed attempt. */
  readonly connected?: boolean;
}

/** The package's `GuestKeyProvider` (`signal-guest-sdk/livekit`), or any object with `setKey`. */
export interface KeyProviderLike {
  setKey(material: string | ArrayBuffer, keyIndex?: number): unknown;
}

/**
 * Server path templates; `{meetingId}`, `{sessionId}`, `{userId}`, `{deviceId}`,
 * `{invitationToken}` are filled in. The defaults are the wire profile's paths
 * (docs/contract.md, "HTTP" and §8).
 */
export interface GuestPaths {
  /** Registration (POST). */
  register?: string;
  /** The participants list (GET). */
  participants?: string;
  /** One participant device's keybundle (GET). */
  participantKeys?: string;
  /** The LiveKit access token (POST). */
  livekitToken?: string;
}

export interface GuestConfig {
  /** Meeting server origin (and optional base path). `https:` is required except on loopback. */
  baseUrl: string;
  meetingId: string;
  invitationToken: string;
  displayName: string;
  socket: GuestSocket;
  /**
   * The server's dialect: `"plan"` (default; docs/contract.md) or `"peerwave"` (PeerWave's
   * server and Flutter participants as they ship; the SDK then sets the socket's handshake
   * `auth` and connects it itself, and asks PeerWave's lobby to admit the guest).
   */
  wireProfile?: "plan" | "peerwave";
  /**
   * Receives the meeting key (`GuestKeyProvider` from `signal-guest-sdk/livekit`). Required; `null`
   * exchanges the key without handing it anywhere (only its check value is reported).
   */
  keyProvider: KeyProviderLike | null;
  /** `"base64"` (default; what the Flutter participants use) or `"raw"`. A mismatch gives black video. */
  keyProfile?: "base64" | "raw";
  /** Per-participant deadline (bundle fetch + answer). Default 5000. */
  participantTimeoutMs?: number;
  /**
   * A participant that has not answered after this long is kept waiting while the next one is
   * asked too; the first valid answer wins. 0 asks one at a time. Default 1500.
   */
  hedgeAfterMs?: number;
  /** Consecutive failures before `KEY_EXCHANGE_FAILED`. Default 3. */
  maxFailures?: number;
  /** Sessions younger than this are reused on retry (no new bundle). Default 300000. */
  sessionCacheTtlMs?: number;
  /** Accepted clock difference for answers. Default 120000. */
  clockSkewMs?: number;
  /** How long `register()` and `fetchLiveKitToken()` wait for the server before `NETWORK_ERROR`. Default 15000. */
  requestTimeoutMs?: number;
  /** How long `exchangeKey()` waits for the socket to connect before `SOCKET_NOT_CONNECTED`. Default 10000. */
  connectTimeoutMs?: number;
  /** How long `exchangeKey()` waits for the host to admit the guest before `NOT_ADMITTED`. Default 300000. */
  admissionTimeoutMs?: number;
  /** Wait for the server's admission notice before asking for the key. Default true; always true with `wireProfile: "peerwave"`. */
  requireAdmission?: boolean;
  /**
   * Identity keys expected for participant devices (base64 of the 33-byte key, e.g. from a
   * verified safety number). A bundle or session with another key fails that attempt with
   * `identity_mismatch` before any request is sent, and the next participant is asked.
   */
  pinnedIdentities?: { userId: string; deviceId: string; identityKey: string }[];
  /**
   * With `pinnedIdentities`, also ask devices without a pin (trust on first use). Default
   * false: only pinned devices are asked, so a device the server adds cannot answer.
   */
  askUnpinned?: boolean;
  /** Refuse sessions without post-quantum protection (v3, X3DH). Default false. */
  requirePostQuantum?: boolean;
  /**
   * Default true: each guest starts at a different participant (from its session id), so
   * guests arriving together do not all ask the first one listed; the participant that
   * answered last is still asked first after a reload. false: the server's order.
   */
  spreadFirstRequests?: boolean;
  paths?: GuestPaths;
  /** Defaults to `sessionStorage`; falls back to memory (with a `storage_fallback` event) if it is unusable. */
  storage?: Pick<Storage, "getItem" | "setItem" | "removeItem"> | null;
  /** Throw `STORAGE_UNAVAILABLE` instead of falling back to memory. Default false. */
  requireStorage?: boolean;
  /** Progress and diagnostics; never carries key material. */
  onEvent?: (event: GuestEvent) => void;
  /** Logs events with `console.debug`. Off by default; never logs keys. */
  debug?: boolean;
}

export interface ParticipantRef {
  userId: string;
  deviceId: string;
}

/** Every event has a `message` a page can show as it is. */
export type GuestEvent = { message: string } & (
  | { type: "progress"; stage: "registering" | "listing_participants" | "waiting_for_connection" | "waiting_for_admission" }
  | { type: "progress"; stage: "fetching_bundle" | "waiting_for"; participant: ParticipantRef }
  | { type: "progress"; stage: "hedging"; participant: ParticipantRef; to: ParticipantRef }
  | { type: "progress"; stage: "rotating"; from: ParticipantRef; to: ParticipantRef; reason: AttemptReason; detail: string }
  | { type: "progress"; stage: "key_received"; participant: ParticipantRef; keyIndex: number }
  | { type: "progress"; stage: "failed"; detail: string; error: GuestError }
  | { type: "admitted" }
  | { type: "session_lost" }
  | { type: "registered"; sessionId: string }
  | { type: "key"; from: ParticipantRef; keyIndex: number; keyCheckValue: string; safetyNumber: string; shortCode: ShortCode | null; identityKey: string; sessionVersion: 3 | 4 }
  | { type: "dropped"; reason: DropReason; detail: string }
  | { type: "storage_fallback"; reason: string }
  | { type: "duplicate_tab" }
  | { type: "error"; code: GuestErrorCode; error: GuestError }
);

export interface RegistrationResult {
  sessionId: string;
  /** True when this tab had already registered (after a reload). */
  reused: boolean;
}

export interface KeyExchangeResult {
  /** The participant device that sent the key. */
  from: ParticipantRef;
  keyIndex: number;
  /** The key's check value (docs/contract.md §6): equal values mean the same key. */
  keyCheckValue: string;
  /**
   * The 60-digit safety number between this guest and `from` (docs/contract.md §9): equal to
   * what the participant's app shows unless someone is in the middle.
   */
  safetyNumber: string;
  /** The short verification code agreed with `from` (docs/contract.md §10); `null` if it did not take part. */
  shortCode: ShortCode | null;
  /**
   * `from`'s identity key (base64 of its 33 bytes), as the session holds it: what a page puts
   * in `pinnedIdentities` once the safety number or the code is verified.
   */
  identityKey: string;
  /** The Signal session's version: 4 (PQXDH, post-quantum) or 3 (X3DH). */
  sessionVersion: 3 | 4;
  elapsedMs: number;
}

/** Read aloud or compared on screen: equal on both sides unless someone is in the middle. */
export interface ShortCode {
  /** Three groups of four digits, e.g. "4770 3133 1827". */
  digits: string;
  /** Seven emoji. */
  emoji: string[];
  /** Their names, in the same order, for screen readers and for reading aloud. */
  emojiNames: string[];
}

export interface LiveKitToken {
  token: string;
  url: string;
  roomName: string;
  identity: string;
}

/** Every error the SDK throws or rejects with. */
export interface GuestError extends Error {
  name: "GuestError";
  code: GuestErrorCode;
  /** Whether trying the same call again later can succeed (e.g. "Try again"). */
  retryable: boolean;
  status?: number;
  /** For `KEY_EXCHANGE_FAILED`: each attempt and why it failed. */
  attempts?: { participant: ParticipantRef; reason: AttemptReason; detail: string }[];
  /** The server's `Retry-After`, in seconds, where it sent one. */
  retryAfterS?: number;
}
"#;
