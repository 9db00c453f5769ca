/**
 * Pulling an image into the blob cache: either a pyro environment artifact
 * (config + one gzipped ext4 rootfs) or an ordinary container image (config +
 * layers, ready for flattenLayers).
 */
import * as NodeStream from "@effect/platform-node/NodeStream"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as FsP from "node:fs/promises"
import * as Path from "node:path"
import * as NodeStreamLib from "node:stream"
import * as Zlib from "node:zlib"
import { fetchBlob, readBlob } from "./blobs.js"
import { makeRegistryClient, type RegistryClient, type RegistryClientOptions, type RequestError } from "./client.js"
import { SHA256_DIGEST_PATTERN } from "./digest.js"
import {
  DigestMismatch,
  type DocumentTooLarge,
  InvalidArchive,
  InvalidDocument,
  NoMatchingPlatform,
  type NotFound,
  type OciIoError,
  type RegistryHttpError,
  type SizeMismatch,
  UnsupportedMediaType
} from "./errors.js"
import { commitTempFile, io, openTempFile, partialPath, writeAll } from "./io.js"
import { decodeDocument, type Descriptor, MAX_DOCUMENT_BYTES, resolveManifest } from "./manifest.js"
import {
  IMAGE_CONFIG_TYPES,
  layerCompression,
  PYRO_ARTIFACT,
  PYRO_CONFIG,
  PYRO_ROOTFS,
  PYRO_ROOTFS_UNCOMPRESSED_DIGEST
} from "./mediaTypes.js"
import type { ImageReference } from "./reference.js"
import type { Progress } from "../services/Progress.js"

export interface PullOptions {
  /** The blob cache: blobs land in `blobDir/sha256/<hex>`. */
  readonly blobDir: string
  readonly client?: RegistryClientOptions
  /** Layers downloaded at once. Default 3. */
  readonly concurrency?: number
}

export interface PyroEnvironmentImage {
  readonly kind: "pyro-environment"
  readonly manifestDigest: string
  /** The parsed JSON of the config blob (environment.json); the caller validates it. */
  readonly config: unknown
  /** Path of the compressed rootfs blob in the cache. */
  readonly rootfsBlob: string
  readonly rootfsMediaType: string
  /** Digest of the uncompressed ext4, when the pusher annotated it. */
  readonly rootfsUncompressedDigest: string | undefined
}

export interface ContainerConfig {
  readonly env: ReadonlyArray<string>
  readonly entrypoint: ReadonlyArray<string>
  readonly cmd: ReadonlyArray<string>
  readonly workingDir: string
  readonly user: string
}

export interface ContainerLayer {
  /** Path of the layer blob in the cache. */
  readonly path: string
  readonly mediaType: string
  readonly digest: string
  readonly size: number
}

export interface ContainerImage {
  readonly kind: "container"
  /** Digest of the image manifest used (the platform's, when the reference named an index). */
  readonly manifestDigest: string
  /** Digest of the index the manifest was picked from, if any. */
  readonly indexDigest: string | undefined
  readonly config: ContainerConfig
  /** Bottom layer first. */
  readonly layers: ReadonlyArray<ContainerLayer>
}

export type PulledImage = PyroEnvironmentImage | ContainerImage

const StringList = Schema.optional(Schema.NullOr(Schema.Array(Schema.String)))

/** The parts of an OCI / Docker image config pyro uses. */
export const ImageConfig = Schema.Struct({
  architecture: Schema.optional(Schema.String),
  os: Schema.optional(Schema.String),
  config: Schema.optional(Schema.NullOr(Schema.Struct({
    Env: StringList,
    Entrypoint: StringList,
    Cmd: StringList,
    WorkingDir: Schema.optional(Schema.NullOr(Schema.String)),
    User: Schema.optional(Schema.NullOr(Schema.String))
  })))
})

const fetchConfig = (client: RegistryClient, descriptor: Descriptor, blobDir: string) =>
  Effect.gen(function*() {
    const path = yield* fetchBlob(client, descriptor, { blobDir, maxSize: MAX_DOCUMENT_BYTES, what: "config" })
    return yield* readBlob(path)
  })

const pullEnvironment = (client: RegistryClient, manifestDigest: string, manifest: { readonly config: Descriptor; readonly layers: ReadonlyArray<Descriptor> }, blobDir: string) =>
  Effect.gen(function*() {
    const what = `pyro environment manifest ${manifestDigest}`
    const rootfs = manifest.layers[0]
    if (manifest.layers.length !== 1 || !rootfs) {
      return yield* new InvalidDocument({ reference: client.label, what, detail: `expected one rootfs layer, found ${manifest.layers.length}` })
    }
    if (rootfs.mediaType !== PYRO_ROOTFS) {
      return yield* new UnsupportedMediaType({ reference: client.label, mediaType: rootfs.mediaType, detail: `expected a ${PYRO_ROOTFS} rootfs layer` })
    }
    const configBytes = yield* fetchConfig(client, manifest.config, blobDir)
    const config = yield* decodeDocument(Schema.Unknown, configBytes, client.label, `environment config ${manifest.config.digest}`)
    const rootfsBlob = yield* fetchBlob(client, rootfs, { blobDir, what: "rootfs" })
    const annotated = rootfs.annotations?.[PYRO_ROOTFS_UNCOMPRESSED_DIGEST]
    return {
      kind: "pyro-environment",
      manifestDigest,
      config,
      rootfsBlob,
      rootfsMediaType: rootfs.mediaType,
      rootfsUncompressedDigest: annotated !== undefined && SHA256_DIGEST_PATTERN.test(annotated) ? annotated : undefined
    } satisfies PyroEnvironmentImage
  })

/**
 * Resolve `ref` (picking linux/amd64 from an index), verify the manifest, and
 * bring its config and layers into the blob cache.
 */
export type PullError =
  | RequestError
  | NotFound
  | RegistryHttpError
  | DocumentTooLarge
  | InvalidDocument
  | DigestMismatch
  | SizeMismatch
  | UnsupportedMediaType
  | NoMatchingPlatform
  | OciIoError

export const pullImage: (
  ref: ImageReference,
  options: PullOptions
) => Effect.Effect<PulledImage, PullError, Progress> = Effect.fn("oci.pullImage")(function*(ref: ImageReference, options: PullOptions) {
  const client = yield* makeRegistryClient(ref, options.client)
  const resolved = yield* resolveManifest(client)
  const { manifest } = resolved
  if (manifest.artifactType === PYRO_ARTIFACT || manifest.config.mediaType === PYRO_CONFIG) {
    return yield* pullEnvironment(client, resolved.digest, manifest, options.blobDir)
  }

  if (!IMAGE_CONFIG_TYPES.includes(manifest.config.mediaType)) {
    return yield* new UnsupportedMediaType({
      reference: client.label,
      mediaType: manifest.config.mediaType,
      detail: "neither a container image nor a pyro environment"
    })
  }
  for (const layer of manifest.layers) {
    if (layerCompression(layer.mediaType) === undefined) {
      return yield* new UnsupportedMediaType({ reference: client.label, mediaType: layer.mediaType, detail: `layer ${layer.digest} is not a tar layer` })
    }
  }
  const configBytes = yield* fetchConfig(client, manifest.config, options.blobDir)
  const imageConfig = yield* decodeDocument(ImageConfig, configBytes, client.label, `image config ${manifest.config.digest}`)
  if ((imageConfig.os && imageConfig.os !== "linux") || (imageConfig.architecture && imageConfig.architecture !== "amd64")) {
    return yield* new NoMatchingPlatform({
      reference: client.label,
      wanted: "linux/amd64",
      available: [`${imageConfig.os ?? "?"}/${imageConfig.architecture ?? "?"}`]
    })
  }
  const layers = yield* Effect.forEach(
    manifest.layers,
    (layer) =>
      fetchBlob(client, layer, { blobDir: options.blobDir, what: "layer" }).pipe(
        Effect.map((path): ContainerLayer => ({ path, mediaType: layer.mediaType, digest: layer.digest, size: layer.size }))
      ),
    { concurrency: options.concurrency ?? 3 }
  )
  const c = imageConfig.config
  return {
    kind: "container",
    manifestDigest: resolved.digest,
    indexDigest: resolved.indexDigest,
    config: {
      env: c?.Env ?? [],
      entrypoint: c?.Entrypoint ?? [],
      cmd: c?.Cmd ?? [],
      workingDir: c?.WorkingDir ?? "",
      user: c?.User ?? ""
    },
    layers
  } satisfies ContainerImage
})

const SPARSE_BLOCK = 4096

const isZero = (bytes: Uint8Array) => {
  for (let i = 0; i < bytes.byteLength; i++) if (bytes[i] !== 0) return false
  return true
}

/**
 * Decompress a gzip blob (a pyro rootfs) to `dest`, atomically, checking the
 * sha256 of the output against `expectedSha256` (`sha256:<hex>` or bare hex).
 * All-zero 4 KiB blocks are left as holes, so an ext4 image stays sparse.
 */
export const gunzipTo = (blob: string, dest: string, expectedSha256: string) =>
  Effect.scoped(Effect.gen(function*() {
    const expected = expectedSha256.startsWith("sha256:") ? expectedSha256 : `sha256:${expectedSha256}`
    yield* io("mkdir", Path.dirname(dest), () => FsP.mkdir(Path.dirname(dest), { recursive: true }))
    const tmp = partialPath(dest)
    const file = yield* openTempFile(tmp)
    const hash = Crypto.createHash("sha256")
    let position = 0
    const writeChunk = (chunk: Uint8Array): Effect.Effect<void, OciIoError> =>
      Effect.gen(function*() {
        hash.update(chunk)
        // Write the non-zero runs of SPARSE_BLOCK-aligned blocks; skip the zero ones.
        let offset = 0
        let runStart = -1
        while (offset < chunk.byteLength) {
          const blockEnd = Math.min(chunk.byteLength, offset + SPARSE_BLOCK - ((position + offset) % SPARSE_BLOCK))
          const zero = isZero(chunk.subarray(offset, blockEnd))
          if (!zero && runStart < 0) runStart = offset
          if (zero && runStart >= 0) {
            yield* writeAll(file.handle, tmp, chunk.subarray(runStart, offset), position + runStart)
            runStart = -1
          }
          offset = blockEnd
        }
        if (runStart >= 0) yield* writeAll(file.handle, tmp, chunk.subarray(runStart), position + runStart)
        position += chunk.byteLength
      })
    yield* NodeStream.fromReadable(
      () => NodeStreamLib.pipeline(Fs.createReadStream(blob), Zlib.createGunzip(), () => undefined),
      (error) =>
        new InvalidArchive({ layer: blob, detail: `cannot decompress: ${error instanceof Error ? error.message : String(error)}` })
    ).pipe(Stream.runForEach(writeChunk))
    yield* io("truncate", tmp, () => file.handle.truncate(position))
    const actual = `sha256:${hash.digest("hex")}`
    if (actual !== expected) {
      return yield* new DigestMismatch({ reference: blob, what: "decompressed rootfs", expected, actual })
    }
    yield* commitTempFile(file, tmp, dest)
  }))
