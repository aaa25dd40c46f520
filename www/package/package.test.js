// The built npm packages: the `web` target (initSync, as a page or worker can) and the
// `bundler` target (ES module importing the .wasm, as webpack/Vite resolve it) both load and
// work, and the TypeScript declarations type the API. Run after `scripts/build.sh web` and
// `scripts/build.sh bundler`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { keyCheckValue } from '../bot/bot.js';

const root = new URL('../../', import.meta.url);
const web = new URL('pkg/web/', root);
const bundler = new URL('pkg/bundler/', root);

test('web target: initSync, check values, typed errors, memory fallback without sessionStorage', async () => {
  const sdk = await import(new URL('signal_guest_sdk.js', web));
  sdk.initSync({ module: fs.readFileSync(new URL('signal_guest_sdk_bg.wasm', web)) });
  const key = crypto.randomBytes(32);
  assert.equal(sdk.GuestKeyExchange.checkValueOf(key), keyCheckValue(key), 'same check value as participants');
  assert.throws(() => sdk.GuestKeyExchange.checkValueOf(new Uint8Array(31)), { code: 'INVALID_CONFIG' });
  const socket = { emit() {}, on() {}, off() {} };
  const base = { meetingId: 'm', invitationToken: 't', displayName: 'G', socket, keyProvider: null };
  assert.throws(() => new sdk.GuestKeyExchange({ ...base, baseUrl: 'http://meet.example.com' }),
    (e) => e.name === 'GuestError' && e.code === 'INSECURE_ORIGIN' && e.retryable === false);
  const events = [];
  const guest = new sdk.GuestKeyExchange({ ...base, baseUrl: 'https://meet.example.com', onEvent: (e) => events.push(e) });
  assert.equal(guest.storageBackend, 'memory', 'Node has no sessionStorage');
  assert.equal(events[0].type, 'storage_fallback');
  assert.equal(guest.identityKey.length, 33);
  await assert.rejects(guest.exchangeKey(), { code: 'NOT_REGISTERED' });
  guest.leave();
  await assert.rejects(guest.register(), { code: 'LEFT' });
});

test('web target: configuration typos and ranges are INVALID_CONFIG; guestErrorCode reads codes', async () => {
  const sdk = await import(new URL('signal_guest_sdk.js', web));
  sdk.initSync({ module: fs.readFileSync(new URL('signal_guest_sdk_bg.wasm', web)) });
  const base = {
    meetingId: 'm', invitationToken: 't', displayName: 'G', baseUrl: 'https://meet.example.com',
    socket: { emit() {}, on() {}, off() {} },
    keyProvider: null,
  };
  for (const [extra, mention] of [
    [{ participantTimeOutMs: 2000 }, 'participantTimeOutMs'],
    [{ participantTimeoutMs: 0 }, 'participantTimeoutMs'],
    [{ maxFailures: 0 }, 'maxFailures'],
    [{ maxFailures: 2.5 }, 'maxFailures'],
    [{ keyProfile: 5 }, 'keyProfile'],
    [{ debug: 'yes' }, 'debug'],
    [{ keyProvider: undefined }, 'keyProvider is required'],
    [{ keyProvider: {} }, 'keyProvider must have setKey'],
  ]) {
    let caught;
    try { new sdk.GuestKeyExchange({ ...base, ...extra }); } catch (e) { caught = e; }
    assert.equal(sdk.guestErrorCode(caught), 'INVALID_CONFIG', JSON.stringify(extra));
    assert.match(caught.message, new RegExp(mention));
  }
  assert.equal(sdk.guestErrorCode(new Error('other')), undefined);
  assert.equal(sdk.guestErrorCode(undefined), undefined);
  assert.equal(sdk.guestErrorCode({ name: 'GuestError', code: 'NOT_A_CODE' }), undefined);
  const guest = new sdk.GuestKeyExchange({ ...base, participantTimeoutMs: 1500, maxFailures: 1 });
  guest.leave();
});

test('web target: without crypto.getRandomValues the constructor throws CRYPTO_UNAVAILABLE', async () => {
  const sdk = await import(new URL('signal_guest_sdk.js', web));
  sdk.initSync({ module: fs.readFileSync(new URL('signal_guest_sdk_bg.wasm', web)) });
  const config = {
    meetingId: 'm', invitationToken: 't', displayName: 'G', baseUrl: 'https://meet.example.com',
    socket: { emit() {}, on() {}, off() {} },
    keyProvider: null,
  };
  const original = Object.getOwnPropertyDescriptor(globalThis, 'crypto');
  for (const replacement of [undefined, { getRandomValues() { throw new Error('refused'); } }]) {
    Object.defineProperty(globalThis, 'crypto', { value: replacement, configurable: true });
    try {
      assert.throws(() => new sdk.GuestKeyExchange(config),
        (e) => e.name === 'GuestError' && e.code === 'CRYPTO_UNAVAILABLE' && e.retryable === false);
    } finally {
      Object.defineProperty(globalThis, 'crypto', original);
    }
  }
  const guest = new sdk.GuestKeyExchange(config);
  assert.equal(guest.identityKey.length, 33, 'works again once crypto is back');
  guest.leave();
});

test('the packed npm packages hold every module their JS imports (the fetch shim too)', () => {
  for (const dir of [web, bundler]) {
    const [pack] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json'], { cwd: dir, stdio: ['ignore', 'pipe', 'ignore'] }));
    const packed = new Set(pack.files.map((f) => f.path));
    const imports = [];
    for (const file of packed) {
      if (!file.endsWith('.js')) continue;
      const text = fs.readFileSync(new URL(file, dir), 'utf8');
      for (const [, spec] of text.matchAll(/(?:import|from)\s*['"](\.[^'"]+)['"]/g)) {
        imports.push(new URL(spec, new URL(file, dir)).pathname.slice(dir.pathname.length));
      }
    }
    assert.ok(imports.some((i) => i.endsWith('src/web/shim.js')), `${dir.pathname}: imports the shim`);
    for (const i of imports) assert.ok(packed.has(i), `${dir.pathname}: ${i} is imported but not packed`);
  }
});

test('bundler target: loads as an ES module importing its .wasm', () => {
  const script = `
    const sdk = await import(${JSON.stringify(new URL('signal_guest_sdk.js', bundler).href)});
    process.stdout.write(sdk.GuestKeyExchange.checkValueOf(new Uint8Array(32).fill(7)));`;
  const out = execFileSync(process.execPath, ['--experimental-wasm-modules', '--no-warnings', '--input-type=module', '-e', script]);
  assert.equal(out.toString(), keyCheckValue(Buffer.alloc(32, 7)));
});

test('TypeScript declarations type the configuration, results and errors', () => {
  for (const dir of [web, bundler]) {
    const dts = fs.readFileSync(new URL('signal_guest_sdk.d.ts', dir), 'utf8');
    for (const needle of [
      'export interface GuestConfig',
      'export type GuestEvent',
      'export interface GuestError extends Error',
      'constructor(config: GuestConfig);',
      'exchangeKey(): Promise<KeyExchangeResult>;',
      'register(): Promise<RegistrationResult>;',
      'fetchLiveKitToken(): Promise<LiveKitToken>;',
    ]) {
      assert.ok(dts.includes(needle), `${dir.pathname}: ${needle}`);
    }
    const api = dts.slice(dts.indexOf('export class GuestKeyExchange'), dts.indexOf('export type InitInput') > 0 ? dts.indexOf('export type InitInput') : undefined);
    assert.ok(!/:\s*any\b/.test(api), 'the public class has no `any`');
  }
});
