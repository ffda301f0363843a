// Every workflow the worker registers. One file per business process.
export { nightlySync } from './nightly-sync.js';
export { breachContainment } from './breach-containment.js';
