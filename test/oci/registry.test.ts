/** Push and pull against a real registry (Debian's docker-registry) on loopback. */
import { asOperator } from "../support/vm.js"
import { describe, expect, layer } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Os from "node:os"
import * as Path from "node:path"
import { blobPath } from "../../src/oci/blobs.js"
import { makeRegistryClient } from "../../src/oci/client.js"
import { flattenLayers } from "../../src/oci/flatten.js"
import { OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST, PYRO_ROOTFS } from "../../src/oci/mediaTypes.js"
import { gunzipTo, pullImage } from "../../src/oci/pull.js"
import { pushEnvironment, pushImage, putManifest, uploadBlob } from "../../src/oci/push.js"
import { parseReference } from "../../src/oci/reference.js"
import { Progress, type ProgressEvent } from "../../src/services/Progress.js"
import { Registry, registryAvailable, registryLayer } from "../support/registry.js"
import { describeTree } from "./tree.js"
import { tarGz, type TarSpec } from "./tarWriter.js"

const events: Array<ProgressEvent> = []
const RecordingProgress = Layer.succeed(Progress, { report: (event) => Effect.sync(() => void events.push(event)) })

const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-oci-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

const sha256 = (data: Uint8Array) => `sha256:${Crypto.createHash("sha256").update(data).digest("hex")}`

/** Files in a blob cache, partial downloads included. */
const cacheFiles = (blobDir: string) => {
  try {
    return Fs.readdirSync(Path.join(blobDir, "sha256")).sort()
  } catch {
    return []
  }
}

/** An ext4-looking image: data, a long run of zeros, data. */
const fakeRootfs = () => {
  const bytes = Buffer.alloc(2 * 1024 * 1024 + 123)
  Crypto.randomFillSync(bytes, 0, 64 * 1024)
  bytes.writeUInt16LE(0xef53, 1024 + 0x38) // the ext4 superblock magic, for flavour
  Crypto.randomFillSync(bytes, bytes.length - 5000)
  return bytes
}

const writeLayers = (dir: string, layers: ReadonlyArray<ReadonlyArray<TarSpec>>) =>
  layers.map((entries) => {
    const path = Path.join(dir, `layer-${Crypto.randomBytes(4).toString("hex")}.tar.gz`)
    Fs.writeFileSync(path, tarGz(entries))
    return path
  })

const IMAGE_LAYERS: ReadonlyArray<ReadonlyArray<TarSpec>> = [
  [
    { type: "dir", path: "etc/" },
    { type: "file", path: "etc/os-release", data: "ID=pyro\n" },
    { type: "file", path: "etc/hosts", data: "127.0.0.1 localhost\n" },
    { type: "dir", path: "app/" },
    { type: "file", path: "app/old.txt", data: "old" },
    { type: "file", path: "bin/tool", data: "#!/bin/sh\necho v1\n", mode: 0o755 },
    { type: "hardlink", path: "bin/tool-link", target: "bin/tool" },
    { type: "symlink", path: "bin/sh", target: "/usr/bin/busybox" },
    { type: "char", path: "dev/null" }
  ],
  [
    { type: "file", path: "etc/.wh.hosts" },
    { type: "dir", path: "app/" },
    { type: "file", path: "app/.wh..wh..opq" },
    { type: "file", path: "app/new.txt", data: "new" }
  ],
  [
    { type: "file", path: "bin/tool", data: "#!/bin/sh\necho v2\n", mode: 0o755 },
    { type: "file", path: "etc/motd", data: "hello\n", mode: 0o600 }
  ]
]

describe.skipIf(!registryAvailable())("the OCI client", () => {
  layer(Layer.mergeAll(registryLayer(), RecordingProgress, asOperator), { timeout: "60 seconds", excludeTestServices: true })(
    "against a real registry",
    (it) => {
      it.scoped("pushes a pyro environment artifact and pulls it back byte for byte", () =>
        Effect.gen(function*() {
          const registry = yield* Registry
          const dir = yield* tempDir
          const rootfs = fakeRootfs()
          const rootfsPath = Path.join(dir, "rootfs.ext4")
          Fs.writeFileSync(rootfsPath, rootfs)
          const config = JSON.stringify({ name: "tiny", version: "1.0", rootfs_sha256: sha256(rootfs) })
          const ref = registry.ref("pyro/env-tiny:1.0")

          const digest = yield* pushEnvironment(ref, { config, rootfsPath, blobDir: Path.join(dir, "push-cache") })
          expect(digest).toMatch(/^sha256:[a-f0-9]{64}$/)

          events.length = 0
          const blobDir = Path.join(dir, "cache")
          const pulled = yield* pullImage(ref, { blobDir })
          if (pulled.kind !== "pyro-environment") throw new Error(`pulled a ${pulled.kind}`)
          expect(pulled.manifestDigest).toBe(digest)
          expect(pulled.config).toEqual(JSON.parse(config))
          expect(pulled.rootfsMediaType).toBe(PYRO_ROOTFS)
          expect(pulled.rootfsUncompressedDigest).toBe(sha256(rootfs))
          expect(Path.dirname(pulled.rootfsBlob)).toBe(Path.join(blobDir, "sha256"))
          const downloads = events.filter((e) => e.scope === "pull" && e.phase === "download")
          expect(downloads.length).toBeGreaterThan(0)
          expect(downloads.at(-1)?.fraction).toBe(1)
          expect(downloads.at(-1)?.fields?.["layer"]).toMatch(/^[a-f0-9]{12}$/)

          const out = Path.join(dir, "out", "rootfs.ext4")
          yield* gunzipTo(pulled.rootfsBlob, out, sha256(rootfs))
          expect(Fs.readFileSync(out).equals(rootfs)).toBe(true)
          expect(Fs.statSync(out).blocks * 512).toBeLessThan(rootfs.length) // zeros left as holes

          // A wrong expected digest leaves nothing behind.
          const wrong = Path.join(dir, "out", "wrong.ext4")
          const mismatch = yield* Effect.flip(gunzipTo(pulled.rootfsBlob, wrong, sha256(Buffer.from("other"))))
          expect(mismatch._tag).toBe("DigestMismatch")
          expect(Fs.readdirSync(Path.join(dir, "out"))).toEqual(["rootfs.ext4"])

          // Pinned by digest, from the warm cache.
          const pinned = yield* pullImage(registry.ref(`pyro/env-tiny@${digest}`), { blobDir })
          expect(pinned.manifestDigest).toBe(digest)
          expect(events.some((e) => e.phase === "cached")).toBe(true)
        }))

      it.scoped("pushes a layered container image and flattens it with whiteouts", () =>
        Effect.gen(function*() {
          const registry = yield* Registry
          const dir = yield* tempDir
          const ref = registry.ref("pyro/app:v1")
          const pushed = yield* pushImage(ref, {
            layers: writeLayers(dir, IMAGE_LAYERS),
            config: { env: ["PATH=/bin", "A=1"], entrypoint: ["/bin/tool"], cmd: ["--help"], workingDir: "/app", user: "1000:1000" }
          })
          const pulled = yield* pullImage(ref, { blobDir: Path.join(dir, "cache") })
          if (pulled.kind !== "container") throw new Error(`pulled a ${pulled.kind}`)
          expect(pulled.manifestDigest).toBe(pushed.digest)
          expect(pulled.config).toEqual({
            env: ["PATH=/bin", "A=1"],
            entrypoint: ["/bin/tool"],
            cmd: ["--help"],
            workingDir: "/app",
            user: "1000:1000"
          })
          expect(pulled.layers.length).toBe(3)
          const rootfs = Path.join(dir, "rootfs")
          const result = yield* flattenLayers(pulled.layers.map((l) => ({ path: l.path, mediaType: l.mediaType, label: l.digest })), rootfs)
          expect(result.skipped).toEqual([{ layer: pulled.layers[0]!.digest, path: "dev/null", type: "character-device" }])
          expect(describeTree(rootfs)).toEqual([
            "app/ 755",
            "app/new.txt 644 \"new\"",
            "bin/ 755",
            "bin/sh -> /usr/bin/busybox",
            "bin/tool 755 \"#!/bin/sh\\necho v2\\n\"",
            "bin/tool-link 755 \"#!/bin/sh\\necho v1\\n\"",
            "dev/ 755",
            "etc/ 755",
            "etc/motd 600 \"hello\\n\"",
            "etc/os-release 644 \"ID=pyro\\n\""
          ])
        }))

      it.scoped("reads Docker v2 manifests and picks linux/amd64 from an index", () =>
        Effect.gen(function*() {
          const registry = yield* Registry
          const dir = yield* tempDir
          const [layerPath] = writeLayers(dir, [[{ type: "file", path: "arch", data: "amd64" }]])
          const amd64 = yield* pushImage(registry.ref("pyro/multi:amd64"), { layers: [layerPath!], format: "docker" })
          const [armLayer] = writeLayers(dir, [[{ type: "file", path: "arch", data: "arm64" }]])
          const arm64 = yield* pushImage(registry.ref("pyro/multi:arm64"), { layers: [armLayer!], architecture: "arm64" })

          const descriptor = (m: typeof amd64, architecture: string) => ({
            mediaType: m.mediaType,
            digest: m.digest,
            size: m.size,
            platform: { os: "linux", architecture }
          })
          const index = (manifests: ReadonlyArray<unknown>) =>
            new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }))
          const indexClient = yield* makeRegistryClient(registry.ref("pyro/multi:latest"))
          const pushedIndex = yield* putManifest(indexClient, OCI_INDEX, index([descriptor(arm64, "arm64"), descriptor(amd64, "amd64")]))

          const blobDir = Path.join(dir, "cache")
          const pulled = yield* pullImage(registry.ref("pyro/multi"), { blobDir })
          if (pulled.kind !== "container") throw new Error(`pulled a ${pulled.kind}`)
          expect(pulled.manifestDigest).toBe(amd64.digest)
          expect(pulled.indexDigest).toBe(pushedIndex.digest)
          expect(Fs.readFileSync(pulled.layers[0]!.path).equals(Fs.readFileSync(layerPath!))).toBe(true)

          const armOnly = yield* makeRegistryClient(registry.ref("pyro/multi:arm-only"))
          yield* putManifest(armOnly, OCI_INDEX, index([descriptor(arm64, "arm64")]))
          const none = yield* Effect.flip(pullImage(registry.ref("pyro/multi:arm-only"), { blobDir }))
          expect(none._tag).toBe("NoMatchingPlatform")
          expect(none.message).toContain("no linux/amd64 image (available: linux/arm64)")
          const direct = yield* Effect.flip(pullImage(registry.ref("pyro/multi:arm64"), { blobDir }))
          expect(direct._tag).toBe("NoMatchingPlatform")
        }))

      it.scoped("detects a corrupted blob and leaves nothing in the cache", () =>
        Effect.gen(function*() {
          const registry = yield* Registry
          const dir = yield* tempDir
          const [layerPath] = writeLayers(dir, [[{ type: "file", path: "data", data: "x".repeat(100_000) }]])
          const ref = registry.ref("pyro/corrupt:v1")
          yield* pushImage(ref, { layers: [layerPath!] })
          const layerDigest = sha256(Fs.readFileSync(layerPath!))
          const stored = registry.blobDataPath(layerDigest)
          const original = Fs.readFileSync(stored)
          const tampered = Buffer.from(original)
          tampered.writeUInt8(tampered.readUInt8(tampered.length - 20) ^ 0xff, tampered.length - 20)
          Fs.writeFileSync(stored, tampered)

          const blobDir = Path.join(dir, "cache")
          const error = yield* Effect.flip(pullImage(ref, { blobDir }))
          expect(error._tag).toBe("DigestMismatch")
          expect(error.message).toContain(`layer ${layerDigest}`)
          expect(error.message).toContain(ref.registry)
          const hex = layerDigest.slice("sha256:".length)
          expect(cacheFiles(blobDir).filter((f) => f.startsWith(hex))).toEqual([])
          expect(cacheFiles(blobDir).filter((f) => f.includes(".partial-"))).toEqual([])

          // Truncated in storage: fewer bytes than the manifest declares.
          Fs.writeFileSync(stored, original.subarray(0, original.length - 100))
          const truncated = yield* Effect.flip(pullImage(ref, { blobDir }))
          expect(truncated._tag).toBe("SizeMismatch")
          expect(truncated.message).toContain("truncated download")
          // Grown in storage: more bytes than declared.
          Fs.writeFileSync(stored, Buffer.concat([original, Buffer.alloc(100)]))
          const oversized = yield* Effect.flip(pullImage(ref, { blobDir }))
          expect(oversized._tag).toBe("SizeMismatch")
          expect(oversized.message).toContain("larger than its declared size")
          expect(cacheFiles(blobDir).filter((f) => f.startsWith(hex) || f.includes(".partial-"))).toEqual([])

          // Repaired: the pull succeeds; a cached copy damaged later is downloaded again.
          Fs.writeFileSync(stored, original)
          const pulled = yield* pullImage(ref, { blobDir })
          if (pulled.kind !== "container") throw new Error(`pulled a ${pulled.kind}`)
          const cached = blobPath(blobDir, layerDigest)
          Fs.writeFileSync(cached, "damaged")
          yield* pullImage(ref, { blobDir })
          expect(Fs.readFileSync(cached).equals(original)).toBe(true)
        }))

      it.scoped("removes a partial download when interrupted", () =>
        Effect.gen(function*() {
          const registry = yield* Registry
          const dir = yield* tempDir
          const layerPath = Path.join(dir, "big.tar")
          Fs.writeFileSync(layerPath, Crypto.randomBytes(8 * 1024 * 1024))
          const ref = registry.ref("pyro/interrupted:v1")
          yield* pushImage(ref, { layers: [layerPath] })
          const hex = sha256(Fs.readFileSync(layerPath)).slice("sha256:".length)

          // Hold the pull inside its first progress report of the layer, then interrupt it.
          const started = yield* Deferred.make<void>()
          const holding = Layer.succeed(Progress, {
            report: (event) =>
              event.phase === "download" && event.fields?.["layer"] === hex.slice(0, 12)
                ? Deferred.succeed(started, undefined).pipe(Effect.zipRight(Effect.never))
                : Effect.void
          })
          const blobDir = Path.join(dir, "cache")
          const fiber = yield* pullImage(ref, { blobDir }).pipe(Effect.provide(holding), Effect.fork)
          yield* Deferred.await(started)
          expect(cacheFiles(blobDir).filter((f) => f.startsWith(`${hex}.partial-`)).length).toBe(1)
          yield* Fiber.interrupt(fiber)
          expect(cacheFiles(blobDir).filter((f) => f.startsWith(hex))).toEqual([])
        }))

      it.scoped("checks a manifest pulled by digest against that digest", () =>
        Effect.gen(function*() {
          const registry = yield* Registry
          const dir = yield* tempDir
          const rootfsPath = Path.join(dir, "rootfs.ext4")
          Fs.writeFileSync(rootfsPath, "not really ext4")
          const ref = registry.ref("pyro/pinned:v1")
          const digest = yield* pushEnvironment(ref, { config: "{}", rootfsPath, blobDir: Path.join(dir, "cache") })
          // Manifests are stored as blobs too: alter one byte, keeping the JSON valid.
          const stored = registry.blobDataPath(digest)
          const text = Fs.readFileSync(stored, "utf8")
          expect(text).toContain("rootfs.ext4.gz")
          Fs.writeFileSync(stored, text.replace("rootfs.ext4.gz", "rootfX.ext4.gz"))
          const error = yield* Effect.flip(pullImage(registry.ref(`pyro/pinned@${digest}`), { blobDir: Path.join(dir, "cache") }))
          expect(error._tag).toBe("DigestMismatch")
          expect(error.message).toContain(digest)
        }))

      it.scoped("refuses manifests and configs over 4 MiB", () =>
        Effect.gen(function*() {
          const registry = yield* Registry
          const dir = yield* tempDir
          const blobDir = Path.join(dir, "cache")
          const [layerPath] = writeLayers(dir, [[{ type: "file", path: "a", data: "a" }]])
          const layerBytes = Fs.readFileSync(layerPath!)

          // A config blob declared (and stored) at 5 MiB: refused before it is downloaded.
          const ref = registry.ref("pyro/huge:config")
          const client = yield* makeRegistryClient(ref)
          const configBytes = new TextEncoder().encode(JSON.stringify({ os: "linux", pad: "x".repeat(5 * 1024 * 1024) }))
          const config = { digest: sha256(configBytes), size: configBytes.length, mediaType: OCI_CONFIG, content: { bytes: configBytes } }
          const layer = { digest: sha256(layerBytes), size: layerBytes.length, mediaType: OCI_LAYER_GZIP, content: { path: layerPath! } }
          yield* uploadBlob(client, config)
          yield* uploadBlob(client, layer)
          const descriptor = ({ digest, size, mediaType }: { digest: string; size: number; mediaType: string }) => ({ digest, size, mediaType })
          yield* putManifest(client, OCI_MANIFEST, new TextEncoder().encode(JSON.stringify({
            schemaVersion: 2,
            mediaType: OCI_MANIFEST,
            config: descriptor(config),
            layers: [descriptor(layer)]
          })))
          const tooBigConfig = yield* Effect.flip(pullImage(ref, { blobDir }))
          expect(tooBigConfig._tag).toBe("DocumentTooLarge")
          expect(tooBigConfig.message).toContain(`config ${config.digest}`)
          expect(cacheFiles(blobDir)).toEqual([])

          // (Manifests: docker-registry itself refuses to store or serve ones over 4 MiB; see the misbehaving registry below.)
        }))

      it.scoped("says clearly when an image does not exist", () =>
        Effect.gen(function*() {
          const registry = yield* Registry
          const dir = yield* tempDir
          const blobDir = Path.join(dir, "cache")
          const missingRepo = yield* Effect.flip(pullImage(registry.ref("nope/nothing:latest"), { blobDir }))
          expect(missingRepo._tag).toBe("NotFound")
          expect(missingRepo.message).toContain("image not found")
          expect(missingRepo.message).toContain(`oci://${registry.host}/nope/nothing:latest`)
          expect(missingRepo.message).toContain("HTTP 404")

          const rootfsPath = Path.join(dir, "rootfs.ext4")
          Fs.writeFileSync(rootfsPath, "x")
          yield* pushEnvironment(registry.ref("pyro/exists:v1"), { config: "{}", rootfsPath, blobDir })
          const missingTag = yield* Effect.flip(pullImage(registry.ref("pyro/exists:v2"), { blobDir }))
          expect(missingTag._tag).toBe("NotFound")
          expect(missingTag.message).toContain("MANIFEST_UNKNOWN")
          const missingDigest = yield* Effect.flip(pullImage(registry.ref(`pyro/exists@sha256:${"0".repeat(64)}`), { blobDir }))
          expect(missingDigest._tag).toBe("NotFound")
        }))

      it.scoped("pulls an image with an unsafe layer but refuses to flatten it", () =>
        Effect.gen(function*() {
          const registry = yield* Registry
          const dir = yield* tempDir
          const layers = writeLayers(dir, [
            [{ type: "symlink", path: "etc", target: "/etc" }],
            [{ type: "file", path: "etc/passwd", data: "owned" }]
          ])
          const ref = registry.ref("pyro/evil:v1")
          yield* pushImage(ref, { layers })
          const pulled = yield* pullImage(ref, { blobDir: Path.join(dir, "cache") })
          if (pulled.kind !== "container") throw new Error(`pulled a ${pulled.kind}`)
          const error = yield* Effect.flip(flattenLayers(pulled.layers.map((l) => ({ ...l, label: l.digest })), Path.join(dir, "rootfs")))
          expect(error._tag).toBe("UnsafeArchiveEntry")
          expect(error.message).toContain("etc/passwd")
          expect(error.message).toContain(pulled.layers[1]!.digest)
        }))
    }
  )
})

/**
 * What docker-registry cannot be made to do: stall, or send oversized and
 * malformed manifests. A few lines of node:http play that registry.
 */
const misbehavingRegistry = Effect.gen(function*() {
  const routes: Record<string, (res: Http.ServerResponse) => void> = {
    "/v2/": (res) => res.end("{}"),
    "/v2/bad/chunked/manifests/v1": (res) => {
      res.writeHead(200, { "content-type": OCI_MANIFEST })
      const chunk = Buffer.alloc(1024 * 1024, 0x20)
      for (let i = 0; i < 5; i++) res.write(chunk)
      res.end("{}")
    },
    "/v2/bad/declared/manifests/v1": (res) => {
      res.writeHead(200, { "content-type": OCI_MANIFEST, "content-length": String(5 * 1024 * 1024) })
      res.write("{")
    },
    "/v2/bad/schema/manifests/v1": (res) => {
      res.writeHead(200, { "content-type": OCI_MANIFEST })
      res.end(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: "md5:abc", size: 1 }, layers: [] }))
    },
    "/v2/bad/html/manifests/v1": (res) => {
      res.writeHead(200, { "content-type": "text/html" })
      res.end("<html>hello</html>")
    },
    "/v2/bad/v1/manifests/v1": (res) => {
      res.writeHead(200, { "content-type": "application/vnd.docker.distribution.manifest.v1+prettyjws" })
      res.end(JSON.stringify({ schemaVersion: 1, name: "bad/v1", tag: "v1", fsLayers: [] }))
    },
    "/v2/bad/slow/manifests/v1": () => {
      // never answers
    }
  }
  const server = Http.createServer((req, res) => {
    const route = routes[req.url ?? ""]
    if (route) route(res)
    else res.writeHead(404).end()
  })
  const port = yield* Effect.acquireRelease(
    Effect.async<number>((resume) => {
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        resume(Effect.succeed(typeof address === "object" && address ? address.port : 0))
      })
    }),
    () =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )
  return (repo: string) => Either.getOrThrow(parseReference(`oci://127.0.0.1:${port}/${repo}:v1`))
})

describe("a misbehaving registry", () => {
  layer(Layer.merge(RecordingProgress, asOperator), { excludeTestServices: true })("is met with clear errors", (it) => {
    it.scoped("for manifests over 4 MiB, whether declared or streamed", () =>
      Effect.gen(function*() {
        const ref = yield* misbehavingRegistry
        for (const repo of ["bad/chunked", "bad/declared"]) {
          const error = yield* Effect.flip(pullImage(ref(repo), { blobDir: "/nonexistent" }))
          expect(error._tag).toBe("DocumentTooLarge")
          expect(error.message).toContain("4194304-byte limit")
        }
      }))

    it.scoped("for malformed manifests", () =>
      Effect.gen(function*() {
        const ref = yield* misbehavingRegistry
        const schema = yield* Effect.flip(pullImage(ref("bad/schema"), { blobDir: "/nonexistent" }))
        expect(schema._tag).toBe("InvalidDocument")
        expect(schema.message).toContain("sha256")
        const html = yield* Effect.flip(pullImage(ref("bad/html"), { blobDir: "/nonexistent" }))
        expect(html._tag).toBe("InvalidDocument")
        const v1 = yield* Effect.flip(pullImage(ref("bad/v1"), { blobDir: "/nonexistent" }))
        expect(v1._tag).toBe("UnsupportedMediaType")
        expect(v1.message).toContain("manifest.v1+prettyjws")
      }))

    it.scoped("for a registry that never answers", () =>
      Effect.gen(function*() {
        const ref = yield* misbehavingRegistry
        const error = yield* Effect.flip(pullImage(ref("bad/slow"), { blobDir: "/nonexistent", client: { requestTimeout: "300 millis" } }))
        expect(error._tag).toBe("RegistryTimeout")
        expect(error.message).toContain("did not answer within 0.3s")
        expect(error.message).toContain("/v2/bad/slow/manifests/v1")
      }))
  })
})
