/**
 * A process that takes a pyro lock again and again (test/unit/locks.test.ts
 * kills, stops and replaces such processes while they wait). In the critical
 * section it claims a marker file; finding the marker of a holder that is
 * still alive means two holders at once, which it records as a violation.
 *
 * argv: STATE_DIR LOCK_NAME WORK_DIR MODE, MODE = "loop" or "hold" (take the
 * lock once, print "held", keep it until stdin closes).
 */
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { withLock } from "../../src/host/lock.js"
import { isAlive, selfIdentity } from "../../src/vm/procfs.js"

const [stateDir, name, work, mode] = process.argv.slice(2) as [string, string, string, string]
const marker = Path.join(work, "inside")
const me = selfIdentity()

const critical = Effect.gen(function*() {
  try {
    Fs.writeFileSync(marker, JSON.stringify(me), { flag: "wx" })
  } catch {
    let other: { pid: number; startTime: number } | undefined
    try {
      other = JSON.parse(Fs.readFileSync(marker, "utf8"))
    } catch {
      other = undefined
    }
    // A marker left by a holder that was killed inside is fine; one of a live holder is not.
    if (other && isAlive(other)) {
      let stat = ""
      try {
        stat = Fs.readFileSync(`/proc/${other.pid}/stat`, "utf8").split(") ")[1]?.split(" ").slice(0, 7).join(" ") ?? ""
      } catch {
        stat = "gone"
      }
      Fs.appendFileSync(Path.join(work, "violations"), `${me.pid} with ${other.pid} (${stat})\n`)
    }
    Fs.writeFileSync(marker, JSON.stringify(me))
  }
  Fs.appendFileSync(Path.join(work, "entries"), `${me.pid}\n`)
  yield* Effect.sleep(Math.floor(Math.random() * 15))
  Fs.rmSync(marker, { force: true })
})

const hold = Effect.gen(function*() {
  process.stdout.write("held\n")
  yield* Effect.async<void>((resume) => {
    process.stdin.on("end", () => resume(Effect.void))
    process.stdin.resume()
  })
  Fs.appendFileSync(Path.join(work, "entries"), `${me.pid} released\n`)
})

const program = mode === "hold"
  ? withLock(stateDir, name, hold)
  : Effect.forever(withLock(stateDir, name, critical))

Effect.runPromise(program).then(() => process.exit(0))
