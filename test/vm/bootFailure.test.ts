/**
 * Guests that fail: real kernels with an /init that never answers, answers
 * with garbage, or panics. Each boot fails with a clear error inside its time
 * limit and leaves no process or file behind.
 */
import { afterAll, expect, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import { EnvironmentStore } from "../../src/services/EnvironmentStore.js"
import { Vmm } from "../../src/services/Vmm.js"
import type { BootError } from "../../src/vm/errors.js"
import { scriptInitrd } from "../support/initrd.js"
import { eventually, makeStateDir, qemuProcessesUnder, testLayer, vmDirsUnder } from "../support/vm.js"

const stateDir = makeStateDir()
afterAll(() => Fs.rmSync(stateDir, { recursive: true, force: true }))

const bootWith = (name: string, script: string, timeoutMs: number) =>
  Effect.gen(function*() {
    const { kernel, initrd } = yield* scriptInitrd(name, script)
    const env = yield* (yield* EnvironmentStore).ensure("tiny")
    const started = Date.now()
    const error = yield* Effect.flip(Effect.scoped((yield* Vmm).bootEphemeral({
      id: `${name}${Date.now().toString(16).slice(-6)}`,
      kernel,
      initrd,
      rootImage: env.rootImage,
      vcpus: 1,
      memMib: 256,
      network: false,
      timeoutMs
    })))
    const elapsed = Date.now() - started
    expect(yield* eventually(() => qemuProcessesUnder(stateDir).length === 0)).toBe(true)
    expect(vmDirsUnder(stateDir)).toEqual([])
    return { error: error as BootError, elapsed }
  })

layer(testLayer(stateDir), { timeout: "300 seconds", excludeTestServices: true })("a guest that", (it) => {
  it.effect("never answers fails the boot at the timeout", () =>
    Effect.gen(function*() {
      const { error, elapsed } = yield* bootWith("silent", "echo silent guest; exec /bin/busybox sleep 3600", 6_000)
      expect(error._tag).toBe("BootError")
      expect(error.stage).toBe("Timeout")
      expect(error.message).toContain("did not answer within 6s")
      expect(error.console).toContain("silent guest")
      expect(elapsed).toBeLessThan(15_000)
    }))

  it.effect("answers with garbage fails the boot and never crashes the host", () =>
    Effect.gen(function*() {
      const script = [
        "port=$(/bin/busybox grep -l org.pyro.channel.0 /sys/class/virtio-ports/*/name | /bin/busybox cut -d/ -f5)",
        "exec /bin/busybox sh -c \"while true; do /bin/busybox head -c 65536 /dev/urandom; done > /dev/$port\""
      ].join("\n")
      const { error, elapsed } = yield* bootWith("garbage", script, 8_000)
      expect(error._tag).toBe("BootError")
      expect(["AgentHandshake", "Timeout"]).toContain(error.stage)
      expect(elapsed).toBeLessThan(30_000)
    }))

  it.effect("panics fails the boot at once with the kernel's last words", () =>
    Effect.gen(function*() {
      const { error, elapsed } = yield* bootWith("panic", "echo about to die; exit 1", 60_000)
      expect(error.stage).toBe("Kernel")
      expect(error.message).toContain("QEMU exited")
      // How QEMU ended is data, not only words in the message.
      expect(error.vmmExit?.signal).toBeNull()
      expect(typeof error.vmmExit?.code).toBe("number")
      expect(error.console).toMatch(/Kernel panic|Attempted to kill init/)
      expect(elapsed).toBeLessThan(30_000)
    }))
})
