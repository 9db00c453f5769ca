/**
 * One VM, two host channels: each is its own connection to the agent, with its
 * own stream ids (every new connection starts at stream 1), and a host that
 * comes, says HELLO or goes on one channel ends only that channel's commands.
 */
import { afterAll, expect, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import * as Fs from "node:fs"
import { Vmm } from "../../src/services/Vmm.js"
import { runCommand } from "../../src/vm/execCommand.js"
import type { GuestConnection } from "../../src/vm/protocol/mux.js"
import { channelSocketPath } from "../../src/vm/vmDir.js"
import { bootTinyVm, eventually, makeStateDir, qemuProcessesUnder, testLayer, vmDirsUnder } from "../support/vm.js"

const stateDir = makeStateDir()
afterAll(() => {
  // Only a run cut short leaves any: the VM's scope kills it otherwise.
  for (const pid of qemuProcessesUnder(stateDir)) process.kill(pid, "SIGKILL")
  Fs.rmSync(stateDir, { recursive: true, force: true })
})

const sh = (script: string, timeoutSeconds = 60) => ({
  command: ["/bin/sh", "-c", script] as const,
  cwd: "/workspace",
  timeoutSeconds,
  maxOutputBytes: 1 << 16
})

/** A connection to one channel, in a scope of its own that the test closes to make that host leave. */
const connectChannel = (channelSocket: string, channel: number) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const connection = yield* (yield* Vmm).connect(channelSocketPath(channelSocket, channel), 30_000).pipe(Scope.extend(scope))
    return { connection, leave: Scope.close(scope, Exit.void) }
  })

/** How many guest processes run exactly `args` (neither the shell that started one nor the grep match). */
const count = (connection: GuestConnection, args: string) =>
  Effect.map(runCommand(connection, sh(`ps -o args | grep -c '^ *${args} *$' || true`)), (r) => Number(r.stdout.text().trim()))

const until = (check: Effect.Effect<boolean, unknown>, timeoutMs = 20_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    while (!(yield* check)) {
      if (Date.now() > deadline) return false
      yield* Effect.sleep("200 millis")
    }
    return true
  })

layer(testLayer(stateDir), { timeout: "300 seconds", excludeTestServices: true })("host channels", (it) => {
  it.scoped("a command on channel 1 outlives clients coming and going on channel 0; closing channel 1 ends only its own", () =>
    Effect.gen(function*() {
      const vm = yield* bootTinyVm("chan", { channels: 2 })

      // Channel 1: a command that runs for a while (its stream is 1, as channel 0's will be).
      const one = yield* connectChannel(vm.channelSocket, 1)
      const long = yield* Effect.fork(runCommand(one.connection, sh("sleep 8; echo one-done")))
      expect(yield* until(Effect.map(count(vm.connection, "sleep 8"), (n) => n === 1))).toBe(true)

      // Channel 0: the boot connection leaves, a client connects, runs a command and leaves, another says HELLO.
      yield* vm.disconnect
      const zero = yield* connectChannel(vm.channelSocket, 0)
      const echoed = yield* runCommand(zero.connection, sh("echo zero"))
      expect(echoed.stdout.text()).toBe("zero\n")
      yield* zero.leave
      const again = yield* connectChannel(vm.channelSocket, 0)
      expect(yield* count(again.connection, "sleep 8")).toBe(1)

      const finished = yield* Fiber.join(long)
      expect(finished.exitCode).toBe(0)
      expect(finished.stdout.text()).toBe("one-done\n")

      // Both channels busy; channel 1's host goes mid-command: its command dies, channel 0's finishes.
      const busy = yield* Effect.fork(runCommand(again.connection, sh("sleep 6; echo zero-done")))
      const doomed = yield* Effect.fork(runCommand(one.connection, sh("sleep 301; echo never", 600)))
      expect(yield* until(Effect.map(count(again.connection, "sleep 301"), (n) => n === 1))).toBe(true)
      yield* one.leave
      expect(yield* until(Effect.map(count(again.connection, "sleep 301"), (n) => n === 0))).toBe(true)
      // Only now, with the guest's process already gone: stopping the fiber could otherwise kill it from here.
      yield* Fiber.interrupt(doomed)
      const survived = yield* Fiber.join(busy)
      expect(survived.exitCode).toBe(0)
      expect(survived.stdout.text()).toBe("zero-done\n")

      // Channel 1 takes a new host afterwards.
      const back = yield* connectChannel(vm.channelSocket, 1)
      expect((yield* runCommand(back.connection, sh("echo back"))).stdout.text()).toBe("back\n")
    }))

  it.effect("leaves no VM process or file behind", () =>
    Effect.gen(function*() {
      expect(yield* eventually(() => qemuProcessesUnder(stateDir).length === 0)).toBe(true)
      expect(vmDirsUnder(stateDir)).toEqual([])
    }))
})
