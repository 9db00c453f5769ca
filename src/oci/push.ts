/**
 * Publishing to a registry: a pyro environment artifact (environment.json as
 * config, the ext4 rootfs gzipped as its single layer), or an ordinary
 * container image made of tar layers. Blobs the registry already has are
 * skipped; others go up as monolithic uploads (POST, then PUT ?digest=).
 */
import * as Effect from "effect/Effect"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as FsP from "node:fs/promises"
import * as Path from "node:path"
import { Transform, Writable } from "node:stream"
import * as StreamP from "node:stream/promises"
import * as Zlib from "node:zlib"
import { blobPath, hashFile } from "./blobs.js"
import { makeRegistryClient, type RegistryClient, type RegistryClientOptions, type RequestError } from "./client.js"
import { shortDigest } from "./digest.js"
import {
  DigestMismatch,
  InvalidArchive,
  InvalidDocument,
  type NotFound,
  OciIoError,
  type RegistryHttpError,
  RegistryProtocolError
} from "./errors.js"
import { io, ioAbortable, partialPath } from "./io.js"
import {
  DOCKER_CONFIG,
  DOCKER_LAYER_GZIP,
  DOCKER_MANIFEST,
  OCI_CONFIG,
  OCI_LAYER_GZIP,
  OCI_LAYER_TAR,
  OCI_MANIFEST,
  PYRO_ARTIFACT,
  PYRO_CONFIG,
  PYRO_ROOTFS,
  PYRO_ROOTFS_UNCOMPRESSED_DIGEST
} from "./mediaTypes.js"
import { formatReference, type ImageReference } from "./reference.js"
import { sha256 } from "../host/files.js"
import { type Progress, report } from "../services/Progress.js"

export interface BlobSource {
  readonly digest: string
  readonly size: number
  readonly mediaType: string
  /** A file, or bytes in memory (configs). */
  readonly content: { readonly path: string } | { readonly bytes: Uint8Array }
  readonly annotations?: Readonly<Record<string, string>>
}

export interface PushedManifest {
  readonly digest: string
  readonly mediaType: string
  readonly size: number
}

/** Upload a blob unless the registry already has it. */
export const uploadBlob = (client: RegistryClient, blob: BlobSource) =>
  Effect.gen(function*() {
    const what = `blob ${blob.digest}`
    const head = { method: "HEAD", url: client.repoPath(`/blobs/${blob.digest}`), access: "push" } as const
    const existing = yield* client.send(head)
    yield* client.discard(existing)
    if (existing.status === 200) {
      yield* report({ scope: "push", phase: "exists", fields: { blob: shortDigest(blob.digest) } })
      return
    }
    if (existing.status !== 404) return yield* client.unexpected(head, existing, what)

    yield* report({ scope: "push", phase: "upload", fields: { blob: shortDigest(blob.digest), bytes: blob.size } })
    const start = { method: "POST", url: client.repoPath("/blobs/uploads/"), access: "push", headers: { "content-length": "0" } } as const
    const started = yield* client.send(start)
    if (started.status !== 202) return yield* client.unexpected(start, started, what)
    const location = started.headers.get("location")
    yield* client.discard(started)
    if (!location) return yield* new RegistryProtocolError({ reference: client.label, detail: "upload started without a Location" })
    // Location may be absolute or relative to the URL that was POSTed.
    const target = yield* Effect.try({
      try: () => new URL(location, new URL(start.url, client.baseUrl)),
      catch: () => new RegistryProtocolError({ reference: client.label, detail: `invalid upload Location "${location}"` })
    })
    target.searchParams.set("digest", blob.digest)

    const content = blob.content
    const body = "bytes" in content ? content.bytes : yield* io("open", content.path, () => Fs.openAsBlob(content.path))
    const bodySize = body instanceof Uint8Array ? body.byteLength : body.size
    if (bodySize !== blob.size) {
      const path = "path" in content ? content.path : what
      return yield* new OciIoError({ op: "upload", path, cause: new Error(`size changed from ${blob.size} to ${bodySize} bytes`) })
    }
    const put = {
      method: "PUT",
      url: target.href,
      access: "push",
      headers: { "content-type": "application/octet-stream" },
      body
    } as const
    const done = yield* client.send(put)
    if (done.status !== 201 && done.status !== 204) return yield* client.unexpected(put, done, what)
    yield* client.discard(done)
  })

/** PUT a manifest (or index) under `ref`'s tag, or its digest when it has no tag. */
export const putManifest = (client: RegistryClient, mediaType: string, bytes: Uint8Array) =>
  Effect.gen(function*() {
    const digest = `sha256:${sha256(bytes)}`
    const ref = client.reference
    if (ref.digest !== undefined && ref.digest !== digest) {
      return yield* new DigestMismatch({ reference: client.label, what: "manifest to push", expected: ref.digest, actual: digest })
    }
    const request = {
      method: "PUT",
      url: client.repoPath(`/manifests/${ref.tag ?? digest}`),
      access: "push",
      headers: { "content-type": mediaType },
      body: bytes
    } as const
    const response = yield* client.send(request)
    if (response.status !== 201 && response.status !== 200) return yield* client.unexpected(request, response, "manifest")
    yield* client.discard(response)
    return { digest, mediaType, size: bytes.byteLength } satisfies PushedManifest
  })

const descriptor = (blob: BlobSource) => ({
  mediaType: blob.mediaType,
  digest: blob.digest,
  size: blob.size,
  ...(blob.annotations ? { annotations: blob.annotations } : {})
})

const encodeJson = (value: unknown) => new TextEncoder().encode(JSON.stringify(value))

const bytesBlob = (mediaType: string, bytes: Uint8Array): BlobSource => ({
  digest: `sha256:${sha256(bytes)}`,
  size: bytes.byteLength,
  mediaType,
  content: { bytes }
})

/** A pass-through stream feeding a hash and a byte count. */
const hashing = (hash: Crypto.Hash, count?: { bytes: number }) =>
  new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk)
      if (count) count.bytes += chunk.length
      callback(null, chunk)
    }
  })

/**
 * Gzip `source` into the blob cache (streamed; the temp file is removed on
 * failure). Returns the compressed blob and the digest of the uncompressed input.
 */
export const gzipIntoCache = (source: string, blobDir: string) =>
  Effect.gen(function*() {
    const dir = Path.join(blobDir, "sha256")
    yield* io("mkdir", dir, () => FsP.mkdir(dir, { recursive: true }))
    const tmp = partialPath(Path.join(dir, "gzip"))
    const inHash = Crypto.createHash("sha256")
    const outHash = Crypto.createHash("sha256")
    const out = { bytes: 0 }
    const written = yield* ioAbortable("gzip", source, async (signal) => {
      await StreamP.pipeline(
        Fs.createReadStream(source),
        hashing(inHash),
        Zlib.createGzip({ level: 6 }),
        hashing(outHash, out),
        Fs.createWriteStream(tmp, { flags: "wx", mode: 0o644 }),
        { signal }
      )
      const handle = await FsP.open(tmp, "r+")
      await handle.sync().finally(() => handle.close())
      const digest = `sha256:${outHash.digest("hex")}`
      const target = blobPath(blobDir, digest)
      await FsP.rename(tmp, target)
      return { path: target, digest, size: out.bytes, uncompressedDigest: `sha256:${inHash.digest("hex")}` }
    }).pipe(Effect.onExit((exit) => exit._tag === "Failure" ? Effect.promise(() => FsP.rm(tmp, { force: true })) : Effect.void))
    return written
  })

/** sha256 of a gzip file's decompressed content (an image config's diff_id). */
const gunzipDigest = (path: string) =>
  ioAbortable("gunzip", path, async (signal) => {
    const hash = Crypto.createHash("sha256")
    await StreamP.pipeline(Fs.createReadStream(path), Zlib.createGunzip(), hashing(hash), new Writable({
      write(_chunk, _encoding, callback) {
        callback()
      }
    }), { signal })
    return `sha256:${hash.digest("hex")}`
  }).pipe(
    Effect.mapError((e) =>
      new InvalidArchive({ layer: path, detail: `cannot decompress: ${e.cause instanceof Error ? e.cause.message : String(e.cause)}` })
    )
  )

export interface PushEnvironmentOptions {
  /** environment.json text: the artifact's config blob. */
  readonly config: string
  /** The ext4 image; gzipped on the way. */
  readonly rootfsPath: string
  /** The blob cache, where the compressed rootfs is kept. */
  readonly blobDir: string
  readonly client?: RegistryClientOptions
}

/** Publish a pyro environment artifact; returns the manifest digest. */
export type PushError =
  | RequestError
  | NotFound
  | RegistryHttpError
  | RegistryProtocolError
  | DigestMismatch
  | InvalidDocument
  | InvalidArchive
  | OciIoError

export const pushEnvironment: (
  ref: ImageReference,
  options: PushEnvironmentOptions
) => Effect.Effect<string, PushError, Progress> = Effect.fn("oci.pushEnvironment")(function*(ref: ImageReference, options: PushEnvironmentOptions) {
  const label = formatReference(ref)
  const configBytes = new TextEncoder().encode(options.config)
  yield* Effect.try({
    try: () => JSON.parse(options.config) as unknown,
    catch: () => new InvalidDocument({ reference: label, what: "environment config", detail: "not valid JSON" })
  })
  const client = yield* makeRegistryClient(ref, options.client)
  yield* report({ scope: "push", phase: "compress", fields: { file: Path.basename(options.rootfsPath) } })
  const gz = yield* gzipIntoCache(options.rootfsPath, options.blobDir)
  const config = bytesBlob(PYRO_CONFIG, configBytes)
  const rootfs: BlobSource = {
    digest: gz.digest,
    size: gz.size,
    mediaType: PYRO_ROOTFS,
    content: { path: gz.path },
    annotations: {
      "org.opencontainers.image.title": `${Path.basename(options.rootfsPath)}.gz`,
      [PYRO_ROOTFS_UNCOMPRESSED_DIGEST]: gz.uncompressedDigest
    }
  }
  yield* uploadBlob(client, config)
  yield* uploadBlob(client, rootfs)
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: PYRO_ARTIFACT,
    config: descriptor(config),
    layers: [descriptor(rootfs)]
  }
  const pushed = yield* putManifest(client, OCI_MANIFEST, encodeJson(manifest))
  return pushed.digest
})

export interface PushImageOptions {
  /** Layer files, bottom first: tar or tar+gzip (told apart by content). */
  readonly layers: ReadonlyArray<string>
  readonly config?: {
    readonly env?: ReadonlyArray<string>
    readonly entrypoint?: ReadonlyArray<string>
    readonly cmd?: ReadonlyArray<string>
    readonly workingDir?: string
    readonly user?: string
  }
  /** OCI image manifest (default) or Docker v2 schema 2 (gzip layers only). */
  readonly format?: "oci" | "docker"
  /** Written into the image config. Default amd64. */
  readonly architecture?: string
  readonly client?: RegistryClientOptions
}

const isGzipFile = (path: string) =>
  io("read", path, async () => {
    const handle = await FsP.open(path, "r")
    try {
      const magic = new Uint8Array(2)
      const { bytesRead } = await handle.read(magic, 0, 2, 0)
      return bytesRead === 2 && magic[0] === 0x1f && magic[1] === 0x8b
    } finally {
      await handle.close()
    }
  })

/** Publish an ordinary container image built from layer files. */
export const pushImage: (
  ref: ImageReference,
  options: PushImageOptions
) => Effect.Effect<PushedManifest, PushError, Progress> = Effect.fn("oci.pushImage")(function*(ref: ImageReference, options: PushImageOptions) {
  const docker = options.format === "docker"
  const client = yield* makeRegistryClient(ref, options.client)
  const layers: Array<BlobSource> = []
  const diffIds: Array<string> = []
  for (const path of options.layers) {
    const gzip = yield* isGzipFile(path)
    if (docker && !gzip) {
      return yield* new InvalidArchive({ layer: path, detail: "Docker v2 manifests need gzip-compressed layers" })
    }
    const { digest, size } = yield* hashFile(path)
    diffIds.push(gzip ? yield* gunzipDigest(path) : digest)
    layers.push({
      digest,
      size,
      mediaType: gzip ? (docker ? DOCKER_LAYER_GZIP : OCI_LAYER_GZIP) : OCI_LAYER_TAR,
      content: { path }
    })
  }
  const c = options.config ?? {}
  const imageConfig = {
    architecture: options.architecture ?? "amd64",
    os: "linux",
    config: {
      ...(c.env ? { Env: c.env } : {}),
      ...(c.entrypoint ? { Entrypoint: c.entrypoint } : {}),
      ...(c.cmd ? { Cmd: c.cmd } : {}),
      ...(c.workingDir ? { WorkingDir: c.workingDir } : {}),
      ...(c.user ? { User: c.user } : {})
    },
    rootfs: { type: "layers", diff_ids: diffIds }
  }
  const config = bytesBlob(docker ? DOCKER_CONFIG : OCI_CONFIG, encodeJson(imageConfig))
  yield* uploadBlob(client, config)
  for (const layer of layers) yield* uploadBlob(client, layer)
  const mediaType = docker ? DOCKER_MANIFEST : OCI_MANIFEST
  const manifest = {
    schemaVersion: 2,
    mediaType,
    config: descriptor(config),
    layers: layers.map(descriptor)
  }
  return yield* putManifest(client, mediaType, encodeJson(manifest))
})
