/**
 * Putting a workspace's secrets in its guest, after each boot of its VM:
 * `/proc/1/exe secrets /run/pyro-secrets` (guest/agent/secrets.c) makes a
 * tmpfs there (never the guest's disk, which is a file on the host) and writes
 * one file per secret, mode 0600.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { BootError } from "../../contract/errors.js"
import { runCommand } from "../../vm/execCommand.js"
import { GENERATION_SECRETS } from "../../vm/protocol/constants.js"
import { type GuestConnection, requireGeneration } from "../../vm/protocol/mux.js"
import type { StoredSecret } from "./store.js"

export const GUEST_SECRETS_DIR = "/run/pyro-secrets"

export const provideSecrets = (connection: GuestConnection, secrets: ReadonlyArray<StoredSecret>) =>
  Effect.gen(function*() {
    if (secrets.length === 0) return
    yield* requireGeneration(connection, GENERATION_SECRETS, "workspace secrets")
    const input = Buffer.concat(secrets.flatMap((s) => [Buffer.from(`${s.name}\0`), Buffer.from(`${s.value}\0`, "utf8")]))
    const outcome = yield* runCommand(connection, {
      command: ["/proc/1/exe", "secrets", GUEST_SECRETS_DIR],
      cwd: "/",
      timeoutSeconds: 30,
      maxOutputBytes: 4096,
      stdin: Stream.make(new Uint8Array(input))
    })
    if (outcome.exitCode !== 0) {
      const why = new TextDecoder().decode(outcome.stderr.view()).trim().slice(0, 500)
      return yield* new BootError({ stage: "Attach", detail: `the guest could not keep the workspace's secrets: ${why}` })
    }
  })
