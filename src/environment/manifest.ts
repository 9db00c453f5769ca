/** environment.json: what an installed environment is, and the digest that proves its image intact. */
import * as Schema from "effect/Schema"

export const EnvironmentManifest = Schema.Struct({
  name: Schema.String,
  version: Schema.String,
  rootfs: Schema.Struct({
    file: Schema.String,
    sha256: Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/)),
    bytes: Schema.Int.pipe(Schema.positive())
  }),
  packages: Schema.Array(Schema.String),
  source: Schema.String,
  builtAt: Schema.String
})
export type EnvironmentManifest = typeof EnvironmentManifest.Type

export const MANIFEST_FILE = "environment.json"
export const ROOTFS_FILE = "rootfs.ext4"

export const decodeManifest = Schema.decodeUnknown(Schema.parseJson(EnvironmentManifest))
export const encodeManifest = Schema.encode(Schema.parseJson(EnvironmentManifest, { space: 2 }))
