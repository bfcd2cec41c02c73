// Reconnect delays: exponential backoff with full jitter (docs/PROTOCOL.md, close codes 4000–4099).
//
// Pure: the random source is passed in, so the schedule is unit-tested (tests/browser/unit.test.js).
// Full jitter spreads a crowd of clients that lost the same node over the whole window instead of
// having them all return at the same instant.

/** Delay in ms before reconnect attempt `attempt` (0 = first retry). */
export function backoffDelay(attempt, random = Math.random, { baseMs = 500, capMs = 10000 } = {}) {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 16));
  // At least a tenth of the ceiling, so a retry never spins at 0 ms.
  return Math.round(ceiling * (0.1 + 0.9 * random()));
}

/** What a close code asks of the client: "resume", "identify" (session gone), "refresh" (token), or "stop". */
export function closeAction(code) {
  if (code === 4005) return 'identify';
  if (code === 4100) return 'refresh';
  if (code >= 4101 && code <= 4199) return 'stop';
  if (code === 1002 || code === 1009) return 'stop';
  // 1000/1001/1006 (dropped), 4000–4099: reconnect and resume.
  return 'resume';
}
