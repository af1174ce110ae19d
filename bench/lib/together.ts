// Starts several subjects at once; if any fails to start, closes those that did and rethrows.
export interface Closable {
  close(): Promise<void>;
}

export async function startTogether<T extends readonly Closable[]>(starts: { [K in keyof T]: () => Promise<T[K]> }): Promise<T> {
  const settled = await Promise.allSettled(starts.map((s) => s()));
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed !== undefined) {
    for (const s of settled) if (s.status === 'fulfilled') await s.value.close().catch(() => {});
    throw (failed as PromiseRejectedResult).reason;
  }
  return settled.map((s) => (s as PromiseFulfilledResult<Closable>).value) as unknown as T;
}

/** Closes every subject, all at once (they are independent), even if some fail. */
export async function closeAll(subjects: readonly Closable[]): Promise<void> {
  await Promise.all(subjects.map((s) => s.close().catch(() => {})));
}
