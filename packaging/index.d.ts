export * from './signal_guest_sdk.js';
export { default } from './signal_guest_sdk.js';
