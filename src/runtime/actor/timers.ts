// Actor timers: each tick is a turn through the mailbox, scheduled against the timer's start so
// that drift never accumulates, skipped (not queued up) while the previous tick still waits, and
// never counted as activity, so a timer alone does not keep an actor alive.
import type { Activation } from './activation.ts';
import { newChainId } from './call-context.ts';

export interface TimerHandle {
  /** Stops the timer; a tick already running finishes. */
  dispose(): void;
  readonly active: boolean;
}

export function startTimer(activation: Activation, callback: () => unknown, dueMs: number, periodMs: number, onError: (err: unknown) => void): TimerHandle {
  if (!(dueMs >= 0) || !(periodMs >= 0)) throw new RangeError(`timer due (${dueMs}) and period (${periodMs}) must be non-negative numbers of ms`);
  const origin = performance.now() + dueMs;
  let ticks = 0;
  let timer: NodeJS.Timeout | undefined;
  let pending = false;
  let active = true;

  const schedule = () => {
    // The n-th tick is due at origin + n·period, whatever the previous ticks cost.
    let due = origin + ticks * periodMs;
    const now = performance.now();
    if (due < now - periodMs && periodMs > 0) {
      // Fell more than a period behind (a long turn, a busy loop): skip the missed ticks.
      ticks = Math.ceil((now - origin) / periodMs);
      due = origin + ticks * periodMs;
    }
    timer = setTimeout(fire, Math.max(0, due - now));
    timer.unref();
  };

  const fire = () => {
    if (!active) return;
    ticks++;
    if (!pending) {
      pending = true;
      const chain = newChainId();
      activation
        .enqueue(callback, [], { chain, deadline: 0, identity: activation.identity, parent: undefined, origin: undefined }, false, false)
        .catch((err: unknown) => {
          if (active) onError(err);
        })
        .finally(() => (pending = false));
    }
    if (periodMs > 0 && active) schedule();
    else dispose();
  };

  const dispose = () => {
    if (!active) return;
    active = false;
    clearTimeout(timer);
    undispose();
  };
  const undispose = activation.onDispose(dispose);
  schedule();
  return {
    dispose,
    get active() {
      return active;
    },
  };
}
