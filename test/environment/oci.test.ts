/**
 * Environments through a real registry (Debian's docker-registry on
 * loopback): push a built environment and pull it into a fresh cache (and via
 * PYRO_REGISTRY); pull an ordinary container image with whiteouts and boot it.
 */
import { afterAll, expect, layer } from "@effect/vitest"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { VmRunInput } from "../../src/contract/vm.js"
import { EnvironmentStoreLive } from "../../src/layers/EnvironmentStoreLive.js"
import { layerWith } from "../../src/layers/PyroConfigLive.js"
import { pushImage } from "../../src/oci/push.js"
import { EnvironmentStore } from "../../src/services/EnvironmentStore.js"
import { ProgressSilent } from "../../src/services/Progress.js"
import { VmManager } from "../../src/services/VmManager.js"
import { tarGz } from "../oci/tarWriter.js"
import { busyboxBinary } from "../support/initrd.js"
import { Registry, registryLayer } from "../support/registry.js"
import { asOperator, makeStateDir, testLayer, userCacheDir, vmDirsUnder } from "../support/vm.js"

const stateDir = makeStateDir()
const scratch = Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-oci-env-"))
const ociInstalls = () =>
  Fs.readdirSync(Path.join(userCacheDir, "environments", "oci"), { withFileTypes: true })
    .filter((d) => d.name.startsWith("127.0.0.1_"))
    .map((d) => Path.join(userCacheDir, "environments", "oci", d.name))
afterAll(() => {
  for (const dir of (() => { try { return ociInstalls() } catch { return [] } })()) Fs.rmSync(dir, { recursive: true, force: true })
  Fs.rmSync(stateDir, { recursive: true, force: true })
  Fs.rmSync(scratch, { recursive: true, force: true })
})

/** A store over a cache of its own (no kernel needed: nothing boots from it). */
const freshStore = (registry: string | undefined) =>
  Effect.gen(function*() {
    const cacheDir = Fs.mkdtempSync(Path.join(scratch, "cache-"))
    return yield* Effect.provide(
      EnvironmentStore,
      EnvironmentStoreLive.pipe(
        Layer.provideMerge(Layer.mergeAll(
          layerWith({ cacheDir, registry: registry ? Option.some(registry) : Option.none() }),
          ProgressSilent
        )),
        Layer.provideMerge(NodeContext.layer)
      )
    )
  })

layer(Layer.mergeAll(testLayer(stateDir), registryLayer(), asOperator), { timeout: "300 seconds", excludeTestServices: true })(
  "OCI environments",
  (it) => {
    it.effect("push a built environment, pull it elsewhere by reference and through PYRO_REGISTRY", () =>
      Effect.gen(function*() {
        const registry = yield* Registry
        const store = yield* EnvironmentStore
        const tiny = yield* store.ensure("tiny")
        const pushed = yield* store.push("tiny", `oci://${registry.host}/pyro/tiny`)
        expect(pushed).toMatchObject({ environment: "tiny", reference: `oci://${registry.host}/pyro/tiny:latest` })
        expect(pushed.digest).toMatch(/^sha256:/)

        const other = yield* freshStore(undefined)
        const pulled = yield* other.pull(`oci://${registry.host}/pyro/tiny`)
        expect(pulled).toMatchObject({ action: "pulled", installed: true, rootfs_sha256: tiny.manifest.rootfs.sha256 })
        expect((yield* other.pull(`oci://${registry.host}/pyro/tiny:latest`)).action).toBe("already-installed")
        expect((yield* other.list).map((e) => e.name)).toContain(`oci://${registry.host}/pyro/tiny:latest`)

        const viaRegistry = yield* freshStore(`oci://${registry.host}/pyro`)
        const installed = yield* viaRegistry.ensure("tiny")
        expect(installed.manifest.rootfs.sha256).toBe(tiny.manifest.rootfs.sha256)
        expect(installed.manifest.source).toContain(`pulled oci://${registry.host}/pyro/tiny`)
        expect((yield* viaRegistry.inspect("tiny")).verified).toBe(true)
      }))

    it.effect("pulls a container image, honours whiteouts, and boots it with the agent injected", () =>
      Effect.gen(function*() {
        const registry = yield* Registry
        const busybox = busyboxBinary(userCacheDir, scratch)
        const lower = Path.join(scratch, "lower.tar.gz")
        const upper = Path.join(scratch, "upper.tar.gz")
        Fs.writeFileSync(lower, tarGz([
          { type: "dir", path: "bin" },
          { type: "file", path: "bin/busybox", data: busybox, mode: 0o755 },
          ...["sh", "ls", "cat", "echo"].map((n) => ({ type: "symlink" as const, path: `bin/${n}`, target: "busybox" })),
          { type: "dir", path: "etc" },
          { type: "file", path: "etc/gone", data: "x" },
          { type: "file", path: "etc/kept", data: "kept\n" },
          { type: "dir", path: "opt/old" },
          { type: "file", path: "opt/old/file", data: "old" }
        ]))
        Fs.writeFileSync(upper, tarGz([
          { type: "file", path: "etc/.wh.gone" },
          { type: "dir", path: "opt" },
          { type: "file", path: "opt/.wh..wh..opq" },
          { type: "file", path: "opt/new", data: "new\n" }
        ]))
        yield* pushImage(registry.ref("pyro/app:1"), { layers: [lower, upper] })
        const name = `oci://${registry.host}/pyro/app:1`
        const { result } = yield* (yield* VmManager).run(
          Schema.decodeUnknownSync(VmRunInput)({ environment: name, command: "ls /etc /opt; cat /etc/kept /opt/new; pwd", mem_mib: 256 })
        )
        expect(result.exit_code).toBe(0)
        expect(result.stdout).toBe("/etc:\nkept\n\n/opt:\nnew\nkept\nnew\n/workspace\n")
        expect(vmDirsUnder(stateDir)).toEqual([])
        const inspected = yield* (yield* EnvironmentStore).inspect(name)
        expect(inspected.image).toMatchObject({ reference: name })
      }))

    it.effect("says what is wrong with a reference that does not exist", () =>
      Effect.gen(function*() {
        const registry = yield* Registry
        const error = yield* Effect.flip((yield* EnvironmentStore).pull(`oci://${registry.host}/pyro/nothing:1`))
        expect(error.message).toMatch(/not found/)
        const bad = yield* Effect.flip((yield* EnvironmentStore).pull("oci://"))
        expect(bad._tag).toBe("EnvironmentBuildFailed")
      }))
  }
)
