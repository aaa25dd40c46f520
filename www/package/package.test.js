// The npm package (pkg/signal-guest-sdk): its browser entry (initSync, as a page or worker
// can; NOT_INITIALISED before init), its Node entry (through the `exports` map, no init),
// what it packs, and its TypeScript declarations. Run after `scripts/build.sh package`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { keyCheckValue } from '../bot/bot.js';

const root = new URL('../../', import.meta.url);
const pkg = new URL('pkg/signal-guest-sdk/', root);
const wasm = () => fs.readFileSync(new URL('signal_guest_sdk_bg.wasm', pkg));
const browserEntry = () => import(new URL('index.js', pkg));

test('web target: initSync, check values, typed errors, memory fallback without sessionStorage', async () => {
  const sdk = await browserEntry();
  sdk.initSync({ module: wasm() });
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
  const sdk = await browserEntry();
  sdk.initSync({ module: wasm() });
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
  let invalid;
  try { new sdk.GuestKeyExchange({ ...base, nope: 1 }); } catch (e) { invalid = e; }
  assert.equal(sdk.isGuestError(invalid), true);
  assert.equal(sdk.isGuestError(new Error('other')), false);
  assert.equal(sdk.guestErrorCode(undefined), undefined);
  assert.equal(sdk.guestErrorCode({ name: 'GuestError', code: 'NOT_A_CODE' }), undefined);
  const guest = new sdk.GuestKeyExchange({ ...base, participantTimeoutMs: 1500, maxFailures: 1 });
  guest.leave();
});

test('web target: without crypto.getRandomValues the constructor throws CRYPTO_UNAVAILABLE', async () => {
  const sdk = await browserEntry();
  sdk.initSync({ module: wasm() });
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

test('the packed package holds every module its JS imports, the docs and the licence', () => {
  const [pack] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json'], { cwd: pkg, stdio: ['ignore', 'pipe', 'ignore'] }));
  const packed = new Set(pack.files.map((f) => f.path));
  const imports = [];
  for (const file of packed) {
    if (!file.endsWith('.js')) continue;
    const text = fs.readFileSync(new URL(file, pkg), 'utf8');
    for (const [, spec] of text.matchAll(/(?:import|from)\s*['"](\.[^'"]+)['"]/g)) {
      imports.push(new URL(spec, new URL(file, pkg)).pathname.slice(pkg.pathname.length));
    }
  }
  assert.ok(imports.some((i) => i.endsWith('src/web/shim.js')), 'imports the shim');
  for (const i of imports) assert.ok(packed.has(i), `${i} is imported but not packed`);
  for (const f of ['LICENSE', 'README.md', 'docs/contract.md', 'docs/api.md', 'index.d.ts', 'signal_guest_sdk_bg.wasm']) {
    assert.ok(packed.has(f), `${f} is packed`);
  }
  assert.match(fs.readFileSync(new URL('LICENSE', pkg), 'utf8'), /GNU AFFERO GENERAL PUBLIC LICENSE/);
  const meta = JSON.parse(fs.readFileSync(new URL('package.json', pkg), 'utf8'));
  assert.equal(meta.license, 'AGPL-3.0-only');
  assert.equal(meta.repository, undefined, 'no placeholder repository');
});

test('Node: the package resolves through its exports map and needs no init()', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sdk-node-'));
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(pkg.pathname, path.join(dir, 'node_modules', 'signal-guest-sdk'));
  const script = `
    import init, { GuestKeyExchange, guestErrorCode } from 'signal-guest-sdk';
    await init();
    const g = new GuestKeyExchange({ baseUrl: 'https://meet.example.com', meetingId: 'm', invitationToken: 't',
      displayName: 'G', socket: { emit() {}, on() {}, off() {} }, keyProvider: null });
    process.stdout.write(JSON.stringify({ check: GuestKeyExchange.checkValueOf(new Uint8Array(32).fill(7)),
      identity: g.identityKey.length, code: guestErrorCode(await g.exchangeKey().catch((e) => e)) }));
    g.leave();`;
  fs.writeFileSync(path.join(dir, 'main.mjs'), script);
  const out = JSON.parse(execFileSync(process.execPath, ['main.mjs'], { cwd: dir }).toString());
  assert.deepEqual(out, { check: keyCheckValue(Buffer.alloc(32, 7)), identity: 33, code: 'NOT_REGISTERED' });
  fs.rmSync(dir, { recursive: true, force: true });
});

test('signal-guest-sdk/livekit resolves through the exports map beside livekit-client, typed, keys at their index', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sdk-livekit-'));
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(pkg.pathname, path.join(dir, 'node_modules', 'signal-guest-sdk'));
  fs.symlinkSync(new URL('node_modules/livekit-client', root).pathname, path.join(dir, 'node_modules', 'livekit-client'));
  const script = `
    import { GuestKeyProvider } from 'signal-guest-sdk/livekit';
    const p = new GuestKeyProvider();
    const sets = [];
    p.on('setKey', (info, updateCurrent) => sets.push([info.keyIndex, info.key.algorithm.name, updateCurrent]));
    await Promise.all([p.setKey('bWVldGluZyBrZXk=', 0), p.setKey(new Uint8Array(32).buffer, 17)]);
    process.stdout.write(JSON.stringify(sets));`;
  fs.writeFileSync(path.join(dir, 'main.mjs'), script);
  const out = JSON.parse(execFileSync(process.execPath, ['main.mjs'], { cwd: dir }).toString());
  assert.deepEqual(out, [[0, 'PBKDF2', true], [17, 'HKDF', true]], 'in order, each at its index, each made current');
  fs.rmSync(dir, { recursive: true, force: true });
  const meta = JSON.parse(fs.readFileSync(new URL('package.json', pkg), 'utf8'));
  assert.deepEqual(meta.exports['./livekit'], { types: './livekit.d.ts', default: './livekit.js' });
  assert.equal(meta.peerDependenciesMeta['livekit-client'].optional, true);
  const dts = fs.readFileSync(new URL('livekit.d.ts', pkg), 'utf8');
  assert.match(dts, /export declare class GuestKeyProvider extends BaseKeyProvider/);
  assert.match(dts, /setKey\(material: string \| ArrayBuffer, keyIndex\?: number\): Promise<void>;/);
});

test('browser entry: using the SDK before init() is NOT_INITIALISED, not a TypeError', () => {
  // A fresh process, so that no other test has initialised the module.
  const script = `
    const sdk = await import(${JSON.stringify(new URL('index.js', pkg).href)});
    const out = [];
    for (const f of [
      () => new sdk.GuestKeyExchange({}),
      () => sdk.GuestKeyExchange.checkValueOf(new Uint8Array(32)),
    ]) {
      try { f(); out.push('no error'); } catch (e) { out.push(e.name + ':' + sdk.guestErrorCode(e) + ':' + e.retryable); }
    }
    // Made before init(), still known after it; a look-alike never is.
    let early;
    try { new sdk.GuestKeyExchange({}); } catch (e) { early = e; }
    sdk.initSync({ module: fs.readFileSync(new URL('signal_guest_sdk_bg.wasm', ${JSON.stringify(pkg.href)})) });
    const lookalike = Object.assign(new Error('x'), { name: 'GuestError', code: 'NOT_INITIALISED', retryable: false });
    out.push(sdk.guestErrorCode(early), String(sdk.guestErrorCode(lookalike)));
    process.stdout.write(JSON.stringify(out));`;
  const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', `import fs from 'node:fs';${script}`]).toString());
  assert.deepEqual(out, ['GuestError:NOT_INITIALISED:false', 'GuestError:NOT_INITIALISED:false', 'NOT_INITIALISED', 'undefined']);
});

test('disposing a guest (a `using` declaration) leaves the meeting: storage wiped, object freed', async () => {
  const sdk = await browserEntry();
  sdk.initSync({ module: wasm() });
  const items = new Map();
  const storage = { getItem: (k) => items.get(k) ?? null, setItem: (k, v) => items.set(k, v), removeItem: (k) => items.delete(k) };
  const g = new sdk.GuestKeyExchange({ baseUrl: 'https://meet.example.com', meetingId: 'dispose', invitationToken: 't',
    displayName: 'G', socket: { emit() {}, on() {}, off() {} }, keyProvider: null, storage });
  assert.ok([...items.keys()].some((k) => k.startsWith('signal-guest/v2/dispose/')), 'state stored');
  g[Symbol.dispose]();
  assert.deepEqual([...items.keys()], [], 'dispose wiped the stored keys (it means leave())');
  assert.throws(() => g.identityKey, /null pointer|destroyed|undefined/i);
});

test('TypeScript declarations type the configuration, results and errors', () => {
  const dts = fs.readFileSync(new URL('signal_guest_sdk.d.ts', pkg), 'utf8');
  for (const needle of [
    'export interface GuestConfig',
    'export type GuestEvent',
    'export interface GuestError extends Error',
    'export type GuestErrorCode =',
    '"NOT_INITIALISED"',
    'constructor(config: GuestConfig);',
    'exchangeKey(): Promise<KeyExchangeResult>;',
    'register(): Promise<RegistrationResult>;',
    'fetchLiveKitToken(): Promise<LiveKitToken>;',
    'export function guestErrorCode(error: unknown): GuestErrorCode | undefined;',
  ]) {
    assert.ok(dts.includes(needle), needle);
  }
  const api = dts.slice(dts.indexOf('export class GuestKeyExchange'), dts.indexOf('export type InitInput') > 0 ? dts.indexOf('export type InitInput') : undefined);
  assert.ok(!/:\s*any\b/.test(api), 'the public class has no `any`');
  assert.match(fs.readFileSync(new URL('index.d.ts', pkg), 'utf8'), /export \* from '\.\/signal_guest_sdk\.js'/);
});

test('docs/api.md names every error code, reason and option the SDK has (and no other)', () => {
  const api = fs.readFileSync(new URL('docs/api.md', root), 'utf8');
  const dts = fs.readFileSync(new URL('signal_guest_sdk.d.ts', pkg), 'utf8');
  const union = dts.match(/export type GuestErrorCode = ([^;]+);/)[1];
  const codes = [...union.matchAll(/"([A-Z_]+)"/g)].map((m) => m[1]);
  assert.ok(codes.length >= 19);
  const documentedCodes = [...api.matchAll(/^\| `([A-Z_]+)` \| (?:yes|no) \|/gm)].map((m) => m[1]);
  assert.deepEqual([...documentedCodes].sort(), [...codes].sort(), 'error code table');

  const failures = fs.readFileSync(new URL('src/exchange/failure.rs', root), 'utf8');
  const reasons = [...failures.matchAll(/=> "([a-z_]+)",/g)].map((m) => m[1]);
  assert.ok(reasons.length >= 20);
  const typed = ['AttemptReason', 'DropReason'].flatMap((name) =>
    [...dts.match(new RegExp(`export type ${name} =([^;]+);`))[1].matchAll(/"([a-z_]+)"/g)].map((m) => m[1]));
  assert.deepEqual([...typed].sort(), [...reasons].sort(), 'the TypeScript reason unions are the SDK\'s reasons');
  for (const reason of reasons) assert.ok(api.includes(`\`${reason}\``), `reason ${reason} documented`);

  const config = fs.readFileSync(new URL('src/web/config.rs', root), 'utf8');
  const fields = [...config.match(/const FIELDS: \[&str; \d+\] = \[([^\]]+)\]/)[1].matchAll(/"([A-Za-z]+)"/g)].map((m) => m[1]);
  const cell = String.raw`(?:[^|\\]|\\.)+`; // a table cell, escaped pipes included
  const documentedOptions = [...api.matchAll(new RegExp(`^\\| \`([a-zA-Z]+)\` \\|${cell}\\|${cell}\\| `, 'gm'))].map((m) => m[1]);
  assert.deepEqual([...documentedOptions].sort(), [...fields].sort(), 'option table');
  for (const field of fields) assert.ok(dts.includes(`  ${field}`), `${field} is typed in GuestConfig`);
});

test('the package renders the short code\'s emoji from the contract\'s table', () => {
  const contract = fs.readFileSync(new URL('docs/contract.md', root), 'utf8');
  const documented = [...contract.matchAll(/^ {3}\| \d+–\d+ \| (.+) \|$/gm)]
    .flatMap((m) => m[1].split(', '));
  assert.equal(documented.length, 64);
  const entry = fs.readFileSync(new URL('index.js', pkg), 'utf8');
  const shipped = [...entry.match(/const EMOJI = \[([\s\S]*?)\];/)[1].matchAll(/'([^']+)'/g)].map((m) => m[1]);
  assert.deepEqual(shipped, documented);
});
