/**
 * Waits for `promise` at most `ms`: for closing connections, which can wait forever on a client
 * that is still reconnecting to a store that went away. Rejections count as settled.
 */
export async function settleWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
    timer.unref();
  });
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      timedOut,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** How long one connection may take to close before it is dropped. */
export const CLOSE_DEADLINE_MS = 3_000;
