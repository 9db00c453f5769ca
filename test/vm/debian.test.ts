/**
 * The Debian environments for real: a mmdebstrap build of debian:12-base in the
 * user's cache (quick when cached), booted; and git in debian:12.
 */
import { afterAll, expect, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import { VmRunInput } from "../../src/contract/vm.js"
import { EnvironmentStore } from "../../src/services/EnvironmentStore.js"
import { VmManager } from "../../src/services/VmManager.js"
import { eventually, makeStateDir, qemuProcessesUnder, testLayer, vmDirsUnder } from "../support/vm.js"

const stateDir = makeStateDir()
afterAll(() => Fs.rmSync(stateDir, { recursive: true, force: true }))

const run = (environment: string, command: ReadonlyArray<string>) =>
  Effect.flatMap(VmManager, (vms) =>
    vms.run(Schema.decodeUnknownSync(VmRunInput)({ environment, command, mem_mib: 512, timeout_seconds: 60 })))

layer(testLayer(stateDir), { timeout: "600 seconds", excludeTestServices: true })("Debian environments", (it) => {
  it.effect("debian:12-base builds from Debian's archive and boots", () =>
    Effect.gen(function*() {
      const env = yield* (yield* EnvironmentStore).ensure("debian:12-base")
      expect(env.manifest.packages.some((p) => p.startsWith("bash "))).toBe(true)
      expect(env.manifest.packages.some((p) => p.startsWith("git "))).toBe(false)
      const { result } = yield* run("debian:12-base", ["sh", "-c", "cat /etc/debian_version; bash -c 'echo $BASH_VERSION'; ls /workspace && echo ok"])
      expect(result.exit_code).toBe(0)
      expect(result.stdout).toMatch(/^12\.\d+\n5\.2\.\d+.*\nok\n$/)
      expect(yield* eventually(() => qemuProcessesUnder(stateDir).length === 0)).toBe(true)
      expect(vmDirsUnder(stateDir)).toEqual([])
    }))

  it.effect("debian:12 has git and python3", () =>
    Effect.gen(function*() {
      const { result } = yield* run("debian:12", ["sh", "-c", "git --version && python3 -c 'print(6*7)'"])
      expect(result).toMatchObject({ exit_code: 0, environment: "debian:12" })
      expect(result.stdout).toMatch(/^git version 2\.\d+\.\d+\n42\n$/)
    }))
})
