/**
 * A workspace's disk as layers: the raw ext4 made at create (`scratch.ext4`),
 * and over it qcow2 layers, each holding only the blocks written while it was
 * the top one. A snapshot is a layer frozen by putting a new one on top of it
 * (nothing copied); a reset or a fork starts a new top layer over a frozen
 * one. Layers below the top are never written again, so a fork shares them
 * by hard link. Which layer is on top, and what each layer's backing is, is
 * the workspace record's (`disk`); a layer's header names its backing by a
 * relative file name, so a directory of layers is whole wherever it lives.
 *
 * The layers are host-made files the guest never sees as files: its writes
 * land in a layer's data clusters, never in a header, and the format comes
 * from the file's name, never from its bytes.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { runHostCommand } from "../../host/command.js"
import { scratchFormat } from "../../vm/qemu/args.js"

/** The raw disk every workspace starts with. */
export const BASE_LAYER = "scratch.ext4"
export const LayerName = Schema.String.pipe(Schema.pattern(/^(scratch\.ext4|layer-[0-9a-f]{16}\.qcow2)$/))

export const DiskLayers = Schema.Struct({
  /** The layer QEMU writes. */
  top: LayerName,
  /** Each layer's backing (the one below it), null for the base. */
  backing: Schema.Record({ key: LayerName, value: Schema.NullOr(LayerName) })
})
export type DiskLayers = typeof DiskLayers.Type

/** A workspace made before layers: its whole disk is the base. */
export const SINGLE_LAYER: DiskLayers = { top: BASE_LAYER, backing: { [BASE_LAYER]: null } }

export class DiskLayerFailed extends Schema.TaggedError<DiskLayerFailed>()("DiskLayerFailed", {
  detail: Schema.String
}) {}

const failed = (what: string) => (e: { readonly message: string }) => new DiskLayerFailed({ detail: `${what}: ${e.message}` })

const newLayerName = () => `layer-${randomBytes(8).toString("hex")}.qcow2`

/**
 * A new empty layer over `backing` (which must not be written again), in `dir`.
 * Its size is the base's: every layer of a disk has the one virtual size.
 * `-u`: the backing is not opened (a running QEMU holds it locked); its format is
 * given, never probed.
 */
export const addLayer = (dir: string, layers: DiskLayers, backing: string) =>
  Effect.gen(function*() {
    const name = newLayerName()
    const size = yield* Effect.try({ try: () => Fs.statSync(Path.join(dir, BASE_LAYER)).size, catch: (e) => e as Error }).pipe(
      Effect.mapError(failed("the base disk"))
    )
    yield* runHostCommand("qemu-img", [
      "create", "-q", "-u", "-f", "qcow2",
      "-o", "cluster_size=65536",
      "-b", backing, "-F", scratchFormat(backing),
      name, String(size)
    ], { cwd: dir }).pipe(Effect.mapError(failed("a new disk layer")))
    yield* Effect.sync(() => Fs.chmodSync(Path.join(dir, name), 0o600))
    return { name, layers: { top: name, backing: { ...layers.backing, [name]: backing } } satisfies DiskLayers }
  })

/** Every layer `from` reads through, itself first. */
export const chainOf = (layers: DiskLayers, from: string): ReadonlyArray<string> => {
  const chain: Array<string> = []
  for (let at: string | null | undefined = from; at; at = layers.backing[at]) {
    if (chain.includes(at)) break // a cycle is not a chain; never loop on one
    chain.push(at)
  }
  return chain
}

/**
 * Delete the layers neither the top nor any of `kept` (snapshots) reads
 * through, and forget them; returns the layers left.
 */
export const dropUnused = (dir: string, layers: DiskLayers, kept: ReadonlyArray<string>) =>
  Effect.sync(() => {
    const used = new Set([layers.top, ...kept].flatMap((l) => chainOf(layers, l)))
    const backing: Record<string, string | null> = {}
    for (const [layer, below] of Object.entries(layers.backing)) {
      if (used.has(layer)) backing[layer] = below
      else Fs.rmSync(Path.join(dir, layer), { force: true })
    }
    return { top: layers.top, backing } satisfies DiskLayers
  })

/** Host bytes a layer takes (only what was written while it was on top). */
export const layerBytes = (dir: string, layer: string) =>
  Effect.sync(() => (Fs.statSync(Path.join(dir, layer), { throwIfNoEntry: false })?.blocks ?? 0) * 512)

/**
 * The disk as one raw ext4 image at `out` (sparse: only written blocks take
 * room), for the offline tools and disk export. A single raw layer is copied.
 */
export const flattenTo = (dir: string, layers: DiskLayers, out: string) =>
  (scratchFormat(layers.top) === "raw"
    ? runHostCommand("cp", ["--sparse=always", "--reflink=auto", "--", Path.join(dir, layers.top), out])
    : runHostCommand("qemu-img", ["convert", "-f", "qcow2", "-O", "raw", Path.join(dir, layers.top), out])
  ).pipe(
    Effect.zipRight(Effect.sync(() => Fs.chmodSync(out, 0o600))),
    Effect.mapError(failed("the disk as one image"))
  )
