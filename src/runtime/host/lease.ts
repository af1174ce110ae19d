// A host's placement lease: registered once, renewed several times per TTL, and given up by the
// host itself (self-fencing) before placement could grant its actors to another host.
import type { HostInfo, Placement } from '../placement/protocol.ts';
import type { Logger } from '../util/log.ts';

/** Renew this many times per lease; fence when the last good renewal is this close (fraction of TTL) to running out. */
const RENEWALS_PER_TTL = 3;
const FENCE_MARGIN = 0.2;

export interface LeaseOptions {
  placement: Placement;
  info: () => HostInfo;
  load: () => number;
  /** Called when the lease is (about to be) lost: every activation must stop now. */
  fence: () => Promise<void>;
  log: Logger;
}

export class HostLease {
  readonly #opts: LeaseOptions;
  #ttlMs = 0;
  /** Certainly valid until: measured from when the last good renewal was *sent*. */
  #validUntil = 0;
  #fenced = false;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(opts: LeaseOptions) {
    this.#opts = opts;
  }

  /** False while fenced: the host must not start activations. */
  get valid(): boolean {
    return !this.#fenced && Date.now() < this.#validUntil - this.#ttlMs * FENCE_MARGIN;
  }

  async start(): Promise<void> {
    await this.#register();
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  async #register(): Promise<void> {
    const sentAt = Date.now();
    this.#ttlMs = await this.#opts.placement.register(this.#opts.info());
    this.#validUntil = sentAt + this.#ttlMs;
    this.#fenced = false;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#renew(), Math.max(50, Math.floor(this.#ttlMs / RENEWALS_PER_TTL)));
  }

  async #renew(): Promise<void> {
    const sentAt = Date.now();
    try {
      if (await this.#opts.placement.renew(this.#opts.info().id, this.#opts.load())) {
        this.#validUntil = sentAt + this.#ttlMs;
        if (this.#fenced) {
          this.#fenced = false;
          this.#opts.log.info('placement lease renewed; taking calls again');
        }
      } else {
        // Placement forgot us (it restarted, or our lease ran out): none of our positions are ours any more.
        this.#opts.log.warn('placement no longer knows this host; deactivating all actors and registering again');
        await this.#fenceNow();
        await this.#register();
      }
    } catch (err) {
      this.#opts.log.warn(`lease renewal failed: ${(err as Error).message}`);
      if (!this.#fenced && Date.now() >= this.#validUntil - this.#ttlMs * FENCE_MARGIN) {
        this.#opts.log.warn('lease about to expire; deactivating all actors until placement answers again');
        await this.#fenceNow();
      }
    } finally {
      this.#schedule();
    }
  }

  async #fenceNow(): Promise<void> {
    this.#fenced = true;
    await this.#opts.fence();
  }
}
