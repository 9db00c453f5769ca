/**
 * A young-generation collection while the process waits with nothing to do.
 * Loading the CLI leaves Node's young generation nearly full, so its next scavenge
 * otherwise falls on a run's critical path: ~8 ms, measured right after the
 * command's result came back. Only the CLI asks for it (`allowIdleGc`, with gc
 * exposed by bin/pyro.js's --expose-gc): a program that embeds the SDK, even one
 * run with --expose-gc, keeps its garbage collection to itself.
 */
type Gc = (options: { readonly type: "minor" }) => void

let allowed = false

/** The CLI's entry point: this process is pyro's own, and its idle moments are pyro's to use. */
export const allowIdleGc = (): void => {
  allowed = true
}

export const collectYoungGarbage = (): void => {
  const gc = (globalThis as { readonly gc?: Gc }).gc
  if (allowed) gc?.({ type: "minor" })
}
