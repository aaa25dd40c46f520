// Prejoin page: asks the meeting's participants for the end-to-end encryption key over
// Signal, then prepares an encrypted LiveKit room with it.
// Query string: ?relay=<meeting server>&meeting=<id>&invite=<invitation token>.
import init, { GuestKeyExchange, guestErrorCode, isGuestError } from 'signal-guest-sdk';
import type { GuestErrorCode, GuestEvent } from 'signal-guest-sdk';
import { GuestKeyProvider } from 'signal-guest-sdk/livekit';
import { Room, RoomEvent } from 'livekit-client';
import { io, type Socket } from 'socket.io-client';

const params = new URLSearchParams(location.search);
const baseUrl = params.get('relay') ?? 'http://127.0.0.1:8080';
const meetingId = params.get('meeting') ?? 'demo-meeting';
const invitationToken = params.get('invite') ?? 'demo-invite';

/** What the page shows, readable by scripts and tests. Never holds the key itself. */
interface ExampleStatus {
  state: 'idle' | 'waiting' | 'done' | 'error';
  keyCheckValue?: string;
  errorCode?: GuestErrorCode;
  transcript: string[];
}

declare global {
  interface Window {
    example: ExampleStatus;
  }
}

const status: ExampleStatus = { state: 'idle', transcript: [] };
window.example = status;

function byId<T extends HTMLElement>(id: string, type: { new (): T; prototype: T }): T {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`#${id} is missing from index.html`);
  return element;
}

const form = byId('join-form', HTMLFormElement);
const nameInput = byId('name', HTMLInputElement);
const joinButton = byId('join', HTMLButtonElement);
const leaveButton = byId('leave', HTMLButtonElement);
const statusText = byId('status', HTMLParagraphElement);
const transcriptList = byId('transcript', HTMLOListElement);
const keyBox = byId('key', HTMLParagraphElement);
const checkValueText = byId('check-value', HTMLSpanElement);
const errorBox = byId('error', HTMLParagraphElement);
const errorText = byId('error-text', HTMLSpanElement);
const retryButton = byId('retry', HTMLButtonElement);

function show(text: string): void {
  status.transcript.push(text);
  const item = document.createElement('li');
  item.textContent = text;
  transcriptList.append(item);
  statusText.textContent = text;
}

function showKey(checkValue: string): void {
  status.keyCheckValue = checkValue;
  checkValueText.textContent = checkValue;
  keyBox.hidden = false;
}

function onEvent(event: GuestEvent): void {
  show(event.message);
  // Also after joining: a participant rotating the key sends the new one.
  if (event.type === 'key') showKey(event.keyCheckValue);
}

function explain(code: GuestErrorCode | undefined, message: string): string {
  switch (code) {
    case 'KEY_EXCHANGE_FAILED':
      return 'No participant sent the encryption key.';
    case 'NOT_ADMITTED':
      return 'The host has not let you in yet.';
    case 'REGISTRATION_REJECTED':
      return 'This invitation is not valid (any more).';
    case 'INSECURE_ORIGIN':
      return 'The meeting server must use https.';
    default:
      return message;
  }
}

try {
  await init();
} catch (e) {
  status.state = 'error';
  show(`This browser could not load the encryption module: ${e instanceof Error ? e.message : String(e)}`);
  throw e;
}

// Keeps each key at the index the SDK hands over (ExternalE2EEKeyProvider ignores it, and a
// rotation to a new index would leave the guest with black video).
const keyProvider = new GuestKeyProvider();
let room: Room | undefined;

/** One guest in the meeting; a "Try again" resumes at the step that failed. */
interface Session {
  guest: GuestKeyExchange;
  socket: Socket;
  registered: boolean;
  hasKey: boolean;
}
let session: Session | undefined;

function startSession(displayName: string): Session {
  const socket = io(`${baseUrl}/external`, { autoConnect: false });
  // socket.io reconnects by itself after network loss, not after the server closed it.
  socket.on('disconnect', (reason) => {
    if (reason === 'io server disconnect') socket.connect();
  });
  const guest = new GuestKeyExchange({
    baseUrl,
    meetingId,
    invitationToken,
    displayName,
    socket,
    keyProvider,
    onEvent,
  });
  return { guest, socket, registered: false, hasKey: false };
}

/** Leaving the meeting: wipes the keys and this tab's stored Signal state. */
function endSession(): void {
  session?.guest.leave();
  session?.socket.disconnect();
  session = undefined;
  leaveButton.hidden = true;
}

function prepareRoom(): Room {
  const worker = new Worker(new URL('livekit-client/e2ee-worker', import.meta.url), { type: 'module' });
  // `encryption` encrypts media and data-channel messages (the deprecated `e2ee` leaves data
  // in the clear on the SFU).
  const created = new Room({ encryption: { keyProvider, worker } });
  // No error object comes with it when the worker script failed to load.
  created.on(RoomEvent.EncryptionError, (error?: Error) => {
    show(`Encryption error: ${error?.message ?? 'the encryption worker failed'}`);
  });
  return created;
}

async function join(): Promise<void> {
  status.state = 'waiting';
  delete status.errorCode;
  errorBox.hidden = true;
  joinButton.disabled = true;
  try {
    const current = (session ??= startSession(nameInput.value.trim() || 'Guest'));
    leaveButton.hidden = false;
    const { guest, socket } = current;
    if (!current.registered) {
      const { sessionId } = await guest.register();
      socket.auth = { sessionId };
      socket.connect();
      current.registered = true;
    }
    if (!current.hasKey) {
      // Waits for the socket and for the host to let the guest in.
      const result = await guest.exchangeKey();
      showKey(result.keyCheckValue);
      current.hasKey = true;
      show(`Encryption key ready in ${Math.round(result.elapsedMs)} ms`);
    }
    const token = await guest.fetchLiveKitToken();
    room ??= prepareRoom();
    await room.setE2EEEnabled(true);
    // A real page now joins the call: await room.connect(token.url, token.token).
    show(`Ready to join ${token.roomName} as ${token.identity}`);
    status.state = 'done';
  } catch (e) {
    const code = guestErrorCode(e);
    if (code === 'LEFT') return; // the Leave button was pressed meanwhile
    const retryable = isGuestError(e) && e.retryable;
    const detail = e instanceof Error ? e.message : String(e);
    status.state = 'error';
    if (code !== undefined) status.errorCode = code;
    show(`Failed (${code ?? 'not an SDK error'}): ${detail}`);
    statusText.textContent = 'Unable to join the meeting.';
    const text = explain(code, detail);
    errorText.textContent = retryable ? `${text} Please try again.` : text;
    retryButton.hidden = !retryable;
    errorBox.hidden = false;
    if (!retryable) {
      // The guest is unusable now; asking to join again starts over.
      endSession();
      joinButton.disabled = false;
    }
  }
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  void join();
});
retryButton.addEventListener('click', () => void join());
// Only an explicit leave (this button, or the meeting ending) calls leave().
leaveButton.addEventListener('click', () => {
  endSession();
  void room?.disconnect();
  status.state = 'idle';
  errorBox.hidden = true;
  keyBox.hidden = true;
  show('You left the meeting.');
  joinButton.disabled = false;
});
// A reload is not a leave: pagehide fires on reloads too, and the reloaded page picks up this
// tab's registration (the browser discards sessionStorage when the tab closes).
addEventListener('pagehide', () => {
  void room?.disconnect();
});
joinButton.disabled = false;
