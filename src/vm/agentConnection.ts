/** Connecting to a VM's agent through its channel socket, as soon as the VMM has created it. */
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { GuestChannelError } from "./errors.js"
import { type ConnectionOptions, openGuestConnection } from "./protocol/mux.js"
import { connectUnixSocket } from "./transport.js"

/** Retries while the socket does not exist yet or refuses; bound it with a timeout. */
export const connectAgent = (socketPath: string, options: ConnectionOptions = {}) =>
  Effect.gen(function*() {
    const transport = yield* connectUnixSocket(socketPath).pipe(Effect.retry(Schedule.spaced("5 millis")))
    return yield* openGuestConnection(transport, options)
  })

/** `connectAgent`, given up after `timeoutMs` (a VM that is running, or about to). */
export const connectAgentWithin = (socketPath: string, timeoutMs: number) =>
  connectAgent(socketPath).pipe(
    Effect.timeoutFail({
      duration: timeoutMs,
      onTimeout: () =>
        new GuestChannelError({ reason: "Unresponsive", detail: `no answer on ${socketPath} within ${timeoutMs} ms` })
    })
  )
