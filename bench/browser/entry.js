// The engine benchmark in the browser: our engine (the interop build for the web,
// target/pkg-web-interop) and the TypeScript port, with the operations Node runs
// (bench/engine-ops.js). Official libsignal is a native Node addon; bench/engine.bench.js
// measures it in Node in the same run.
import init, { SignalParty } from '../../target/pkg-web-interop/signal_guest_sdk.js';
import { makeOursPeer } from '../../interop/ours-peer.js';
import { createTsPeer } from '../../interop/peer-ts.js';
import { measureEngine, measurePrimitives, oursPrimitives, V4_OPERATIONS } from '../engine-ops.js';

window.runEngineBench = async (rounds) => {
  await init();
  const OursPeer = makeOursPeer(SignalParty);
  const make = {
    ours: async (n) => new OursPeer(n, false),
    ts: (n) => createTsPeer({ oneTimePreKeyCount: n }),
  };
  const v4 = { ours: async (n) => new OursPeer(n, true) };
  return {
    ours: await measureEngine(make, 'ours', rounds),
    ts: await measureEngine(make, 'ts', rounds),
    oursV4: await measureEngine(v4, 'ours', rounds, V4_OPERATIONS),
    primitives: await measurePrimitives(oursPrimitives(SignalParty), rounds),
  };
};
window.benchReady = true;
