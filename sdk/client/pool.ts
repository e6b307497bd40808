/**
 * A bounded pool of concurrent jobs, for downloads, reads and uploads.
 *
 * @module
 */

/**
 * Runs `run` on every item, at most `limit` at once. After a failure no new
 * item starts; the ones running finish (a download keeps its partial), then
 * the first failure is thrown.
 *
 * @param items the jobs' inputs
 * @param limit how many run at once
 * @param run the job
 * @throws the first failure, once the running jobs have finished
 */
export async function pool<T>(
  items: T[],
  limit: number,
  run: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await run(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
}
