/**
 * The operator's extra certificate authorities (NODE_EXTRA_CA_CERTS), trusted by
 * registry pulls only, read when a pull first connects.
 *
 * Node 20 reads and parses that file as it starts, before any of pyro's code: ~40 ms
 * on every command here (the Debian bundle of ~140 CAs), though only a pull ever
 * opens a TLS connection. So bin/pyro.js's first line starts Node without the variable
 * and hands its value on as PYRO_NODE_EXTRA_CA_CERTS; this module adds the file's
 * certificates to Node's own roots for a pull, as Node itself would have. Node
 * processes pyro starts (the spare filler, port forwarders) inherit the variable and
 * do the same. A process started with NODE_EXTRA_CA_CERTS itself (`node bin/pyro.js`,
 * an SDK program) has trusted them since its start: nothing to add.
 */
import * as Fs from "node:fs"
import * as Tls from "node:tls"

export const HANDED_ON = "PYRO_NODE_EXTRA_CA_CERTS"

let cached: { readonly ca: ReadonlyArray<string> | undefined } | undefined

/**
 * The CAs a registry connection must trust, if not Node's defaults: its roots and the
 * handed-on file's certificates. A file that cannot be read is ignored with a warning,
 * as Node ignores one.
 */
export const registryCa = (): ReadonlyArray<string> | undefined => {
  if (cached) return cached.ca
  const file = process.env[HANDED_ON]
  let ca: ReadonlyArray<string> | undefined
  if (file && !process.env.NODE_EXTRA_CA_CERTS) {
    try {
      ca = [...Tls.rootCertificates, Fs.readFileSync(file, "utf8")]
    } catch (e) {
      process.emitWarning(`Ignoring extra certs from \`${file}\`, load failed: ${(e as Error).message}`)
    }
  }
  cached = { ca }
  return ca
}
