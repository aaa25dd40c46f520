export * from './signal_guest_sdk.js';
export { default } from './signal_guest_sdk.js';

import type { GuestError } from './signal_guest_sdk.js';
/** Whether `error` is one the SDK threw or rejected with; narrows `unknown` to `GuestError`. */
export function isGuestError(error: unknown): error is GuestError;
