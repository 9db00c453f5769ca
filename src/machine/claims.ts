/**
 * Boot claims: while a process boots a long-lived machine (a workspace, a stopped
 * VM started again), and for the whole of a one-shot run, `boot-claim.json` in the
 * machine's directory names that process, so the active-VM count includes it:
 * written under the state lock right after checking the limit, removed once the
 * record names the running VMM, the boot failed, or the run ended.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { isAlive, selfIdentity } from "../vm/procfs.js"
import { ProcessId } from "./record.js"

const BOOT_CLAIM = "boot-claim.json"
const decodeClaim = Schema.decodeUnknownOption(Schema.parseJson(ProcessId))

export const writeBootClaim = (dir: string) =>
  Effect.sync(() => Fs.writeFileSync(Path.join(dir, BOOT_CLAIM), JSON.stringify(selfIdentity()), { mode: 0o600 }))

export const removeBootClaim = (dir: string) => Effect.sync(() => Fs.rmSync(Path.join(dir, BOOT_CLAIM), { force: true }))

/** A claim whose process is gone (killed mid-boot) holds nothing. */
export const bootClaimHeld = (dir: string): boolean => {
  try {
    return Option.match(decodeClaim(Fs.readFileSync(Path.join(dir, BOOT_CLAIM), "utf8")), {
      onNone: () => false,
      onSome: isAlive
    })
  } catch {
    return false
  }
}
