/** Media types this client reads and writes. */

export const OCI_INDEX = "application/vnd.oci.image.index.v1+json"
export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
export const OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
export const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
export const DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
export const DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"

export const OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
export const OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
export const OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
export const DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

export const PYRO_ARTIFACT = "application/vnd.pyro.environment.v1"
export const PYRO_CONFIG = "application/vnd.pyro.environment.config.v1+json"
export const PYRO_ROOTFS = "application/vnd.pyro.environment.rootfs.v1.ext4+gzip"
/** Layer annotation: digest of the uncompressed ext4 image. */
export const PYRO_ROOTFS_UNCOMPRESSED_DIGEST = "dev.pyro.rootfs.uncompressed-digest"

export const INDEX_TYPES: ReadonlyArray<string> = [OCI_INDEX, DOCKER_MANIFEST_LIST]
export const MANIFEST_TYPES: ReadonlyArray<string> = [OCI_MANIFEST, DOCKER_MANIFEST]
export const IMAGE_CONFIG_TYPES: ReadonlyArray<string> = [OCI_CONFIG, DOCKER_CONFIG]

/** Compression of a layer as its media type states it; `undefined` for types that are not layers. */
export const layerCompression = (mediaType: string): "none" | "gzip" | "zstd" | undefined => {
  switch (mediaType) {
    case OCI_LAYER_TAR:
    case "application/vnd.oci.image.layer.nondistributable.v1.tar":
      return "none"
    case OCI_LAYER_GZIP:
    case DOCKER_LAYER_GZIP:
    case "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip":
    case "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":
      return "gzip"
    case OCI_LAYER_ZSTD:
    case "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd":
      return "zstd"
    default:
      return undefined
  }
}
