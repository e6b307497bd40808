/**
 * The names of the devices tensors run on, shared by the device selection
 * and everything that takes a device from its caller (the fine-tuning job,
 * the command lines).
 *
 * @module
 */

/** Where tensors run: `auto` lets `selectDevice` pick the fastest of the machine. */
export type DeviceName = "auto" | "webgpu" | "wasm" | "cpu";
