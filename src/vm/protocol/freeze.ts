/**
 * FREEZE and THAW (generation 4; docs/guest-protocol.md §15): the guest's
 * scratch filesystem synced and frozen while the host copies-on-write its disk,
 * so a snapshot is the state of a clean filesystem. The agent thaws by itself
 * when the asking connection ends or the timeout passes, so a host that dies
 * between the two never leaves the guest's writers blocked.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { FieldKey, GENERATION_FREEZE, MAX_FREEZE_MS, MessageType } from "./constants.js"
import type { GuestChannelError, GuestRequestFailed } from "../errors.js"
import { control } from "./messages.js"
import { type GuestConnection, requireGeneration } from "./mux.js"

/**
 * The scratch filesystem frozen for as long as the scope is open (at most
 * `timeoutMs`, after which the guest thaws it anyway).
 */
export const frozenScratch = (connection: GuestConnection, timeoutMs = 10_000): Effect.Effect<void, GuestChannelError | GuestRequestFailed, Scope.Scope> =>
  // Not acquireRelease: its acquire is uninterruptible, and a request's wait races the
  // connection's death, a race that could then never be decided. A freeze whose reply
  // is cut short by an interruption is thawed by the agent at its timeout.
  Effect.uninterruptibleMask((restore) =>
    Effect.zipRight(
      restore(Effect.zipRight(
        requireGeneration(connection, GENERATION_FREEZE, "a consistent snapshot"),
        connection.call("freeze", (stream) =>
          control(MessageType.FREEZE, stream, [[FieldKey.TIMEOUT_MS, Math.min(timeoutMs, MAX_FREEZE_MS)]]))
      )),
      // A thaw that cannot be sent (the connection broke) happens in the guest anyway.
      Effect.addFinalizer(() =>
        Effect.ignore(Effect.interruptible(connection.call("thaw", (stream) => control(MessageType.THAW, stream, []))))
      )
    )
  )
