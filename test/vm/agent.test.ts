/**
 * The guest agent through the VMM layer: several commands at once on one
 * connection, timeouts that leave nothing behind, and a malformed frame from
 * the host answered with a protocol error, after which a new connection works;
 * REFRESH only once attached. The same binary as the workspace file tool
 * (`/proc/1/exe fs`), on the real overlay and kernel.
 */
import { afterAll, expect, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { execFileSync } from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Net from "node:net"
import { EnvironmentStore } from "../../src/services/EnvironmentStore.js"
import { KernelStore } from "../../src/services/KernelStore.js"
import { Vmm } from "../../src/services/Vmm.js"
import { connectAgent } from "../../src/vm/agentConnection.js"
import { runCommand } from "../../src/vm/execCommand.js"
import { FRAME_HEADER_BYTES, MessageType } from "../../src/vm/protocol/constants.js"
import { FrameDecoder } from "../../src/vm/protocol/frame.js"
import { makeStateDir, testLayer } from "../support/vm.js"

const stateDir = makeStateDir()
afterAll(() => Fs.rmSync(stateDir, { recursive: true, force: true }))

const bootUnattached = Effect.gen(function*() {
  const assets = yield* (yield* KernelStore).ensure
  const env = yield* (yield* EnvironmentStore).ensure("tiny")
  const vm = yield* (yield* Vmm).bootEphemeral({
    id: `agent${Date.now().toString(16).slice(-7)}`,
    kernel: assets.kernel,
    initrd: assets.initrd,
    rootImage: env.rootImage,
    vcpus: 1,
    memMib: 256,
    network: false
  })
  return vm
})

const bootTiny = Effect.tap(bootUnattached, (vm) => vm.attach)

const sh = (script: string, timeoutSeconds = 30) => ({
  command: ["/bin/sh", "-c", script] as const,
  cwd: "/workspace",
  timeoutSeconds,
  maxOutputBytes: 1 << 20
})

layer(testLayer(stateDir), { timeout: "300 seconds", excludeTestServices: true })("the guest agent", (it) => {
  it.scoped("runs several commands at once over one connection", () =>
    Effect.gen(function*() {
      const vm = yield* bootTiny
      const results = yield* Effect.forEach(
        [1, 2, 3, 4, 5, 6],
        (n) => runCommand(vm.connection, sh(`sleep 0.$((7 - ${n})); echo out-${n}; echo err-${n} >&2; exit ${n}`)),
        { concurrency: "unbounded" }
      )
      results.forEach((r, i) => {
        expect(r.exitCode).toBe(i + 1)
        expect(r.stdout.text()).toBe(`out-${i + 1}\n`)
        expect(r.stderr.text()).toBe(`err-${i + 1}\n`)
      })
      const pong = yield* vm.connection.ping(new Uint8Array([1, 2, 3]))
      expect([...pong]).toEqual([1, 2, 3])
    }))

  it.scoped("streams 48 MiB of stdin into a slow reader exactly, with backpressure", () =>
    Effect.gen(function*() {
      const vm = yield* bootTiny
      const chunk = new Uint8Array(256 * 1024).map((_, i) => (i * 7 + 3) & 0xff)
      const chunks = 192
      const expected = Crypto.createHash("sha256")
      for (let i = 0; i < chunks; i++) expected.update(chunk)
      // The reader sleeps first, so the agent's stdin backlog fills and must push back.
      const r = yield* runCommand(vm.connection, {
        ...sh("sleep 2; sha256sum | cut -d' ' -f1", 120),
        stdin: Stream.fromIterable(Array.from({ length: chunks }, () => chunk))
      })
      expect(r.exitCode).toBe(0)
      expect(r.stdout.text()).toBe(`${expected.digest("hex")}\n`)
    }))

  it.scoped("kills the whole process tree at a timeout, even processes that left the group", () =>
    Effect.gen(function*() {
      const vm = yield* bootTiny
      const timedOut = yield* runCommand(vm.connection, sh("sleep 301 & setsid sleep 302 & sleep 303", 1))
      expect(timedOut.exitCode).toBe(124)
      expect(timedOut.timedOut).toBe(true)
      yield* Effect.sleep("200 millis")
      const ps = yield* runCommand(vm.connection, sh("ps -o pid,args | grep 'sleep 30[123]' || true"))
      expect(ps.stdout.text()).toBe("")
    }))

  it.scoped("runs in /workspace on a writable overlay over the read-only root", () =>
    Effect.gen(function*() {
      const vm = yield* bootTiny
      const r = yield* runCommand(vm.connection, sh("pwd; echo hi > /etc/new && cat /etc/new; mount | grep -c ' / type overlay'"))
      expect(r.stdout.text()).toBe("/workspace\nhi\n1\n")
    }))

  it.scoped("searches the command in the request's PATH, with exactly the request's environment", () =>
    Effect.gen(function*() {
      const vm = yield* bootTiny
      const run = (env: ReadonlyArray<readonly [string, string]>, command: ReadonlyArray<string>) =>
        runCommand(vm.connection, { command: command as [string, ...Array<string>], cwd: "/", timeoutSeconds: 30, maxOutputBytes: 1 << 16, env })
      const missing = yield* run([["PATH", "/nowhere"]], ["env"])
      expect(missing.exitCode).toBe(127)
      const found = yield* run([["PATH", "/bin"], ["ONLY", "this"]], ["env"])
      expect(found.stdout.text().split("\n").filter(Boolean).sort()).toEqual(["ONLY=this", "PATH=/bin"])
    }))

  it.scoped("is also the workspace file tool: write, read, list and tar under /workspace, and no further", () =>
    Effect.gen(function*() {
      const vm = yield* bootTiny
      const fs = (args: ReadonlyArray<string>, stdin?: string) =>
        runCommand(vm.connection, {
          command: ["/proc/1/exe", "fs", ...args],
          cwd: "/",
          timeoutSeconds: 30,
          maxOutputBytes: 1 << 20,
          ...(stdin === undefined ? {} : { stdin: Stream.make(new TextEncoder().encode(stdin)) })
        })
      expect((yield* fs(["write", "/workspace/src/a.txt"], "hello\n")).stdout.text()).toBe("6\0")
      expect((yield* fs(["read", "/workspace/src/a.txt", "3"])).stdout.text()).toBe("6\0hel")
      yield* runCommand(vm.connection, sh("ln -s /etc /workspace/src/etc"))
      const out = yield* fs(["read", "/workspace/src/etc/passwd", "100"])
      expect(out.exitCode).toBe(4)
      expect(out.stderr.text()).toBe("fs: read: /workspace/src/etc/passwd: outside /workspace\n")
      const listed = (yield* fs(["list", "/workspace", "--recursive"])).stdout.text().split("\0")
      expect(listed.slice(-4)).toEqual(["end", "complete", "3", ""])
      expect(listed).toContain("/workspace/src/a.txt")
      const tar = yield* fs(["tar", "/workspace/src"])
      expect(tar.exitCode).toBe(0)
      const names = execFileSync("tar", ["-tf", "-"], { input: tar.stdout.bytes() }).toString().split("\n").sort()
      expect(names).toEqual(["", "src/", "src/a.txt", "src/etc"])
    }))

  it.scoped("REFRESH renames and reseeds an attached VM, and is refused before attach", () =>
    Effect.gen(function*() {
      const identity = { realtimeNs: BigInt(Date.now()) * 1_000_000n, entropy: Crypto.randomBytes(64), hostname: "renamed" }
      const fresh = yield* bootUnattached
      const early = yield* Effect.either(fresh.connection.refresh(identity))
      expect(Either.isLeft(early) && early.left.message).toMatch(/not attached/)
      const vm = yield* bootTiny
      yield* vm.connection.refresh(identity)
      const r = yield* runCommand(vm.connection, sh("hostname"))
      expect(r.stdout.text()).toBe("renamed\n")
      const again = yield* Effect.either(vm.connection.attach({ scratchSerial: "pyro-scratch", ...identity }))
      expect(Either.isLeft(again) && again.left.message).toMatch(/already attached/)
    }))

  it.scoped("answers a malformed frame with a protocol error and serves the next connection", () =>
    Effect.gen(function*() {
      const vm = yield* bootTiny
      yield* vm.disconnect
      const reply = yield* Effect.async<Uint8Array>((resume) => {
        const socket = Net.createConnection(vm.channelSocket)
        const chunks: Array<Buffer> = []
        socket.on("connect", () => socket.write(Buffer.alloc(FRAME_HEADER_BYTES * 2, 0x41)))
        socket.on("data", (chunk) => {
          chunks.push(chunk)
          if (Buffer.concat(chunks).byteLength >= FRAME_HEADER_BYTES) {
            socket.destroy()
            resume(Effect.succeed(Buffer.concat(chunks)))
          }
        })
      }).pipe(Effect.timeout("20 seconds"))
      const frames = Either.getOrThrow(new FrameDecoder().push(reply))
      expect(frames[0]).toMatchObject({ type: MessageType.ERROR, stream: 0 })
      // Give the agent a moment to see the host leave, then talk to it properly.
      yield* Effect.sleep("300 millis")
      const fresh = yield* connectAgent(vm.channelSocket).pipe(Scope.extend(yield* Effect.scope), Effect.timeout("20 seconds"))
      expect(fresh.hello.state).toBe("attached")
      const r = yield* runCommand(fresh, sh("echo still here"))
      expect(r.stdout.text()).toBe("still here\n")
    }))
})
