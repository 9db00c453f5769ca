/**
 * A young-generation collection now, while the process waits with nothing to do.
 * Loading the CLI leaves Node's young generation nearly full, so its next scavenge
 * otherwise falls on a run's critical path: ~8 ms, measured right after the
 * command's result came back. bin/pyro.js starts Node with --expose-gc for this;
 * where gc is not exposed (the SDK in someone else's process) this does nothing.
 */
type Gc = (options: { readonly type: "minor" }) => void

export const collectYoungGarbage = (): void => {
  const gc = (globalThis as { readonly gc?: Gc }).gc
  gc?.({ type: "minor" })
}
