// Boots PeerWave's real server (upstream 8956afd, AGPL-3.0) for tests, with a fake LiveKit and a
// seeded database. PeerWave's code is never part of this repository: scripts/peerwave-setup.sh
// clones it into target/peerwave/server-src; each instance runs from a private copy of its
// server/ directory under target/peerwave/runs/ (so instances can serve different web roots and
// PeerWave's own writes such as logs/ or .secrets stay out of the clone).
//
// Seeding writes PeerWave's SQLite schema directly (our SQL, their tables) with the sqlite3 module
// the setup built, after PeerWave has created the tables. The schema was checked against
// db/model.js at 8956afd: Users, Clients, SignalSignedPreKeys, SignalPreKeys, meetings.

import { spawn, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BASE = path.join(ROOT, 'target/peerwave');
const CLONE_SERVER = path.join(BASE, 'server-src/server');
const SETUP = path.join(ROOT, 'scripts/peerwave-setup.sh');
const MAX_LOG_LINES = 20000;

// PeerWave's server.listen(port) binds every interface; this preload (written next to the DB,
// run with --require) pins only that listen call to loopback. Nothing else in PeerWave changes.
const LOOPBACK_PRELOAD = `
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (String(args[0]) === process.env.PORT && (args.length === 1 || typeof args[1] === 'function')) {
    args.splice(1, 0, '127.0.0.1');
  }
  return listen.apply(this, args);
};
`;

/** Sequelize's SQLite DATETIME text, so PeerWave's own date comparisons order correctly. */
const sqlTime = (d = new Date()) => d.toISOString().replace('T', ' ').replace('Z', ' +00:00');
const b64 = (u8) => Buffer.from(u8).toString('base64');
const stripAnsi = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');

let ipCounter = 0;
/**
 * A fresh client address for X-Forwarded-For. PeerWave trusts one proxy hop, so every loopback
 * client otherwise shares one /api rate-limit bucket (100 requests / 15 min).
 */
export function clientIp() {
  ipCounter++;
  return `10.${(process.pid >> 8) & 255}.${(process.pid + (ipCounter >> 8)) & 255}.${ipCounter & 255}`;
}

async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/** Runs scripts/peerwave-setup.sh unless the clone and its node_modules are already in place. */
export function ensurePeerWave({ quiet = true } = {}) {
  const ready = fs.existsSync(path.join(CLONE_SERVER, 'server.js'))
    && fs.existsSync(path.join(CLONE_SERVER, 'node_modules/sqlite3/package.json'));
  // The script itself is idempotent and takes well under a second when nothing is missing.
  const out = execFileSync(SETUP, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (!quiet || !ready) process.stderr.write(out);
}

/** Fake LiveKit RoomService: only ListParticipants, from a list the test controls. */
async function startFakeLiveKit() {
  let identities = [];
  const requests = [];
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      let json = null;
      try { json = JSON.parse(body || 'null'); } catch { /* recorded as null */ }
      requests.push({ method: req.method, url: req.url, body: json, authorized: /^Bearer /.test(req.headers.authorization ?? '') });
      if (req.method === 'POST' && req.url === '/twirp/livekit.RoomService/ListParticipants') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ participants: identities.map((identity) => ({ identity })) }));
      } else {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ code: 'not_found', msg: 'fake livekit: only ListParticipants' }));
      }
    });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${srv.address().port}`,
    requests,
    /** @param {(string|{userId:string, deviceId:number|string})[]} list identities "<userId>:<deviceId>" */
    setParticipants(list) {
      identities = list.map((p) => (typeof p === 'string' ? p : `${p.userId}:${p.deviceId}`));
    },
    close: () => new Promise((r) => { srv.closeAllConnections?.(); srv.close(r); }),
  };
}

/** Promise wrappers over one sqlite3 connection (the module PeerWave's install built). */
function openDb(file) {
  const sqlite3 = createRequire(path.join(CLONE_SERVER, 'package.json'))('sqlite3');
  const db = new sqlite3.Database(file);
  db.configure('busyTimeout', 10000); // PeerWave writes the same file (WAL)
  const run = (sql, params = []) => new Promise((res, rej) => db.run(sql, params, function (e) { e ? rej(e) : res(this); }));
  const all = (sql, params = []) => new Promise((res, rej) => db.all(sql, params, (e, rows) => (e ? rej(e) : res(rows))));
  const close = () => new Promise((res) => db.close(() => res()));
  return { run, all, close };
}

/**
 * @param {{ port?: number, webRoot?: string, nodeEnv?: string, bootTimeoutMs?: number,
 *   meetingTitle?: string, echo?: boolean }} [opts]
 *   echo: also print PeerWave's output to stderr (it is always kept in `logs`).
 */
export async function startPeerWave(opts = {}) {
  ensurePeerWave();
  const port = opts.port ?? await freePort();
  const url = `http://127.0.0.1:${port}`;
  const runDir = path.join(BASE, 'runs', `${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  const serverDir = path.join(runDir, 'server');
  const dbPath = path.join(runDir, 'data/peerwave.sqlite');

  // Private copy of PeerWave's server/ (1.3 MB, tracked files only) with the shared node_modules.
  fs.mkdirSync(path.dirname(dbPath), { recursive: true });
  const skip = new Set(['node_modules', 'web', '.secrets', 'logs', 'data'].map((n) => path.join(CLONE_SERVER, n)));
  fs.cpSync(CLONE_SERVER, serverDir, { recursive: true, filter: (src) => !skip.has(src) });
  fs.symlinkSync(fs.realpathSync(path.join(CLONE_SERVER, 'node_modules')), path.join(serverDir, 'node_modules'));
  if (opts.webRoot) fs.symlinkSync(path.resolve(opts.webRoot), path.join(serverDir, 'web'), 'dir');
  const preload = path.join(runDir, 'loopback.cjs');
  fs.writeFileSync(preload, LOOPBACK_PRELOAD);

  const livekit = await startFakeLiveKit();
  const env = {
    PATH: process.env.PATH, HOME: process.env.HOME,
    PORT: String(port), DB_PATH: dbPath,
    SESSION_SECRET: crypto.randomBytes(32).toString('hex'), JWT_SECRET: crypto.randomBytes(64).toString('hex'),
    LIVEKIT_URL: livekit.url, LIVEKIT_API_KEY: 'devkey', LIVEKIT_API_SECRET: 'secret-secret-secret-secret-secret',
    ...(opts.nodeEnv ? { NODE_ENV: opts.nodeEnv } : {}),
  };

  const logs = [];
  let child = null;
  let exited = null; // promise of the current child's exit

  function record(chunk) {
    for (const line of stripAnsi(chunk.toString()).split('\n')) {
      if (!line) continue;
      logs.push(line);
      if (opts.echo) process.stderr.write(`[peerwave] ${line}\n`);
    }
    if (logs.length > MAX_LOG_LINES) logs.splice(0, logs.length - MAX_LOG_LINES);
  }

  async function boot() {
    const t0 = Date.now();
    child = spawn(process.execPath, ['--require', preload, 'server.js'], { cwd: serverDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', record);
    child.stderr.on('data', record);
    const c = child;
    exited = new Promise((r) => c.once('exit', (code, signal) => r({ code, signal })));
    let dead = null;
    exited.then((e) => { dead = e; });
    // Listening is not enough: PeerWave mounts its /api routes lazily, so probe a real route.
    const deadline = Date.now() + (opts.bootTimeoutMs ?? 60000);
    for (;;) {
      if (dead) throw new Error(`PeerWave exited during boot (${JSON.stringify(dead)}):\n${logs.slice(-30).join('\n')}`);
      if (Date.now() > deadline) throw new Error(`PeerWave did not answer within the boot timeout:\n${logs.slice(-30).join('\n')}`);
      try {
        const r = await fetch(`${url}/server_config.json`);
        if (r.ok) break;
      } catch { /* not listening yet */ }
      await new Promise((r) => setTimeout(r, 100));
    }
    return Date.now() - t0;
  }

  async function kill() {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM'); // PeerWave's SIGTERM handler exits at once
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  let db = null;
  try {
    const bootMs = await boot();
    db = openDb(dbPath);

    // ---- seed: meeting owner, meeting (allow_external=1 with the invitation token PeerWave's own
    // createMeeting stores in meetings.invitation_token) ----
    const now = new Date();
    const owner = await insertUser(db, { displayName: 'Meeting Owner' });
    const meetingId = `mtg_${crypto.randomBytes(6).toString('hex')}`;
    const invitationToken = crypto.randomUUID().replace(/-/g, '');
    await db.run(`INSERT INTO meetings (meeting_id, title, description, created_by, start_time, end_time,
        is_instant_call, allow_external, invitation_token, invited_participants, voice_only, mute_on_join, created_at, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, 0, 1, ?, '[]', 0, 0, ?, ?)`,
    [meetingId, opts.meetingTitle ?? 'Harness meeting', 'seeded by www/peerwave/server.js', owner.userId,
      sqlTime(new Date(now - 10 * 60e3)), sqlTime(new Date(+now + 6 * 3600e3)), invitationToken, sqlTime(now), sqlTime(now)]);

    const harnessIp = clientIp();
    const instance = {
      url, port, meetingId, invitationToken, owner, dbPath, runDir, bootMs,
      livekit: { url: livekit.url, requests: livekit.requests, setParticipants: livekit.setParticipants },
      logs,
      /** Adds a user (if new) and one device with its public Signal keys, the way PeerWave stores them. */
      seedDevice: (device) => seedDevice(db, device),
      /** Raw SQL against PeerWave's DB (tests may inspect what PeerWave stored). */
      query: (sql, params) => db.all(sql, params),
      /** PeerWave's unauthenticated admit route (P2), as a participant's client calls it. */
      async admit(sessionId, admittedBy = owner.userId) {
        const r = await fetch(`${url}/api/meetings/${encodeURIComponent(meetingId)}/external/${encodeURIComponent(sessionId)}/admit`, {
          method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': harnessIp },
          body: JSON.stringify({ admitted_by: admittedBy }),
        });
        const body = await r.json().catch(() => null);
        if (!r.ok) throw Object.assign(new Error(`admit: HTTP ${r.status} ${JSON.stringify(body)}`), { status: r.status, body });
        return body;
      },
      /** Kill and boot again on the same port and DB. Guest sessions (in-memory SQLite) are lost. */
      async restart() {
        await kill();
        instance.bootMs = await boot();
        return instance.bootMs;
      },
      async stop({ keep = false } = {}) {
        await kill();
        await db?.close();
        await livekit.close();
        if (!keep) fs.rmSync(runDir, { recursive: true, force: true });
      },
    };
    return instance;
  } catch (e) {
    await kill();
    await db?.close();
    await livekit.close();
    fs.rmSync(runDir, { recursive: true, force: true });
    throw e;
  }
}

async function insertUser(db, { userId = crypto.randomUUID(), email, displayName } = {}) {
  const t = sqlTime();
  email ??= `${userId}@peerwave.test`;
  displayName ??= `User ${userId.slice(0, 8)}`;
  await db.run(`INSERT INTO Users (uuid, email, verified, displayName, active, createdAt, updatedAt)
    VALUES (?, ?, 1, ?, 1, ?, ?)`, [userId, email, displayName, t, t]);
  return { userId, email, displayName };
}

/**
 * @param {{ userId: string, email?: string, displayName?: string, deviceId: number,
 *   identityKey: Uint8Array, registrationId: number,
 *   signedPreKey: { id: number, publicKey: Uint8Array, signature: Uint8Array },
 *   preKeys: { id: number, publicKey: Uint8Array }[] }} d  keys as 33-byte serialized public keys
 * @returns {Promise<{ userId, email, displayName, clientId, deviceId }>}
 */
async function seedDevice(db, d) {
  const [existing] = await db.all('SELECT uuid, email, displayName FROM Users WHERE uuid = ?', [d.userId]);
  const user = existing
    ? { userId: existing.uuid, email: existing.email, displayName: existing.displayName }
    : await insertUser(db, d);
  const clientId = crypto.randomUUID();
  const t = sqlTime();
  await db.run('BEGIN IMMEDIATE');
  try {
    // PeerWave stores base64 of the 33-byte serialized keys (client/lib pre_key_store.dart,
    // server.js signalIdentity) and the registration id as TEXT.
    await db.run(`INSERT INTO Clients (owner, clientid, device_id, public_key, registration_id, browser, createdAt, updatedAt)
      VALUES (?, ?, ?, ?, ?, 'www/peerwave participant', ?, ?)`,
    [user.userId, clientId, d.deviceId, b64(d.identityKey), String(d.registrationId), t, t]);
    await db.run(`INSERT INTO SignalSignedPreKeys (client, owner, signed_prekey_id, signed_prekey_data, signed_prekey_signature, createdAt, updatedAt)
      VALUES (?, ?, ?, ?, ?, ?, ?)`,
    [clientId, user.userId, d.signedPreKey.id, b64(d.signedPreKey.publicKey), b64(d.signedPreKey.signature), t, t]);
    for (const pk of d.preKeys) {
      await db.run(`INSERT INTO SignalPreKeys (client, owner, prekey_id, prekey_data, createdAt, updatedAt) VALUES (?, ?, ?, ?, ?, ?)`,
        [clientId, user.userId, pk.id, b64(pk.publicKey), t, t]);
    }
    await db.run('COMMIT');
  } catch (e) {
    await db.run('ROLLBACK').catch(() => {});
    throw e;
  }
  return { ...user, clientId, deviceId: d.deviceId };
}
