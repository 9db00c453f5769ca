/** vm_run end to end against real VMs: QEMU under TCG, Debian's kernel, the real agent. */
import { afterAll, expect, layer } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Fs from "node:fs"
import { VmRunInput } from "../../src/contract/vm.js"
import { VmManager } from "../../src/services/VmManager.js"
import { Caller, OPERATOR } from "../../src/services/Caller.js"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { eventually, makeStateDir, qemuProcessesUnder, testLayer, vmDirsUnder } from "../support/vm.js"

const stateDir = makeStateDir()
const input = (command: VmRunInput["command"], extra: Partial<VmRunInput> = {}) =>
  Schema.decodeUnknownSync(VmRunInput)({ environment: "tiny", command, mem_mib: 256, ...extra })

const noLeftovers = Effect.gen(function*() {
  expect(yield* eventually(() => qemuProcessesUnder(stateDir).length === 0)).toBe(true)
  expect(vmDirsUnder(stateDir)).toEqual([])
})

afterAll(() => Fs.rmSync(stateDir, { recursive: true, force: true }))

// These drive the service as the CLI does: as the operator, whose results carry all the output held.
const asOperator = Layer.succeed(Caller, OPERATOR)

layer(Layer.merge(testLayer(stateDir), asOperator), { timeout: "300 seconds", excludeTestServices: true })("vm_run", (it) => {
    it.effect("passes the exit code through and keeps stdout and stderr apart", () =>
      Effect.gen(function*() {
        const { result } = yield* (yield* VmManager).run(input("echo out; echo err >&2; exit 42"))
        expect(result).toMatchObject({
          stdout: "out\n",
          stderr: "err\n",
          exit_code: 42,
          environment: "tiny",
          execution_mode: "guest_virtio_serial",
          timed_out: false
        })
        expect(result.vm_id).toMatch(/^[0-9a-f]{12}$/)
        yield* noLeftovers
      }))

    it.effect("is binary-safe and exact for 10 MB of output", () =>
      Effect.gen(function*() {
        const manager = yield* VmManager
        const big = yield* manager.run(input(["sh", "-c", "yes 0123456789abcde | head -c 10485760; printf '\\377\\376\\000end' >&2"], { timeout_seconds: 120 }))
        const expected = Buffer.from("0123456789abcde\n".repeat(10485760 / 16))
        expect(big.stdout.byteLength).toBe(10485760)
        expect(Buffer.compare(Buffer.from(big.stdout), expected)).toBe(0)
        expect([...big.stderr]).toEqual([0xff, 0xfe, 0x00, 0x65, 0x6e, 0x64])
        expect(big.result.stdout_truncated).toBe(false)
        yield* noLeftovers
      }))

    it.effect("reads the root disk ahead 2 MiB at a time (guest/agent/boot.c), and only the root disk", () =>
      Effect.gen(function*() {
        const readAhead = (serial: string) =>
          `for d in /sys/block/vd*; do [ "$(cat $d/serial)" = ${serial} ] && cat $d/queue/read_ahead_kb; done`
        const { result } = yield* (yield* VmManager).run(input(`${readAhead("pyro-root")}; ${readAhead("pyro-scratch")}`))
        const [root, scratch] = result.stdout.split("\n")
        expect(root).toBe("2048")
        expect(scratch).toMatch(/^\d+$/)
        expect(scratch).not.toBe("2048")
      }))

    it.effect("reports 127 for a command that does not exist", () =>
      Effect.gen(function*() {
        const { result } = yield* (yield* VmManager).run(input(["no-such-command", "x"]))
        expect(result.exit_code).toBe(127)
        expect(result.stderr).toContain("no-such-command: command not found")
      }))

    it.effect("kills a command at its timeout with exit code 124", () =>
      Effect.gen(function*() {
        const started = Date.now()
        const { result } = yield* (yield* VmManager).run(input("echo started; sleep 60 & sleep 60; echo never", { timeout_seconds: 2 }))
        expect(result.exit_code).toBe(124)
        expect(result.timed_out).toBe(true)
        expect(result.stdout).toBe("started\n")
        expect(result.stderr).toMatch(/command timed out after 2s\n$/)
        expect(Date.now() - started).toBeLessThan(30_000)
        yield* noLeftovers
      }))

    it.effect("tears the VM down when the run is interrupted", () =>
      Effect.gen(function*() {
        const running = yield* Deferred.make<void>()
        const fiber = yield* Effect.fork((yield* VmManager).run(input("echo running; sleep 120", { timeout_seconds: 300 }), {
          onOutput: () => Deferred.succeed(running, undefined)
        }))
        // Interrupt once the command is really running in the guest.
        yield* Deferred.await(running)
        expect(qemuProcessesUnder(stateDir)).toHaveLength(1)
        yield* Fiber.interrupt(fiber)
        yield* noLeftovers
      }))
})

layer(Layer.merge(testLayer(stateDir, { maxOutputBytes: 1000 }), asOperator), { timeout: "120 seconds", excludeTestServices: true })("vm_run with a small output cap", (it) => {
    it.effect("marks truncation, counts every byte, and keeps the real end", () =>
      Effect.gen(function*() {
        // The operator's result carries everything held: the 1000-byte head, and the stream's
        // last 256 KiB (TAIL_BYTES) past it.
        const { result, stdout } = yield* (yield* VmManager).run(input("yes | head -c 400000; echo END"))
        expect(stdout.byteLength).toBe(1000)
        expect(result.stdout_truncated).toBe(true)
        expect(result.stdout_bytes).toBe(400004)
        const marker = `\n[pyro: ${400004 - 1000 - 262144} of 400004 bytes of stdout left out here]\n`
        expect(result.stdout.startsWith(`${"y\n".repeat(500)}${marker}`)).toBe(true)
        expect(result.stdout.endsWith("y\nEND\n")).toBe(true)
        expect(result.stdout.length).toBe(1000 + marker.length + 262144)
        yield* noLeftovers
      }))
})
