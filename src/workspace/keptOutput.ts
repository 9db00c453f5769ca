/**
 * A workspace command's whole output, kept in the guest when its result had
 * to leave part of it out: `/run/pyro/commands/<sequence>/{stdout,stderr}`,
 * outside /workspace, where a later workspace_exec (`grep`, `sed -n`, `tail`)
 * can read it. Only what the host held is written (up to PYRO_MAX_OUTPUT_BYTES
 * per stream), and the result's marker says which.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { tarEnd, tarEntry } from "../archive/write.js"
import { type CommandOutcome, type KeptAt, runCommand } from "../vm/execCommand.js"
import type { CappedOutput } from "../vm/output.js"
import type { GuestConnection } from "../vm/protocol/mux.js"
import { guestUntar } from "./import/guestUntar.js"

export const commandOutputDir = (sequence: number) => `/run/pyro/commands/${sequence}`

const KEEP_TIMEOUT_SECONDS = 120

const phrase = (out: CappedOutput, path: string) =>
  out.truncated ? `its first ${out.view().byteLength} bytes are in ${path}` : `all of it is in ${path}`

/** Write each stream longer than `budget` into the guest; where each went, for the result's marker. */
export const keepOutputInGuest = (
  connection: GuestConnection,
  sequence: number,
  outcome: CommandOutcome,
  budget: number
): Effect.Effect<KeptAt> =>
  Effect.gen(function*() {
    const dir = commandOutputDir(sequence)
    const kept: { stdout?: string; stderr?: string } = {}
    for (const name of ["stdout", "stderr"] as const) {
      const out = outcome[name]
      if (out.total <= budget) continue
      const path = `${dir}/${name}`
      const bytes = out.view()
      const archive = [
        tarEntry({ path: name, type: "file", mode: 0o644, size: bytes.byteLength, mtime: Date.now() / 1000, linkname: "" }, bytes),
        tarEnd()
      ]
      const written = yield* runCommand(connection, {
        command: guestUntar(dir),
        cwd: "/",
        timeoutSeconds: KEEP_TIMEOUT_SECONDS,
        maxOutputBytes: 4096,
        stdin: Stream.fromIterable(archive)
      }).pipe(Effect.map((o) => o.exitCode === 0), Effect.orElseSucceed(() => false))
      // A full disk, or a link the guest put on the way, keeps nothing; the marker then names no place.
      if (written) kept[name] = phrase(out, path)
    }
    return kept
  })
