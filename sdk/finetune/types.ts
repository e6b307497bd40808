/**
 * The fine-tuning types under their earlier path: the strategy and result
 * types live in `sdk/types.ts` (below the strategies that use them) and
 * {@linkcode DeviceName} in `sdk/devices/types.ts`.
 *
 * @module
 */
export type * from "../types.ts";
export type { DeviceName } from "../devices/types.ts";
