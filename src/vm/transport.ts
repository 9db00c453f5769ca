/**
 * A byte stream to the guest agent. QEMU exposes the virtio-serial port as a
 * unix socket; Firecracker's vsock is a unix socket too (after a CONNECT
 * line), so both fit this one shape.
 */
import * as NodeStream from "@effect/platform-node/NodeStream"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Net from "node:net"
import { GuestChannelError } from "./errors.js"

export interface ByteTransport {
  /** Bytes from the guest, with backpressure; ends when the peer closes. Read once. */
  readonly chunks: Stream.Stream<Uint8Array, GuestChannelError>
  /** Resolves once the bytes are handed to the kernel, so callers feel backpressure. */
  readonly write: (bytes: Uint8Array) => Effect.Effect<void, GuestChannelError>
  /** Drop the connection at once (a guest that stopped reading): pending writes fail, `chunks` ends. */
  readonly close: Effect.Effect<void>
}

const transportError = (detail: string) => (cause: unknown) =>
  new GuestChannelError({ reason: "Transport", detail: `${detail}: ${cause instanceof Error ? cause.message : String(cause)}` })

/** One attempt to connect; fails with the errno (ENOENT, ECONNREFUSED) while the VMM starts. */
export const connectUnixSocket = (path: string): Effect.Effect<ByteTransport, GuestChannelError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<Net.Socket, GuestChannelError>((resume) => {
      const socket = Net.createConnection({ path })
      const onError = (cause: Error) => {
        socket.destroy()
        resume(Effect.fail(transportError(`connect ${path}`)(cause)))
      }
      socket.once("error", onError)
      socket.once("connect", () => {
        socket.off("error", onError)
        socket.setNoDelay?.(true)
        resume(Effect.succeed(socket))
      })
      return Effect.sync(() => socket.destroy())
    }),
    (socket) => Effect.sync(() => socket.destroy())
  ).pipe(Effect.map((socket) => fromSocket(socket)))

const fromSocket = (socket: Net.Socket): ByteTransport => ({
  chunks: NodeStream.fromReadable<GuestChannelError, Uint8Array>(
    () => socket,
    transportError("read"),
    { closeOnDone: false }
  ),
  write: (bytes) =>
    Effect.async<void, GuestChannelError>((resume) => {
      if (socket.destroyed || !socket.writable) {
        resume(Effect.fail(new GuestChannelError({ reason: "Closed", detail: "socket is closed" })))
        return
      }
      socket.write(bytes, (err) => resume(err ? Effect.fail(transportError("write")(err)) : Effect.void))
    }),
  close: Effect.sync(() => socket.destroy())
})
