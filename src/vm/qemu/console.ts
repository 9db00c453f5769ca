/**
 * The guest's serial console: a file while the VM boots (the kernel's and the
 * agent's lines, the tail of which goes into boot errors), then, once the VM
 * is attached and before anything of the environment's runs, a ring of
 * CONSOLE_RING_BYTES in QEMU's memory. Whatever the guest writes there
 * afterwards (a root process can write /dev/ttyS0 without end) costs the
 * host a fixed 64 KiB, never disk.
 */
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import { connectQmp } from "./qmp.js"

export const CONSOLE_CHARDEV = "console"
export const CONSOLE_RING_BYTES = 64 * 1024
const QMP_TIMEOUT_MS = 5_000

/** Swap the console's file for the ring (QMP chardev-change; the UART keeps its state). */
export const capConsole = (qmpSocket: string) =>
  Effect.scoped(Effect.gen(function*() {
    const qmp = yield* connectQmp(qmpSocket, QMP_TIMEOUT_MS)
    yield* qmp.execute("chardev-change", {
      id: CONSOLE_CHARDEV,
      backend: { type: "ringbuf", data: { size: CONSOLE_RING_BYTES } }
    })
  }))

/**
 * The last `bytes` the guest wrote to the ring (QMP ringbuf-read; empty if QEMU cannot
 * say): what a failure after the swap reports, the file having stopped before it.
 */
export const ringTail = (qmpSocket: string, bytes: number) =>
  Effect.scoped(Effect.gen(function*() {
    const qmp = yield* connectQmp(qmpSocket, QMP_TIMEOUT_MS)
    const text = yield* qmp.execute("ringbuf-read", { device: CONSOLE_CHARDEV, size: bytes, format: "utf8" })
    return typeof text === "string" ? text : ""
  })).pipe(Effect.orElseSucceed(() => ""))

/** The last `bytes` of the console file, reading only those. */
export const consoleTail = (path: string, bytes: number) =>
  Effect.sync(() => {
    let fd: number | undefined
    try {
      fd = Fs.openSync(path, "r")
      const size = Fs.fstatSync(fd).size
      const length = Math.min(size, bytes)
      const buf = Buffer.alloc(length)
      Fs.readSync(fd, buf, 0, length, size - length)
      return buf.toString("utf8")
    } catch {
      return ""
    } finally {
      if (fd !== undefined) Fs.closeSync(fd)
    }
  })
