/**
 * Building a catalog environment locally: a root tree from its recipe, then a
 * read-only ext4 image of it and the manifest, all inside `dir` (which the
 * caller renames into place only when this succeeds).
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { withTempDir } from "../host/files.js"
import { type Progress, report } from "../services/Progress.js"
import { buildBusyboxTree } from "./busybox.js"
import { cacheName, type CatalogEntry } from "./catalog.js"
import { buildDebianTree } from "./debian.js"
import { makeRootImage } from "./ext4.js"
import { writeManifestFor } from "./install.js"
import { KERNEL_PAIRING, ROOTFS_FILE } from "./manifest.js"

/** Bytes and entries in a tree, counting each symlink as itself. */
export const treeSize = (root: string) =>
  Effect.sync(() => {
    let bytes = 0
    let entries = 0
    const walk = (dir: string) => {
      for (const entry of Fs.readdirSync(dir, { withFileTypes: true })) {
        const full = Path.join(dir, entry.name)
        bytes += Fs.lstatSync(full).size + 4096
        entries += 1
        if (entry.isDirectory()) walk(full)
      }
    }
    walk(root)
    return { bytes, entries }
  })

/** Turn a finished tree into `image`: room for ext4's metadata, and an inode for every entry. */
export const imageFromTree = (tree: string, image: string, seed: string) =>
  Effect.gen(function*() {
    const { bytes, entries } = yield* treeSize(tree)
    yield* makeRootImage({
      sourceDir: tree,
      image,
      label: `pyro-${cacheName(seed)}`,
      sizeMib: Math.ceil((bytes * 1.2) / (1024 * 1024)) + 32,
      inodes: Math.ceil(entries * 1.2) + 1024,
      seed
    })
  })

export const buildCatalogEnvironment = (
  entry: CatalogEntry,
  dir: string,
  cacheDir: string
): Effect.Effect<void, unknown, FileSystem.FileSystem | CommandExecutor.CommandExecutor | Progress> =>
  withTempDir(Path.dirname(dir), "tree", (tree) =>
    Effect.gen(function*() {
      const recipe = entry.recipe
      const packages = recipe.kind === "busybox"
        ? yield* buildBusyboxTree(tree, cacheDir)
        : yield* buildDebianTree(tree, recipe, { cacheDir, environment: entry.name })
      yield* report({ scope: "pull", phase: "image", fields: { environment: entry.name } })
      yield* imageFromTree(tree, Path.join(dir, ROOTFS_FILE), `${entry.name}@${entry.version}`)
      yield* writeManifestFor(dir, {
        name: entry.name,
        version: entry.version,
        description: entry.description,
        distribution: entry.distribution,
        distribution_version: entry.distribution_version,
        platform: entry.platform,
        default_packages: entry.default_packages,
        packages,
        kernel: KERNEL_PAIRING,
        source: `built locally (${recipe.kind === "busybox" ? "busybox-static" : `mmdebstrap ${recipe.suite} minbase`})`
      }, ROOTFS_FILE)
    }))
