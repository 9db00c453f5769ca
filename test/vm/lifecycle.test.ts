/** The vm_* lifecycle against real VMs: records on disk, detached QEMU, limits, TTL. */
import { afterAll, expect, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { VmCreateInput, VmExecInput, VmRunInput } from "../../src/contract/vm.js"
import { VmManager } from "../../src/services/VmManager.js"
import { eventually, makeStateDir, qemuProcessesUnder, testLayer, vmDirsUnder } from "../support/vm.js"

const stateDir = makeStateDir()
afterAll(() => {
  for (const pid of qemuProcessesUnder(stateDir)) process.kill(pid, "SIGKILL")
  Fs.rmSync(stateDir, { recursive: true, force: true })
})

const createInput = (extra: Partial<VmCreateInput> = {}) =>
  Schema.decodeUnknownSync(VmCreateInput)({ environment: "tiny", mem_mib: 256, ...extra })
const execInput = (vm_id: string, command: VmExecInput["command"]) =>
  Schema.decodeUnknownSync(VmExecInput)({ vm_id, command })

layer(testLayer(stateDir, { maxActiveVms: 2 }), { timeout: "300 seconds", excludeTestServices: true })(
  "vm lifecycle",
  (it) => {
    it.effect("create, start, status, exec (which deletes the VM)", () =>
      Effect.gen(function*() {
        const vms = yield* VmManager
        const created = yield* vms.create(createInput({ ttl_seconds: 120 }))
        expect(created).toMatchObject({ state: "created", environment: "tiny", vcpu_count: 1, mem_mib: 256, network_enabled: false })
        expect(Date.parse(created.expires_at) - Date.parse(created.created_at)).toBe(120_000)
        expect(qemuProcessesUnder(stateDir)).toEqual([])

        const started = yield* vms.start(created.vm_id)
        expect(started).toMatchObject({ state: "started", execution_mode: "guest_virtio_serial" })
        expect(qemuProcessesUnder(stateDir).length).toBe(1)
        expect((yield* vms.status(created.vm_id)).state).toBe("started")

        const result = yield* vms.exec(execInput(created.vm_id, "echo hi; hostname"))
        expect(result).toMatchObject({ exit_code: 0, stdout: `hi\npyro-${created.vm_id}\n`, deleted: true })
        expect(yield* eventually(() => qemuProcessesUnder(stateDir).length === 0)).toBe(true)
        expect(vmDirsUnder(stateDir)).toEqual([])
        const gone = yield* Effect.flip(vms.status(created.vm_id))
        expect(gone._tag).toBe("VmNotFound")
      }))

    it.effect("exec on a created VM starts it first", () =>
      Effect.gen(function*() {
        const vms = yield* VmManager
        const { vm_id } = yield* vms.create(createInput())
        const result = yield* vms.exec(execInput(vm_id, ["cat", "/etc/os-release"]))
        expect(result.stdout).toContain("pyro tiny")
        expect(vmDirsUnder(stateDir)).toEqual([])
      }))

    it.effect("stop powers the guest off, start boots it again, delete kills it", () =>
      Effect.gen(function*() {
        const vms = yield* VmManager
        const { vm_id } = yield* vms.create(createInput())
        yield* vms.start(vm_id)
        const stopped = yield* vms.stop(vm_id)
        expect(stopped.state).toBe("stopped")
        expect(yield* eventually(() => qemuProcessesUnder(stateDir).length === 0)).toBe(true)
        expect((yield* vms.start(vm_id)).state).toBe("started")
        const deleted = yield* vms.remove(vm_id)
        expect(deleted).toEqual({ vm_id, state: "deleted", was_running: true })
        expect(yield* eventually(() => qemuProcessesUnder(stateDir).length === 0)).toBe(true)
        expect(vmDirsUnder(stateDir)).toEqual([])
      }))

    it.effect("two starts of one stopped VM at once boot one QEMU", () =>
      Effect.gen(function*() {
        const vms = yield* VmManager
        const { vm_id } = yield* vms.create(createInput())
        yield* vms.start(vm_id)
        yield* vms.stop(vm_id)
        expect(yield* eventually(() => qemuProcessesUnder(stateDir).length === 0)).toBe(true)
        const [a, b] = yield* Effect.all([vms.start(vm_id), vms.start(vm_id)], { concurrency: 2 })
        expect([a.state, b.state]).toEqual(["started", "started"])
        expect(qemuProcessesUnder(stateDir).length).toBe(1)
        yield* vms.remove(vm_id)
        expect(yield* eventually(() => qemuProcessesUnder(stateDir).length === 0)).toBe(true)
        expect(vmDirsUnder(stateDir)).toEqual([])
      }))

    it.effect("enforces the active-VM limit with a clear error", () =>
      Effect.gen(function*() {
        const vms = yield* VmManager
        const a = yield* vms.create(createInput())
        const b = yield* vms.create(createInput())
        const error = yield* Effect.flip(vms.create(createInput()))
        expect(error._tag).toBe("VmLimitReached")
        expect(error.message).toContain("2 of 2")
        yield* vms.remove(a.vm_id)
        const c = yield* vms.create(createInput())
        yield* vms.remove(b.vm_id)
        yield* vms.remove(c.vm_id)
      }))

    it.effect("counts one-shot runs in flight against the limit, atomically", () =>
      Effect.gen(function*() {
        const vms = yield* VmManager
        const run = vms.run(Schema.decodeUnknownSync(VmRunInput)({ environment: "tiny", command: "sleep 1", mem_mib: 256 }))
        const results = yield* Effect.all([run, run, run], { concurrency: "unbounded", mode: "either" })
        const failures = results.filter((r) => r._tag === "Left")
        expect(failures.length).toBe(1)
        expect(failures[0]!.left._tag).toBe("VmLimitReached")
        expect(yield* eventually(() => qemuProcessesUnder(stateDir).length === 0)).toBe(true)
        expect(vmDirsUnder(stateDir)).toEqual([])
      }))

    it.effect("treats an expired VM as gone even before the reaper runs", () =>
      Effect.gen(function*() {
        const vms = yield* VmManager
        const short = yield* vms.create(createInput({ ttl_seconds: 1 }))
        yield* Effect.sleep("1100 millis")
        expect((yield* Effect.flip(vms.start(short.vm_id)))._tag).toBe("VmNotFound")
        expect(vmDirsUnder(stateDir)).toEqual([])
      }))

    it.effect("reaps VMs whose TTL has passed, running or not", () =>
      Effect.gen(function*() {
        const vms = yield* VmManager
        const short = yield* vms.create(createInput({ ttl_seconds: 1 }))
        yield* vms.start(short.vm_id)
        const long = yield* vms.create(createInput({ ttl_seconds: 600 }))
        yield* Effect.sleep("1100 millis")
        const reaped = yield* vms.reapExpired
        expect(reaped.reaped.map((r) => r.id)).toEqual([short.vm_id])
        expect(yield* eventually(() => qemuProcessesUnder(stateDir).length === 0)).toBe(true)
        expect((yield* vms.list).map((v) => v.vm_id)).toEqual([long.vm_id])
        yield* vms.remove(long.vm_id)
      }))

    it.effect("reports unknown ids, and network facts", () =>
      Effect.gen(function*() {
        const vms = yield* VmManager
        expect((yield* Effect.flip(vms.start("0123456789ab")))._tag).toBe("VmNotFound")
        const { vm_id } = yield* vms.create(createInput({ network: true }))
        expect(yield* vms.networkInfo(vm_id)).toMatchObject({ network_enabled: true, guest_ip: "10.0.2.15", gateway: "10.0.2.2" })
        yield* vms.remove(vm_id)
        expect(Fs.existsSync(Path.join(stateDir, "vms", vm_id))).toBe(false)
      }))
  }
)
