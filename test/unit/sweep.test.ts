/**
 * The start-up sweep kills only a process it has proved to be an orphaned
 * VM's QEMU (pid, start time and executable), never one whose command line
 * merely names the VM's directory.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { isAlive, processStartTime } from "../../src/vm/procfs.js"
import { sweepOrphans } from "../../src/vm/sweep.js"
import { vmPaths } from "../../src/vm/vmDir.js"
import { qemuExecutable, qemusUsing } from "../../src/vm/vmmIdentity.js"

const stateDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-sweep-"))
afterAll(() => Fs.rmSync(stateDir, { recursive: true, force: true }))

describe("sweepOrphans", () => {
  it.live("removes an orphan's files but spares a process that only names its directory", () =>
    Effect.gen(function*() {
      const paths = vmPaths(stateDir, "0123456789ab")
      Fs.mkdirSync(paths.dir, { recursive: true })
      // A bystander whose command line holds the VM's directory (a user's grep, an editor).
      const decoy = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)", `${paths.dir}/`], { stdio: "ignore" })
      yield* Effect.sleep("200 millis")
      const decoyId = { pid: decoy.pid!, startTime: processStartTime(decoy.pid!)! }
      // Its owner is gone (a pid that exited), and the record names the bystander as its QEMU.
      const gone = spawn(process.execPath, ["-e", ""], { stdio: "ignore" })
      yield* Effect.async<void>((resume) => void gone.on("exit", () => resume(Effect.void)))
      Fs.writeFileSync(paths.record, JSON.stringify({
        id: paths.id,
        kind: "ephemeral",
        owner: { pid: gone.pid, startTime: 1 },
        vmmPid: decoyId.pid,
        vmmStartTime: decoyId.startTime,
        createdAt: new Date().toISOString()
      }))
      const qemu = qemuExecutable("qemu-system-x86_64")
      expect(qemu).toBeDefined()
      expect(qemusUsing(paths.dir, qemu)).toEqual([])
      const swept = yield* sweepOrphans(stateDir, qemu)
      expect(swept).toEqual([paths.id])
      expect(Fs.existsSync(paths.dir)).toBe(false)
      expect(isAlive(decoyId)).toBe(true)
      decoy.kill("SIGKILL")
    }).pipe(Effect.provide(NodeContext.layer)))
})
