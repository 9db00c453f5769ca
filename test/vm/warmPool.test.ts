/** The warm pool: runs served by ready VMs, refilled behind them, drained on shutdown with no QEMU left. */
import { afterAll, describe, expect, it } from "vitest"
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import { VmRunInput } from "../../src/contract/vm.js"
import { VmManager } from "../../src/services/VmManager.js"
import { makeStateDir, qemuProcessesUnder, testLayer, vmDirsUnder } from "../support/vm.js"

const stateDir = makeStateDir()
afterAll(() => Fs.rmSync(stateDir, { recursive: true, force: true }))

const waitFor = async (check: () => boolean, timeoutMs = 60_000) => {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) return false
    await new Promise((r) => setTimeout(r, 50))
  }
  return true
}

const run = (command: string) =>
  Effect.flatMap(VmManager, (vms) =>
    vms.run(Schema.decodeUnknownSync(VmRunInput)({ environment: "tiny", command, mem_mib: 256 })))

describe("warm pool", () => {
  it("serves runs from ready VMs, refills, and drains on shutdown", async () => {
    const runtime = ManagedRuntime.make(testLayer(stateDir, { maxActiveVms: 1 }))
    try {
      await runtime.runPromise(Effect.flatMap(VmManager, (vms) => vms.setWarmPool(2)))
      const first = await runtime.runPromise(run("echo first"))
      expect(first.result.stdout).toBe("first\n")
      expect(await waitFor(() => qemuProcessesUnder(stateDir).length === 2)).toBe(true)
      // Pool VMs do not count against the limit of 1.
      const second = await runtime.runPromise(run("echo second; hostname"))
      expect(second.result).toMatchObject({ stdout: expect.stringMatching(/^second\npyro-pool[0-9a-f]{8}\n$/), boot_ms: 0 })
      const third = await runtime.runPromise(run("cat /workspace/* 2>/dev/null; echo clean"))
      expect(third.result.stdout).toBe("clean\n")
      expect(await waitFor(() => qemuProcessesUnder(stateDir).length === 2)).toBe(true)
    } finally {
      await runtime.dispose()
    }
    expect(await waitFor(() => qemuProcessesUnder(stateDir).length === 0, 10_000)).toBe(true)
    expect(vmDirsUnder(stateDir)).toEqual([])
  }, 180_000)
})
