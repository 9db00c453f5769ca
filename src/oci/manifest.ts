/**
 * Manifests and indexes: fetching them (bounded, digest computed and checked
 * when pinned), validating them with Schema, and picking the linux/amd64
 * image out of an index. Accepts OCI image index and manifest, Docker v2
 * schema 2 manifest and manifest list.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { RegistryClient } from "./client.js"
import { Sha256Digest } from "./digest.js"
import { DigestMismatch, InvalidDocument, NoMatchingPlatform, UnsupportedMediaType } from "./errors.js"
import { sha256 } from "../host/files.js"
import {
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  INDEX_TYPES,
  MANIFEST_TYPES,
  OCI_INDEX,
  OCI_MANIFEST
} from "./mediaTypes.js"
import { manifestReference } from "./reference.js"

/** Manifests, indexes and configs are small; anything bigger is refused before it is read. */
export const MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
const MAX_ENTRIES = 4096

const Size = Schema.Number.pipe(Schema.int(), Schema.between(0, Number.MAX_SAFE_INTEGER))
const Annotations = Schema.Record({ key: Schema.String, value: Schema.String })

export const Platform = Schema.Struct({
  architecture: Schema.String,
  os: Schema.String,
  variant: Schema.optional(Schema.String)
})

export const Descriptor = Schema.Struct({
  mediaType: Schema.String,
  digest: Sha256Digest,
  size: Size,
  urls: Schema.optional(Schema.Array(Schema.String)),
  annotations: Schema.optional(Annotations),
  platform: Schema.optional(Platform),
  artifactType: Schema.optional(Schema.String)
})
export type Descriptor = typeof Descriptor.Type

export const ImageManifest = Schema.Struct({
  schemaVersion: Schema.Literal(2),
  mediaType: Schema.optional(Schema.String),
  artifactType: Schema.optional(Schema.String),
  config: Descriptor,
  layers: Schema.Array(Descriptor).pipe(Schema.maxItems(MAX_ENTRIES)),
  annotations: Schema.optional(Annotations)
})
export type ImageManifest = typeof ImageManifest.Type

export const ImageIndex = Schema.Struct({
  schemaVersion: Schema.Literal(2),
  mediaType: Schema.optional(Schema.String),
  manifests: Schema.Array(Descriptor).pipe(Schema.maxItems(MAX_ENTRIES)),
  annotations: Schema.optional(Annotations)
})
export type ImageIndex = typeof ImageIndex.Type

/** Just enough to tell an index from a manifest. */
const Envelope = Schema.Struct({
  schemaVersion: Schema.optional(Schema.Unknown),
  mediaType: Schema.optional(Schema.String),
  manifests: Schema.optional(Schema.Unknown),
  config: Schema.optional(Schema.Unknown)
})

export type FetchedManifest =
  | { readonly kind: "manifest"; readonly digest: string; readonly mediaType: string; readonly manifest: ImageManifest }
  | { readonly kind: "index"; readonly digest: string; readonly mediaType: string; readonly index: ImageIndex }

const ACCEPT = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST].join(", ")

/** Decode JSON text with `schema`, failing with InvalidDocument naming `what`. */
export const decodeDocument = <A, I>(
  schema: Schema.Schema<A, I>,
  bytes: Uint8Array,
  reference: string,
  what: string
): Effect.Effect<A, InvalidDocument> => {
  const invalid = (detail: string) => new InvalidDocument({ reference, what, detail })
  let text: string
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes)
  } catch {
    return Effect.fail(invalid("not UTF-8 text"))
  }
  const decoded = Schema.decodeUnknownEither(Schema.parseJson(schema))(text)
  return Either.isRight(decoded)
    ? Effect.succeed(decoded.right)
    : Effect.fail(invalid(ParseResult.TreeFormatter.formatErrorSync(decoded.left).split("\n").slice(0, 6).join(" ")))
}

/**
 * GET a manifest or index by tag or digest. The digest of the bytes received
 * is always computed; when `ref` is a digest it must match.
 */
export const fetchManifest = (client: RegistryClient, ref: string) =>
  Effect.gen(function*() {
    const what = ref.startsWith("sha256:") ? `manifest ${ref}` : "manifest"
    const request = {
      method: "GET",
      url: client.repoPath(`/manifests/${ref}`),
      access: "pull",
      headers: { accept: ACCEPT }
    } as const
    const response = yield* client.send(request)
    if (response.status !== 200) {
      return yield* client.unexpected(request, response, ref.startsWith("sha256:") ? `manifest ${ref}` : "image")
    }
    const contentType = (response.headers.get("content-type") ?? "").split(";")[0]!.trim()
    const bytes = yield* client.readBody(request, response, MAX_DOCUMENT_BYTES, what)
    const digest = `sha256:${sha256(bytes)}`
    if (ref.startsWith("sha256:") && digest !== ref) {
      return yield* new DigestMismatch({ reference: client.label, what, expected: ref, actual: digest })
    }
    const envelope = yield* decodeDocument(Envelope, bytes, client.label, what)
    const mediaType = envelope.mediaType ?? contentType
    const isIndex = INDEX_TYPES.includes(mediaType) ||
      (!MANIFEST_TYPES.includes(mediaType) && envelope.manifests !== undefined && envelope.config === undefined)
    const isManifest = MANIFEST_TYPES.includes(mediaType) ||
      (!INDEX_TYPES.includes(mediaType) && envelope.config !== undefined && envelope.manifests === undefined)
    if (isIndex) {
      const index = yield* decodeDocument(ImageIndex, bytes, client.label, `image index ${digest}`)
      return { kind: "index", digest, mediaType: mediaType || OCI_INDEX, index } satisfies FetchedManifest
    }
    if (isManifest) {
      const manifest = yield* decodeDocument(ImageManifest, bytes, client.label, `image manifest ${digest}`)
      return { kind: "manifest", digest, mediaType: mediaType || OCI_MANIFEST, manifest } satisfies FetchedManifest
    }
    return yield* new UnsupportedMediaType({
      reference: client.label,
      mediaType: mediaType || "(none)",
      detail: "not an OCI or Docker v2 manifest or index"
    })
  })

export interface ResolvedManifest {
  readonly digest: string
  readonly mediaType: string
  readonly manifest: ImageManifest
  /** Set when the reference named an index and the manifest was picked from it. */
  readonly indexDigest: string | undefined
}

export interface WantedPlatform {
  readonly os: string
  readonly architecture: string
}

export const LINUX_AMD64: WantedPlatform = { os: "linux", architecture: "amd64" }

const describePlatform = (d: Descriptor) =>
  d.platform ? `${d.platform.os}/${d.platform.architecture}${d.platform.variant ? `/${d.platform.variant}` : ""}` : "unspecified"

/** The image manifest `client.reference` names, picking `platform` from an index. */
export const resolveManifest = (client: RegistryClient, platform: WantedPlatform = LINUX_AMD64) =>
  Effect.gen(function*() {
    const top = yield* fetchManifest(client, manifestReference(client.reference))
    if (top.kind === "manifest") {
      return { digest: top.digest, mediaType: top.mediaType, manifest: top.manifest, indexDigest: undefined } satisfies ResolvedManifest
    }
    const candidates = top.index.manifests.filter((d) =>
      d.platform?.os === platform.os && d.platform.architecture === platform.architecture &&
      !INDEX_TYPES.includes(d.mediaType)
    )
    const chosen = candidates[0]
    if (!chosen) {
      return yield* new NoMatchingPlatform({
        reference: client.label,
        wanted: `${platform.os}/${platform.architecture}`,
        available: [...new Set(top.index.manifests.map(describePlatform))]
      })
    }
    const child = yield* fetchManifest(client, chosen.digest)
    if (child.kind !== "manifest") {
      return yield* new InvalidDocument({
        reference: client.label,
        what: `image index ${top.digest}`,
        detail: `entry ${chosen.digest} for ${describePlatform(chosen)} is itself an index`
      })
    }
    return { digest: child.digest, mediaType: child.mediaType, manifest: child.manifest, indexDigest: top.digest } satisfies ResolvedManifest
  })
