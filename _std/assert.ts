/**
 * The subset of `@std/assert` this project uses, built on Deno's built-in
 * `node:assert` because JSR cannot be reached from our machines. Point the
 * `@std/assert` entry of deno.json at `jsr:@std/assert@^1` to use the real one.
 *
 * @module
 */
import nodeAssert from "node:assert";

/** Thrown when an assertion fails. */
export class AssertionError extends Error {
  /** @param message what failed */
  constructor(message: string) {
    super(message);
    this.name = "AssertionError";
  }
}

/** Throws unless `ok`: with the caller's `msg`, else the default text `detail` makes. */
function check(ok: boolean, msg: string | undefined, detail: () => string): void {
  if (!ok) throw new AssertionError(msg ?? detail());
}

function rethrow(fn: () => void, msg?: string): void {
  try {
    fn();
  } catch (e) {
    throw new AssertionError(
      msg ?? (e instanceof Error ? e.message : String(e)),
    );
  }
}

/** Asserts that `expr` is truthy. */
export function assert(
  expr: unknown,
  msg = "Expected expression to be truthy",
): asserts expr {
  if (!expr) throw new AssertionError(msg);
}

/** Asserts deep equality of `actual` and `expected`. */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  rethrow(() => nodeAssert.deepStrictEqual(actual, expected), msg);
}

/** Asserts deep inequality of `actual` and `expected`. */
export function assertNotEquals<T>(actual: T, expected: T, msg?: string): void {
  rethrow(() => nodeAssert.notDeepStrictEqual(actual, expected), msg);
}

/** Asserts `actual === expected`. */
export function assertStrictEquals<T>(
  actual: unknown,
  expected: T,
  msg?: string,
): asserts actual is T {
  rethrow(() => nodeAssert.strictEqual(actual, expected), msg);
}

/** Asserts that `actual` is neither `null` nor `undefined`. */
export function assertExists<T>(
  actual: T,
  msg?: string,
): asserts actual is NonNullable<T> {
  check(
    actual !== null && actual !== undefined,
    msg,
    () => `Expected actual: "${actual}" to not be null or undefined`,
  );
}

/** Asserts `|actual - expected| <= tolerance`. */
export function assertAlmostEquals(
  actual: number,
  expected: number,
  tolerance = 1e-7,
  msg?: string,
): void {
  if (Object.is(actual, expected)) return;
  const delta = Math.abs(expected - actual);
  check(
    delta <= tolerance,
    msg,
    () =>
      `Expected actual: "${actual}" to be close to "${expected}": delta "${delta}" is greater than "${tolerance}"`,
  );
}

/** Asserts that `actual` contains `expected`. */
export function assertStringIncludes(
  actual: string,
  expected: string,
  msg?: string,
): void {
  check(
    actual.includes(expected),
    msg,
    () => `Expected actual: "${actual}" to contain: "${expected}"`,
  );
}

/** Asserts that `actual` matches `expected`. */
export function assertMatch(
  actual: string,
  expected: RegExp,
  msg?: string,
): void {
  check(expected.test(actual), msg, () => `Expected actual: "${actual}" to match: "${expected}"`);
}

/** Asserts `actual > expected`. */
export function assertGreater<T>(actual: T, expected: T, msg?: string): void {
  check(actual > expected, msg, () => `Expect ${actual} > ${expected}`);
}

/** Asserts `actual < expected`. */
export function assertLess<T>(actual: T, expected: T, msg?: string): void {
  check(actual < expected, msg, () => `Expect ${actual} < ${expected}`);
}

/** Asserts that `actual` is an instance of `type`. */
export function assertInstanceOf<
  T extends abstract new (...args: never[]) => unknown,
>(
  actual: unknown,
  type: T,
  msg?: string,
): asserts actual is InstanceType<T> {
  check(actual instanceof type, msg, () => `Expected object to be an instance of "${type.name}"`);
}

type ErrorClass<E extends Error> = abstract new (...args: never[]) => E;

function checkError<E extends Error>(
  e: unknown,
  ErrorClass?: ErrorClass<E>,
  msgIncludes?: string,
): E {
  if (ErrorClass && !(e instanceof ErrorClass)) {
    throw new AssertionError(
      `Expected error to be instance of "${ErrorClass.name}", but was "${
        (e as Error)?.constructor?.name
      }": ${e}`,
    );
  }
  if (
    msgIncludes !== undefined &&
    !(e instanceof Error && e.message.includes(msgIncludes))
  ) {
    throw new AssertionError(
      `Expected error message to include "${msgIncludes}", but got "${
        e instanceof Error ? e.message : e
      }"`,
    );
  }
  return e as E;
}

/** Asserts that `fn` throws, optionally an instance of `ErrorClass` whose message includes `msgIncludes`. */
export function assertThrows<E extends Error = Error>(
  fn: () => unknown,
  ErrorClass?: ErrorClass<E>,
  msgIncludes?: string,
): E {
  try {
    fn();
  } catch (e) {
    return checkError(e, ErrorClass, msgIncludes);
  }
  throw new AssertionError("Expected function to throw");
}

/** Asserts that `fn` rejects, optionally with an instance of `ErrorClass` whose message includes `msgIncludes`. */
export async function assertRejects<E extends Error = Error>(
  fn: () => PromiseLike<unknown>,
  ErrorClass?: ErrorClass<E>,
  msgIncludes?: string,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    return checkError(e, ErrorClass, msgIncludes);
  }
  throw new AssertionError("Expected function to reject");
}

/** Fails unconditionally. */
export function fail(msg?: string): never {
  throw new AssertionError(`Failed assertion${msg ? `: ${msg}` : "."}`);
}
