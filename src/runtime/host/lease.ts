// A host's placement lease: registered once, renewed several times per TTL, and given up by the
// host itself (self-fencing) before placement could grant its actors to another host.
import { lastReading } from '../util/clock.ts';
import type { HostInfo, Placement } from '../placement/protocol.ts';
import type { Logger } from '../util/log.ts';

/** Renew this many times per lease; fence when the last good renewal is this close (fraction of TTL) to running out. */
const RENEWALS_PER_TTL = 3;
const FENCE_MARGIN = 0.2;

export interface LeaseOptions {
  placement: Placement;
  info: () => HostInfo;
  load: () => number;
  /**
   * Called when the lease is (about to be) lost: every activation must stop now. `expired`: the
   * lease may already be gone (the host was frozen, or placement forgot it), so the actors may
   * already live elsewhere and must not even run their `onDeactivate`.
   */
  fence: (expired: boolean) => Promise<void>;
  log: Logger;
}

export class HostLease {
  readonly #opts: LeaseOptions;
  #ttlMs = 0;
  /** Certainly valid until: measured from when the last good renewal was *sent*. */
  #validUntil = 0;
  #fenced = false;
  #timer: NodeJS.Timeout | undefined;
  /** Fires at the fencing point unless a renewal moves it: fencing must not wait for a slow renewal to fail. */
  #fenceTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  /**
   * Positions placement granted to this host with an epoch above both of these may be taken from
   * a gateway's first call without claiming them (`acceptsGrant`). The floor is the newest epoch
   * placement had granted when this registration began (none accepted until it is known: after a
   * new registration, grants made to the host's former one are void); `#released` the newest epoch
   * this host gave back (a call carrying the grant of a released position must claim again).
   */
  #grantFloor = Infinity;
  #released = 0;
  #registrations = 0;

  constructor(opts: LeaseOptions) {
    this.#opts = opts;
  }

  /** False while fenced: the host must not start activations. */
  // The task's clock reading (util/clock.ts): for a call, when its frame came in, so stale by at
  // most that frame's handling, far below the fencing margin.
  get valid(): boolean {
    return !this.#fenced && lastReading() < this.#validUntil - this.#ttlMs * FENCE_MARGIN;
  }

  /** Whether a position placement granted this host with `epoch` is still certainly the host's own (see `#grantFloor`). */
  acceptsGrant(epoch: number): boolean {
    return epoch > this.#grantFloor && epoch > this.#released && this.valid;
  }

  /** Told before the host gives a position back: a grant of it that arrives later must be claimed again. */
  releasing(epoch: number): void {
    if (epoch > this.#released) this.#released = epoch;
  }

  async start(): Promise<void> {
    await this.#register();
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#fenceTimer);
  }

  /** The lease is good until `validUntil`: arm the fence for the margin before it. */
  #extend(validUntil: number): void {
    this.#validUntil = validUntil;
    clearTimeout(this.#fenceTimer);
    if (this.#stopped) return;
    const fenceAt = validUntil - this.#ttlMs * FENCE_MARGIN;
    this.#fenceTimer = setTimeout(() => {
      if (this.#fenced || this.#stopped) return;
      this.#opts.log.warn('placement lease about to expire without a renewal; deactivating all actors until placement answers again');
      // Late (the process was frozen past its lease)? Then stop without running anything more.
      void this.#fenceNow(Date.now() >= this.#validUntil);
    }, Math.max(0, fenceAt - Date.now()));
    this.#fenceTimer.unref();
  }

  async #register(): Promise<void> {
    const registration = ++this.#registrations;
    this.#grantFloor = Infinity;
    const sentAt = Date.now();
    this.#ttlMs = await this.#opts.placement.register(this.#opts.info());
    this.#fenced = false;
    this.#extend(sentAt + this.#ttlMs);
    void this.#learnGrantFloor(registration);
  }

  /** Asks placement for its newest epoch now that this registration exists (placement that records no grants has none). */
  async #learnGrantFloor(registration: number): Promise<void> {
    const placement = this.#opts.placement;
    if (placement.epochNow === undefined) return;
    try {
      const floor = await placement.epochNow();
      if (registration === this.#registrations) this.#grantFloor = floor;
    } catch (err) {
      // Without it the host claims every position, as with Consul: slower, never wrong.
      this.#opts.log.warn(`could not ask placement for its newest epoch: ${(err as Error).message}`);
    }
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#renew(), Math.max(50, Math.floor(this.#ttlMs / RENEWALS_PER_TTL)));
  }

  async #renew(): Promise<void> {
    const sentAt = Date.now();
    try {
      if (await this.#opts.placement.renew(this.#opts.info().id, this.#opts.load())) {
        this.#extend(sentAt + this.#ttlMs);
        if (this.#fenced) {
          this.#fenced = false;
          this.#opts.log.info('placement lease renewed; taking calls again');
        }
      } else {
        // Placement forgot us (it restarted, or our lease ran out): none of our positions are ours any more.
        this.#opts.log.warn('placement no longer knows this host; deactivating all actors and registering again');
        await this.#fenceNow(true);
        await this.#register();
      }
    } catch (err) {
      // The fence timer armed by the last good renewal takes care of the lease running out.
      this.#opts.log.warn(`lease renewal failed: ${(err as Error).message}`);
    } finally {
      this.#schedule();
    }
  }

  async #fenceNow(expired: boolean): Promise<void> {
    this.#fenced = true;
    await this.#opts.fence(expired);
  }
}
