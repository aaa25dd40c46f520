// The engine benchmark in the browser: our engine (the interop build for the web,
// target/pkg-web-interop) and the TypeScript port, with the operations Node runs
// (bench/engine-ops.js). Official libsignal is a native Node addon; bench/engine.bench.js
// measures it in Node in the same run.
import init, { SignalParty } from '../../target/pkg-web-interop/signal_guest_sdk.js';
import { makeOursPeer } from '../../interop/ours-peer.js';
import { createTsPeer } from '../../interop/peer-ts.js';
import { measureEngine } from '../engine-ops.js';

window.runEngineBench = async (rounds) => {
  await init();
  const OursPeer = makeOursPeer(SignalParty);
  const make = {
    ours: async (n) => new OursPeer(n),
    ts: (n) => createTsPeer({ oneTimePreKeyCount: n }),
  };
  return { ours: await measureEngine(make, 'ours', rounds), ts: await measureEngine(make, 'ts', rounds) };
};
window.benchReady = true;
