/**
 * FREEZE and THAW (generation 4) on a real guest: while the scratch
 * filesystem is frozen a write waits and the agent answers; THAW lets the write
 * finish; a freeze nobody thaws ends by itself at its timeout, and one whose
 * connection goes away ends at once, so a host that dies mid-snapshot never
 * leaves the guest's writers blocked.
 */
import { afterAll, expect, layer } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Fs from "node:fs"
import { Vmm } from "../../src/services/Vmm.js"
import { runCommand } from "../../src/vm/execCommand.js"
import { FieldKey, MessageType } from "../../src/vm/protocol/constants.js"
import { frozenScratch } from "../../src/vm/protocol/freeze.js"
import { control } from "../../src/vm/protocol/messages.js"
import { channelSocketPath } from "../../src/vm/vmDir.js"
import { bootTinyVm, makeStateDir, testLayer } from "../support/vm.js"

const stateDir = makeStateDir()
afterAll(() => Fs.rmSync(stateDir, { recursive: true, force: true }))


const sh = (script: string) => ({
  command: ["/bin/sh", "-c", script] as const,
  cwd: "/workspace",
  timeoutSeconds: 60,
  maxOutputBytes: 1 << 20
})

layer(testLayer(stateDir), { timeout: "300 seconds", excludeTestServices: true })("FREEZE and THAW", (it) => {
  it.scoped("holds writes while frozen, and thaws by THAW, by its timeout or by its connection's end", () =>
    Effect.gen(function*() {
      const vm = yield* bootTinyVm("frz", { channels: 2 })
      const c = vm.connection
      yield* runCommand(c, sh("echo before > /workspace/a"))

      // Frozen for the scope: the agent answers, a write waits until the thaw. (So may a
      // read: through the overlay it updates the file's access time.)
      const write = yield* Effect.scoped(Effect.gen(function*() {
        yield* frozenScratch(c, 20_000)
        expect([...(yield* c.ping(new Uint8Array([7])))]).toEqual([7])
        const write = yield* Effect.fork(runCommand(c, sh("echo during > /workspace/b && echo wrote")))
        const early = yield* Fiber.await(write).pipe(Effect.timeout(Duration.seconds(2)), Effect.option)
        expect(early._tag).toBe("None")
        return write
      }))
      expect((yield* Fiber.join(write)).stdout.text()).toBe("wrote\n")

      // A second freeze while one holds is refused.
      yield* Effect.scoped(Effect.gen(function*() {
        yield* frozenScratch(c, 20_000)
        const again = yield* Effect.either(frozenScratch(c, 20_000))
        expect(again._tag).toBe("Left")
      }))

      // Never thawed: it ends by itself at its timeout.
      yield* c.call("freeze", (stream) => control(MessageType.FREEZE, stream, [[FieldKey.TIMEOUT_MS, 1500]]))
      const late = yield* runCommand(c, sh("echo late > /workspace/c && echo ok"))
      expect(late.stdout.text()).toBe("ok\n")

      // Its connection gone: thawed at once (the timeout asked for is far away).
      const other = yield* Effect.scoped(Effect.gen(function*() {
        const mine = yield* (yield* Vmm).connect(channelSocketPath(vm.channelSocket, 1), 10_000)
        yield* mine.call("freeze", (stream) => control(MessageType.FREEZE, stream, [[FieldKey.TIMEOUT_MS, 30_000]]))
        return yield* Effect.fork(runCommand(c, sh("echo gone > /workspace/d && echo ok")))
      }))
      const done = yield* Fiber.join(other).pipe(Effect.timeout(Duration.seconds(20)))
      expect(done.stdout.text()).toBe("ok\n")
    }))
})
