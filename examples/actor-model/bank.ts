// Bank accounts as actors: turns, reentrancy along a call chain, a non-reentrant variant that
// reports the same call pattern as a deadlock, and a user error class that keeps its name.
import { Actor, defineInterface, definePlugin } from 'koala';

const messages = {
  balance: { request: [], response: 'int' },
  deposit: { request: [{ name: 'amount', type: 'int' }], response: 'int' },
  transfer: { request: [{ name: 'to', type: 'string' }, { name: 'amount', type: 'int' }], response: 'int' },
  receive: { request: [{ name: 'amount', type: 'int' }, { name: 'from', type: 'string' }], response: 'int' },
} as const;

export const IAccount = defineInterface({ protocol: 'IAccount', messages });

/** The same account with reentrancy turned off. */
export const IStrictAccount = defineInterface({ protocol: 'IStrictAccount', messages }, { reentrant: false });

/** No account holds more than this: what a transfer brings beyond it goes back to the sender. */
export const LIMIT = 1000;

export class InsufficientFunds extends Error {
  override name = 'InsufficientFunds';
}

class Account extends Actor {
  /** The interface through which this account reaches other accounts. */
  protected peers: typeof IAccount | typeof IStrictAccount = IAccount;
  #balance = 0;

  balance(): number {
    return this.#balance;
  }

  deposit(amount: number): number {
    this.#balance += amount;
    return this.#balance;
  }

  async transfer(to: string, amount: number): Promise<number> {
    if (amount > this.#balance) throw new InsufficientFunds(`${this.identity} has ${this.#balance}, cannot transfer ${amount}`);
    await this.getProxy(this.peers, to).receive(amount, this.id);
    // No other caller got in during the await; only this chain's own calls could (the refund in
    // receive() below), and they only add to the balance. So the check above still holds.
    this.#balance -= amount;
    return this.#balance;
  }

  async receive(amount: number, from: string): Promise<number> {
    if (amount <= 0) throw new RangeError(`amount must be positive, got ${amount}`);
    const kept = Math.min(amount, LIMIT - this.#balance);
    // The sender is still inside transfer(), awaiting this very call. The refund travels on the
    // same call chain, so it enters the sender at once: A → B → A.
    if (kept < amount) await this.getProxy(this.peers, from).deposit(amount - kept);
    this.#balance += kept;
    return kept;
  }
}

class StrictAccount extends Account {
  protected override peers = IStrictAccount;
}

export default [
  definePlugin({ interface: IAccount, implementation: Account }),
  definePlugin({ interface: IStrictAccount, implementation: StrictAccount }),
];
