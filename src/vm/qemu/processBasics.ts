/**
 * What handling a QEMU process needs that loads nothing else: shared by
 * src/vm/qemu/process.ts and the head start (src/entrypoints/headStart.ts),
 * which runs before the CLI and must not load Effect.
 */

/** The last bytes of QEMU's stderr a failure reports. */
export const STDERR_TAIL_BYTES = 8 * 1024

/** How long a release waits for a QEMU it killed to be gone. */
export const EXIT_WAIT_MS = 5_000

/** `signal` to a process group (each QEMU leads its own); one already gone is no error. */
export const killGroup = (pid: number, signal: NodeJS.Signals) => {
  try {
    process.kill(-pid, signal)
  } catch {
    // ESRCH: already gone.
  }
}
