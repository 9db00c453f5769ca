/**
 * Environments from OCI registries. A pyro environment artifact (pushed with
 * `pyro env push`) is its ext4 image and manifest, installed as they are; any
 * other container image is flattened (whiteouts honoured) into a tree and
 * made into an image here. Neither carries pyro's agent: it comes from the
 * initramfs at boot.
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { withTempDir } from "../host/files.js"
import { shortDigest } from "../oci/digest.js"
import { flattenLayers } from "../oci/flatten.js"
import { type ContainerImage, gunzipTo, type PyroEnvironmentImage } from "../oci/pull.js"
import { type Progress, report } from "../services/Progress.js"
import { imageFromTree } from "./build.js"
import { installedPackages } from "./debian.js"
import { writeManifestFor } from "./install.js"
import { decodeManifestValue, encodeManifest, KERNEL_PAIRING, MANIFEST_FILE, ROOTFS_FILE } from "./manifest.js"

export const OCI_PREFIX = "oci://"
export const isOciName = (name: string) => name.startsWith(OCI_PREFIX)

/** Downloaded blobs, kept so a re-pull of the same image is quick; `pyro env prune` clears them. */
export const ociBlobDir = (cacheDir: string) => Path.join(cacheDir, "oci", "blobs")


/** A pushed pyro environment: its image, checked against the digest in its own manifest. */
export const installEnvironmentArtifact = (
  image: PyroEnvironmentImage,
  reference: string,
  dir: string,
  /** The name it is installed as: the reference, or the catalog name it was published for. */
  name: string
) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const manifest = yield* decodeManifestValue(image.config).pipe(
      Effect.mapError((e) => new Error(`${reference} is not a valid pyro environment: ${e.message}`))
    )
    yield* report({ scope: "pull", phase: "unpack", fields: { environment: reference } })
    yield* gunzipTo(image.rootfsBlob, Path.join(dir, ROOTFS_FILE), manifest.rootfs.sha256)
    yield* fs.writeFileString(
      Path.join(dir, MANIFEST_FILE),
      yield* encodeManifest({
        ...manifest,
        name,
        rootfs: { ...manifest.rootfs, file: ROOTFS_FILE },
        source: `pulled ${reference}@${image.manifestDigest} (${manifest.source})`
      })
    )
    return manifest
  })

/** Any container image: layers flattened into a tree, then an ext4 image of it. */
export const installContainerImage = (
  image: ContainerImage,
  reference: string,
  dir: string
): Effect.Effect<void, unknown, FileSystem.FileSystem | CommandExecutor.CommandExecutor | Progress> =>
  withTempDir(Path.dirname(dir), "tree", (tree) =>
    Effect.gen(function*() {
      yield* report({ scope: "pull", phase: "flatten", fields: { environment: reference, layers: image.layers.length } })
      const { skipped } = yield* flattenLayers(
        image.layers.map((l) => ({ path: l.path, mediaType: l.mediaType, label: l.digest })),
        tree
      )
      // The agent works in /workspace; every environment has one.
      Fs.mkdirSync(Path.join(tree, "workspace"), { recursive: true })
      yield* report({ scope: "pull", phase: "image", fields: { environment: reference } })
      yield* imageFromTree(tree, Path.join(dir, ROOTFS_FILE), `${reference}@${image.manifestDigest}`)
      const packages = Fs.existsSync(Path.join(tree, "var/lib/dpkg/status"))
        ? yield* installedPackages(tree).pipe(Effect.orElseSucceed(() => []))
        : []
      const osRelease = readOsRelease(tree)
      yield* writeManifestFor(dir, {
        name: reference,
        version: shortDigest(image.manifestDigest),
        description: `Container image ${reference}${osRelease.PRETTY_NAME ? ` (${osRelease.PRETTY_NAME})` : ""}`,
        distribution: osRelease.ID ?? "unknown",
        distribution_version: osRelease.VERSION_ID ?? "",
        platform: "linux-x86_64",
        default_packages: [],
        packages,
        kernel: KERNEL_PAIRING,
        source: `pulled ${reference}@${image.manifestDigest}`,
        image: {
          reference,
          manifest_digest: image.manifestDigest,
          env: image.config.env,
          entrypoint: image.config.entrypoint,
          cmd: image.config.cmd,
          working_dir: image.config.workingDir,
          user: image.config.user,
          skipped_entries: skipped.map((s) => `${s.path} (${s.type})`)
        }
      }, ROOTFS_FILE)
    }))

/** /etc/os-release of a tree (following its usual symlink to /usr/lib/os-release by hand). */
const readOsRelease = (tree: string): Record<string, string> => {
  for (const candidate of ["etc/os-release", "usr/lib/os-release"]) {
    try {
      const path = Path.join(tree, candidate)
      if (Fs.lstatSync(path).isSymbolicLink()) continue
      const fields: Record<string, string> = {}
      for (const line of Fs.readFileSync(path, "utf8").split("\n")) {
        const m = /^([A-Z_]+)=("?)(.*)\2$/.exec(line.trim())
        if (m) fields[m[1]!] = m[3]!
      }
      return fields
    } catch {
      // next
    }
  }
  return {}
}
