/**
 * environment.json: what an installed environment is, where it came from, and
 * the digest that proves its image intact. Written last, after the image, so
 * an install without it is unfinished by definition.
 */
import * as Schema from "effect/Schema"

const Sha256Hex = Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/))

/** For environments made from a container image: what the image says about running it. */
export const ImageFacts = Schema.Struct({
  reference: Schema.String,
  manifest_digest: Schema.String,
  env: Schema.Array(Schema.String),
  entrypoint: Schema.Array(Schema.String),
  cmd: Schema.Array(Schema.String),
  working_dir: Schema.String,
  user: Schema.String,
  skipped_entries: Schema.Array(Schema.String)
})
export type ImageFacts = typeof ImageFacts.Type

export const EnvironmentManifest = Schema.Struct({
  /** Bumped when the layout of this file changes. */
  format: Schema.Literal(1),
  name: Schema.String,
  version: Schema.String,
  description: Schema.String,
  distribution: Schema.String,
  distribution_version: Schema.String,
  platform: Schema.String,
  rootfs: Schema.Struct({
    file: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9._-]+$/)),
    sha256: Sha256Hex,
    bytes: Schema.Int.pipe(Schema.positive())
  }),
  /** The recipe's packages (what `default_packages` promises). */
  default_packages: Schema.Array(Schema.String),
  /** Every package installed, "name version". */
  packages: Schema.Array(Schema.String),
  /** Environments carry no kernel or agent: both come from the initramfs at boot. */
  kernel: Schema.String,
  /** "built locally (debian)", "pulled oci://...@sha256:...". */
  source: Schema.String,
  built_at: Schema.String,
  image: Schema.optional(ImageFacts)
})
export type EnvironmentManifest = typeof EnvironmentManifest.Type

export const MANIFEST_FILE = "environment.json"
export const ROOTFS_FILE = "rootfs.ext4"
/** Every environment boots the same guest kernel, whatever it was built with. */
export const KERNEL_PAIRING = "pyro guest kernel (Debian 12 linux-image-cloud-amd64) with the pyro agent initramfs"

export const decodeManifest = Schema.decodeUnknown(Schema.parseJson(EnvironmentManifest))
/** For a manifest already parsed from JSON (a registry's config blob). */
export const decodeManifestValue = Schema.decodeUnknown(EnvironmentManifest)
export const encodeManifest = Schema.encode(Schema.parseJson(EnvironmentManifest, { space: 2 }))
