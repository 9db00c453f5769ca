/**
 * The guest's disk synced (the agent runs `sync()`): what a call wrote is on
 * the host's disk image before the call answers, so it survives QEMU being
 * killed right after. A refusal is logged, not raised: the write happened.
 */
import * as Effect from "effect/Effect"
import type { GuestConnection } from "../vm/protocol/mux.js"

export const syncGuestDisk = (connection: GuestConnection) =>
  connection.sync.pipe(
    Effect.catchTag("GuestRequestFailed", (e) => Effect.logWarning(`workspace sync failed: ${e.message}`))
  )
